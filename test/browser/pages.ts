/**
 * Page objects: what a person does in the console, by role and label (never CSS paths), so the tests read as
 * steps and the pages stay accessible.
 */
import { join } from 'node:path';
import type { Download, Locator, Page } from 'playwright-core';
import { SCREENSHOTS } from './harness.ts';

abstract class Screen {
  constructor(
    readonly page: Page,
    readonly baseUrl: string,
  ) {}
  async screenshot(name: string): Promise<string> {
    const path = join(SCREENSHOTS, `${name}.png`);
    await this.page.screenshot({ path, fullPage: true });
    return path;
  }
  heading(name: string | RegExp): Locator {
    return this.page.getByRole('heading', { level: 1, name });
  }
  alert(): Locator {
    return this.page.getByRole('alert');
  }
  button(name: string | RegExp): Locator {
    return this.page.getByRole('button', { name, exact: typeof name === 'string' });
  }
}

export class OperatorConsole extends Screen {
  async open(path = '/'): Promise<void> {
    await this.page.goto(this.baseUrl + path);
  }
  async logIn(login: string, password: string): Promise<void> {
    await this.page.getByLabel('Login').fill(login);
    await this.page.getByLabel('Password').fill(password);
    await this.button('Sign in').click();
  }
  whoIsLoggedIn(): Locator {
    return this.page.getByRole('banner').locator('.who > span');
  }
  async logOut(): Promise<void> {
    await this.button('Log out').click();
  }
  async goTo(section: string): Promise<void> {
    await this.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: section, exact: true }).click();
    await this.heading(section).waitFor();
  }

  // ---- series ----
  async createSeries(fields: Record<string, string>, opts: { selfcare?: boolean } = {}): Promise<void> {
    await this.goTo('Series');
    await this.page.getByRole('link', { name: 'New series' }).click();
    await this.heading('New series').waitFor();
    await this.fillSeriesForm(fields, opts);
    await this.button('Create series').click();
  }
  async fillSeriesForm(fields: Record<string, string>, opts: { selfcare?: boolean } = {}): Promise<void> {
    for (const [label, value] of Object.entries(fields)) await this.page.getByLabel(label, { exact: true }).fill(value);
    if (opts.selfcare) await this.page.getByLabel('Cardholders may use self-care (/my)').check();
  }
  seriesRow(number: string): Locator {
    return this.page.getByRole('row').filter({ has: this.page.getByRole('link', { name: number, exact: true }) });
  }
  fieldError(label: string): Locator {
    return this.page.locator('.field', { has: this.page.getByLabel(label, { exact: true }) }).getByRole('alert');
  }

  // ---- cards ----
  cardRows(): Locator {
    return this.page.getByRole('table').getByRole('row').filter({ has: this.page.getByRole('checkbox', { name: /^Select card / }) });
  }
  cardRow(serial: string): Locator {
    return this.page.getByRole('row').filter({ has: this.page.getByRole('link', { name: serial, exact: true }) });
  }
  async searchSerial(prefix: string): Promise<void> {
    await this.page.getByRole('search').getByLabel('Serial').fill(prefix);
    await this.page.getByRole('search').getByRole('button', { name: 'Search', exact: true }).click();
  }
  async selectCard(serial: string): Promise<void> {
    await this.page.getByRole('checkbox', { name: `Select card ${serial}` }).check();
  }
  async editSelected(change: { status?: string }): Promise<void> {
    await this.button('Edit selected').click();
    const dialog = this.page.getByRole('dialog');
    if (change.status) await dialog.getByLabel('Status').selectOption(change.status);
    await dialog.getByRole('button', { name: 'Apply to selected' }).click();
    await dialog.waitFor({ state: 'detached' });
  }
  async download(linkName: string): Promise<Download> {
    const [download] = await Promise.all([this.page.waitForEvent('download'), this.page.getByRole('link', { name: linkName }).click()]);
    return download;
  }
  async openCard(serial: string): Promise<void> {
    await this.open(`/cards/${encodeURIComponent(serial)}`);
    await this.heading(`Card ${serial}`).waitFor();
  }
  balance(): Locator {
    return this.page.getByTestId('balance');
  }
  /** Opens the top-up dialog, fills it and clicks "Top up" `clicks` times as fast as a person double-clicks. */
  async topUp(amount: string, reason: string, clicks = 1): Promise<void> {
    await this.button('Top up').click();
    const dialog = this.page.getByRole('dialog');
    await dialog.getByLabel(/^Amount/).fill(amount);
    await dialog.getByLabel('Reason').fill(reason);
    await dialog.getByRole('button', { name: 'Top up' }).click({ clickCount: clicks });
    await dialog.waitFor({ state: 'detached' });
  }

  // ---- rates ----
  async importRates(table: string, csv: string): Promise<void> {
    await this.goTo('Rate tables');
    await this.page.getByLabel('Rate table', { exact: true }).fill(table);
    await this.page.getByLabel('CSV file').setInputFiles({ name: `${table}.csv`, mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await this.button('Import').click();
  }
}

export class SelfcareScreen extends Screen {
  async open(): Promise<void> {
    await this.page.goto(`${this.baseUrl}/my`);
  }
  async logIn(serial: string, pin: string): Promise<void> {
    await this.page.getByLabel('Serial number').fill(serial);
    await this.page.getByLabel('PIN').fill(pin);
    await this.button('Sign in').click();
  }
  balance(): Locator {
    return this.page.getByRole('region', { name: 'Balance' });
  }
  calls(): Locator {
    return this.page.getByRole('list', { name: 'Calls' }).getByRole('listitem');
  }
}
