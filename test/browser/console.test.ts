/**
 * The console in a real browser (Debian's chromium through playwright-core) against the real service: operators at
 * /, cardholders at /my. One service and one browser for the file; the tests run in order and build on each other
 * (the series created early is searched, edited and exported later).
 */
import { readFile } from 'node:fs/promises';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { carrier, FreeSwitchSim } from '../../src/sim/index.ts';
import { waitFor } from '../e2e/harness.ts';
import { OPERATORS, startConsole, type ConsoleHarness } from './harness.ts';
import { OperatorConsole, SelfcareScreen } from './pages.ts';

let c: ConsoleHarness;
let page: Page;
let ui: OperatorConsole;
const { admin, operator, viewer } = OPERATORS;

const balanceOf = async (serial: string) =>
  (await c.h.service.pool.query<{ b: bigint }>('SELECT balance_micros AS b FROM cards WHERE serial = $1', [serial])).rows[0]!.b;
const statusOf = async (serial: string) =>
  (await c.h.service.pool.query<{ s: string }>('SELECT status AS s FROM cards WHERE serial = $1', [serial])).rows[0]!.s;

beforeAll(async () => {
  c = await startConsole();
  page = await c.newPage();
  ui = new OperatorConsole(page, c.baseUrl);
}, 180_000);
afterAll(async () => {
  await c?.close();
});

describe('operator console', () => {
  it('refuses a wrong password with a message, then logs in and out', async () => {
    await ui.open('/');
    await ui.heading('ccard console').waitFor();
    await ui.screenshot('01-login');
    await ui.logIn(admin.login, 'not-the-password');
    await expect.poll(() => ui.alert().textContent()).toMatch(/wrong|invalid|incorrect/i);
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);

    await ui.logIn(admin.login, admin.password);
    await ui.heading('Series').waitFor();
    expect(await ui.whoIsLoggedIn().textContent()).toContain(admin.login);
    // The session cookie is out of the page's reach and never sent by other sites.
    const cookie = (await c.context.cookies(c.baseUrl)).find((k) => k.name === 'ccard_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');

    await ui.logOut();
    await ui.heading('ccard console').waitFor();
    await ui.open('/cards'); // a page of the console after logout shows the login again
    await ui.heading('ccard console').waitFor();
    await ui.logIn(admin.login, admin.password);
    await ui.heading('Cards').waitFor(); // and comes back to where it was asked for
  });

  it('shows the server’s validation message next to the field, then creates a series and shows its cards', async () => {
    await ui.goTo('Series');
    await ui.screenshot('02-series-list');
    await ui.page.getByRole('link', { name: 'New series' }).click();
    await ui.fillSeriesForm({ Name: 'Spring promo', 'Series number': '42', 'Number of cards': '5', Balance: '10.50', 'PIN length': '6' });
    await ui.button('Create series').click();
    await expect.poll(() => ui.fieldError('PIN length').textContent()).toMatch(/8/);
    await ui.fillSeriesForm({ 'PIN length': '8', Currency: 'EUR' });
    await ui.button('Create series').click();
    // the currency check is the server's: "rate table "demo" is in USD, not EUR" lands above the buttons
    await expect.poll(() => ui.alert().allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/USD/)]));
    await ui.screenshot('03-new-series-errors');
    await ui.fillSeriesForm({ Currency: '', 'Maintenance fee': '0.25', 'Maintenance every (hours)': '24', 'Activation fee': '0.10' });
    await ui.button('Create series').click();

    await ui.heading('Cards').waitFor();
    expect(page.url()).toContain('series=42');
    await expect.poll(() => ui.cardRows().count()).toBe(5);
    for (const text of await ui.cardRows().allTextContents()) expect(text).toContain('10.50 USD');
    await ui.screenshot('04-cards-grid');

    await ui.goTo('Series');
    const row = ui.seriesRow('42');
    await expect.poll(() => row.textContent()).toContain('0.25 every 24 hours');
    expect(await row.textContent()).toContain('Spring promo');
  });

  it('shows the progress of a large series while the server generates it', async () => {
    await ui.goTo('Series');
    await ui.page.getByRole('link', { name: 'New series' }).click();
    await ui.fillSeriesForm({ Name: 'Big batch', 'Series number': '7', 'Number of cards': '40000', Balance: '5' });
    await ui.button('Create series').click();
    // the job's own progress ("inserting cards: 12,000 of 40,000 cards"), not just a spinner
    const progress = page.getByRole('status').filter({ has: page.getByRole('progressbar') });
    await expect.poll(() => progress.textContent(), { timeout: 30_000, interval: 100 }).toMatch(/of 40,000 cards/);
    await ui.screenshot('03b-series-progress');
    await ui.heading('Cards').waitFor({ timeout: 60_000 });
    expect(page.url()).toContain('series=7');
    expect(Number((await c.h.service.pool.query<{ n: string }>(`SELECT count(*) AS n FROM cards WHERE serial LIKE '7-%'`)).rows[0]!.n)).toBe(40_000);
  }, 90_000);

  it('searches cards by serial prefix, and keeps the search in the address', async () => {
    await ui.goTo('Cards');
    await ui.searchSerial('100-');
    await expect.poll(() => ui.cardRows().count()).toBe(3);
    expect(new URL(page.url()).searchParams.get('serial')).toBe('100-');
    await page.reload();
    await expect.poll(() => ui.cardRows().count()).toBe(3);
    await ui.searchSerial('42');
    await expect.poll(() => ui.cardRows().count()).toBe(5);
  });

  it('selects two rows and disables them', async () => {
    await ui.open('/cards?series=42');
    await expect.poll(() => ui.cardRows().count()).toBe(5);
    const serials = (await ui.cardRows().getByRole('link').allTextContents()).slice(0, 2);
    for (const s of serials) await ui.selectCard(s);
    expect(await page.getByText('2 selected').count()).toBe(1);
    await ui.editSelected({ status: 'disabled' });
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('2 cards updated');
    for (const s of serials) {
      await expect.poll(() => ui.cardRow(s).textContent()).toContain('disabled');
      expect(await statusOf(s)).toBe('disabled');
    }
    const others = (await ui.cardRows().getByRole('link').allTextContents()).slice(2);
    for (const s of others) expect(await statusOf(s)).not.toBe('disabled');
  });

  it('credits a top-up clicked twice once', async () => {
    const serial = c.h.data.cards.rich.serial;
    const before = await balanceOf(serial);
    await ui.openCard(serial);
    const keys: string[] = [];
    const seen = (r: import('playwright-core').Request) => r.url().endsWith('/topup') && keys.push(r.headers()['idempotency-key'] ?? '');
    page.on('request', seen);
    await ui.topUp('10', 'counter sale', 2);
    page.off('request', seen);
    // both clicks went out, with the dialog's one key: the server answered the second from the first
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    await expect.poll(() => ui.balance().textContent()).toContain('15.00');
    expect(await balanceOf(serial)).toBe(before + 10_000_000n);
    const topups = await c.h.service.pool.query(
      `SELECT 1 FROM ledger l JOIN cards c ON c.id = l.card_id WHERE c.serial = $1 AND l.reason = 'topup'`,
      [serial],
    );
    expect(topups.rowCount).toBe(1);
    await ui.screenshot('05-card-page');
  });

  it('downloads the current search as XLSX', async () => {
    await ui.open('/cards?series=42');
    await expect.poll(() => ui.cardRows().count()).toBe(5);
    const download = await ui.download('Download XLSX');
    expect(download.suggestedFilename()).toMatch(/\.xlsx$/);
    const book = new ExcelJS.Workbook();
    await book.xlsx.readFile((await download.path())!);
    const sheet = book.worksheets[0]!;
    const serials: string[] = [];
    sheet.eachRow((row, n) => n > 1 && serials.push(String(row.getCell(1).value)));
    expect(serials).toHaveLength(5);
    for (const s of serials) expect(s.startsWith('42')).toBe(true);
  });

  it('shows a rate CSV’s bad line next to the form and imports nothing, then imports a good file', async () => {
    const bad = 'prefix,destination,rate\n44,United Kingdom,0.04\n49,Germany,abc\n';
    await ui.importRates('europe', bad);
    const err = page.getByRole('alert').filter({ hasText: 'not imported' });
    await expect.poll(() => err.textContent()).toMatch(/line 3/);
    await ui.screenshot('06-rates-error');
    expect((await c.h.service.pool.query(`SELECT 1 FROM rate_tables WHERE name = 'europe'`)).rowCount).toBe(0);

    await page.getByLabel('CSV file').setInputFiles({ name: 'europe.csv', mimeType: 'text/csv', buffer: Buffer.from('prefix,destination,rate\n44,United Kingdom,0.04\n49,Germany,0.05\n') });
    await ui.button('Import').click();
    await expect.poll(() => page.getByRole('status').first().textContent()).toMatch(/europe imported/);
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'europe' }).count()).toBeGreaterThan(0);
  });

  it('shows a call placed through the simulator in the live calls view while it lasts', async () => {
    await ui.goTo('Live calls');
    await expect.poll(() => page.getByText('live', { exact: true }).count()).toBe(1);
    const card = c.h.data.cards.rich;
    // A slow simulator (real time x0.05): the carrier answers and talks for 5 virtual minutes = 15 s.
    const slow = new FreeSwitchSim({ port: c.h.service.esl.port, timeScale: 0.05, jsonCdrUrl: `http://127.0.0.1:${c.h.service.http.port}/cdr` });
    const call = slow.call({
      did: c.h.data.did,
      callerId: '15550007777',
      digits: [{ keys: `${card.pin}#`, afterMs: 10, gapMs: 10 }, { keys: '15557654321#', afterMs: 10, gapMs: 10 }],
      carrier: () => carrier.answer(100, 300_000),
    });
    const row = page.getByRole('table', { name: 'Calls in progress' }).getByRole('row').filter({ hasText: card.serial });
    await row.waitFor({ timeout: 20_000 });
    expect(await row.textContent()).toContain('15557654321');
    await ui.screenshot('07-live-calls');
    await call;
    await slow.drain().catch(() => {});
    await row.waitFor({ state: 'detached', timeout: 20_000 });
  }, 90_000);

  it('draws the cost report chart from the calls', async () => {
    // one more quick call, so the report has answered calls whatever the live-call test left
    await c.h.place({ did: c.h.data.did, callerId: '15550008888', digits: [`${c.h.data.cards.rich.pin}#`, '15557654321#', ''] });
    await waitFor('the CDRs', async () => ((await c.h.service.pool.query('SELECT 1 FROM cdrs')).rowCount! >= 1 ? true : undefined));
    await ui.goTo('Cost report');
    const chart = page.getByRole('img', { name: /Calls and revenue per day/ });
    await chart.waitFor();
    expect(await chart.locator('rect.bar').count()).toBeGreaterThan(0);
    const kpis = await page.locator('.kpis').textContent();
    expect(kpis).toMatch(/Calls\s*[1-9]/);
    expect(kpis).toMatch(/ASR/);
    await expect.poll(() => page.getByRole('table', { name: 'Costs by series' }).textContent()).toContain('100');
    await ui.screenshot('08-cost-report');
  });

  it('searches calls by card and downloads them as CSV', async () => {
    const serial = c.h.data.cards.rich.serial;
    await ui.goTo('Calls');
    await page.getByRole('search').getByLabel('Card').fill(serial);
    await page.getByRole('search').getByRole('button', { name: 'Search' }).click();
    const rows = page.getByRole('table', { name: 'Calls' }).getByRole('row').filter({ hasText: serial });
    await expect.poll(() => rows.count()).toBeGreaterThan(0);
    expect(new URL(page.url()).searchParams.get('card')).toBe(serial);
    const download = await ui.download('Download CSV');
    const lines = (await readFile((await download.path())!, 'utf8')).trim().split('\n');
    expect(lines.length - 1).toBe(await rows.count());
    for (const line of lines.slice(1)) expect(line).toContain(serial);
  });

  it('renders a series name and a top-up reason that look like HTML as text', async () => {
    const evil = '<img src=x onerror="window.__xss=1">';
    await ui.createSeries({ Name: evil, 'Series number': '66', 'Number of cards': '1', Notes: '<script>window.__xss=2</script>' });
    await ui.heading('Cards').waitFor();
    await ui.goTo('Series');
    const row = ui.seriesRow('66');
    await expect.poll(() => row.textContent()).toContain(evil);
    expect(await row.locator('img').count()).toBe(0);
    await row.getByRole('link', { name: '66' }).click();
    await expect.poll(() => page.getByText('<script>window.__xss=2</script>').count()).toBe(1);

    await ui.openCard(c.h.data.cards.pinless.serial);
    await ui.topUp('1', '<b onmouseover="window.__xss=3">bold</b>');
    await expect.poll(() => page.getByRole('table', { name: 'Ledger' }).textContent()).toContain('<b onmouseover');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('chooses and reorders the grid’s columns, kept for the operator', async () => {
    await ui.open('/cards?series=42');
    await expect.poll(() => ui.cardRows().count()).toBe(5);
    await ui.button('Columns').click();
    const dialog = page.getByRole('dialog', { name: 'Columns' });
    await dialog.getByRole('checkbox', { name: 'Rate table' }).uncheck();
    await dialog.getByRole('button', { name: 'Move Balance up' }).click();
    await dialog.getByRole('button', { name: 'Save columns' }).click();
    await dialog.waitFor({ state: 'detached' });
    const headers = () => page.getByRole('columnheader').allTextContents();
    await expect.poll(headers).toEqual(['', 'Serial', 'Series', 'Balance', 'Status', 'Last used', 'Expires']);
    // kept on the server: a fresh visit without the columns in the address shows the same
    await ui.open('/cards?series=42');
    await expect.poll(headers).toEqual(['', 'Serial', 'Series', 'Balance', 'Status', 'Last used', 'Expires']);
    await ui.screenshot('04b-cards-columns');
  });

  it('asks for an explicit confirmation before a PIN export', async () => {
    await ui.open('/cards?series=42');
    await ui.button('Export with PINs…').click();
    const dialog = page.getByRole('dialog', { name: 'Export with PINs' });
    expect(await dialog.getByRole('button', { name: 'Download CSV with PINs' }).isDisabled()).toBe(true);
    await dialog.getByRole('checkbox', { name: /I understand/ }).check();
    const link = dialog.getByRole('link', { name: 'Download CSV with PINs' });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).toMatch(/^serial,pin,/);
    expect(csv.trim().split('\n')).toHaveLength(6);
    const audited = await c.h.service.pool.query(`SELECT 1 FROM audit_log WHERE action LIKE '%export%' AND actor = 'operator:alice'`);
    expect(audited.rowCount).toBeGreaterThan(0);
  });

  it('adds an access number, a tax profile, an operator and an API key, with messages next to bad fields', async () => {
    await ui.goTo('Access numbers');
    await ui.button('Add access number').click();
    const dialog = page.getByRole('dialog', { name: 'Add access number' });
    await dialog.getByLabel('Number').fill('12ab');
    await dialog.getByLabel('Denied prefixes').fill('1900, x');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => dialog.getByRole('alert').allTextContents()).toEqual(['must be a phone number (digits, optionally with +)', 'digits only, separated by commas']);
    await dialog.getByLabel('Number').fill('15550002222');
    await dialog.getByLabel('Denied prefixes').fill('1900, 1976');
    await dialog.getByLabel('Minimum digits').fill('2'); // the server's rule: 3 to 20
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => dialog.getByRole('alert').allTextContents()).toEqual([expect.stringMatching(/3/)]);
    await dialog.getByLabel('Minimum digits').fill('11');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(() => page.getByRole('row').filter({ hasText: '15550002222' }).count()).toBe(1);
    const did = await c.h.service.pool.query(`SELECT denied_prefixes, min_digits FROM access_numbers WHERE did = '15550002222'`);
    expect(did.rows[0]).toEqual({ denied_prefixes: ['1900', '1976'], min_digits: 11 });

    await ui.goTo('Tax profiles');
    await page.getByLabel('Name').fill('VAT');
    await page.getByLabel('Percent').fill('7.255555');
    await ui.button('Add').click();
    await expect.poll(() => ui.fieldError('Percent').textContent()).toMatch(/4 decimals/);
    await page.getByLabel('Percent').fill('7.25');
    await ui.button('Add').click();
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'VAT' }).textContent()).toContain('7.25%');

    await ui.goTo('Operators');
    await page.getByLabel('Login').fill('olga');
    await page.getByLabel('Role', { exact: true }).selectOption('viewer');
    await ui.button('Add operator').click();
    await expect.poll(() => page.getByRole('status').first().textContent()).toMatch(/One-time password: \S{12,}/);

    await ui.goTo('API keys');
    await page.getByLabel('Name').fill('billing-sync');
    await ui.button('Create key').click();
    await expect.poll(() => page.getByRole('status').first().textContent()).toMatch(/billing-sync.*not shown again/);
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'billing-sync' }).count()).toBe(1);
  });

  it('opens every page of the console without an error', async () => {
    const pages: Array<[string, string, string]> = [
      ['Series', 'Series', '10-series'],
      ['Calls', 'Calls', '11-calls'],
      ['Access numbers', 'Access numbers', '12-access-numbers'],
      ['Caller IDs', 'Caller IDs', '13-caller-ids'],
      ['Rate tables', 'Rate tables', '14-rate-tables'],
      ['Tax profiles', 'Tax profiles', '15-tax-profiles'],
      ['Operators', 'Operators', '16-operators'],
      ['API keys', 'API keys', '17-api-keys'],
      ['Audit log', 'Audit log', '18-audit-log'],
    ];
    for (const [nav, heading, shot] of pages) {
      await ui.goTo(nav);
      await ui.heading(heading).waitFor();
      await expect.poll(() => page.locator('.loading').count(), { message: `${nav} keeps loading` }).toBe(0);
      expect(await page.locator('.error-box').count(), `${nav} shows an error`).toBe(0);
      await ui.screenshot(shot);
    }
    await ui.open('/series/100');
    await ui.heading(/^Series 100/).waitFor();
    await ui.screenshot('19-series-show');
    await ui.open('/cards/100-000000001/no/such/page');
    await ui.heading('Page not found').waitFor();
  });

  it('refuses a viewer’s change, with the server’s message', async () => {
    const other = await c.newContext();
    const vp = await other.newPage();
    const v = new OperatorConsole(vp, c.baseUrl);
    await v.open('/');
    await v.logIn(viewer.login, viewer.password);
    await v.heading('Series').waitFor();
    expect(await vp.getByRole('link', { name: 'New series' }).count()).toBe(0); // not offered
    await v.openCard(c.h.data.cards.rich.serial);
    expect(await v.button('Top up').count()).toBe(0);
    // typed by hand: the form is there, the server says no and nothing is created
    await v.open('/series/new');
    await v.fillSeriesForm({ Name: 'Not allowed', 'Series number': '77', 'Number of cards': '1' });
    await v.button('Create series').click();
    await expect.poll(() => vp.getByRole('alert').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/viewer|role|not allowed|forbidden|permission/i)]));
    expect((await c.h.service.pool.query(`SELECT 1 FROM series WHERE series_number = '77'`)).rowCount).toBe(0);
    await other.close();
  });

  it('logs out everywhere: the operator’s other browser is back at the login', async () => {
    const [a, b] = [await c.newContext(), await c.newContext()];
    const [one, two] = [new OperatorConsole(await a.newPage(), c.baseUrl), new OperatorConsole(await b.newPage(), c.baseUrl)];
    for (const o of [one, two]) {
      await o.open('/');
      await o.logIn(operator.login, operator.password);
      await o.heading('Series').waitFor();
    }
    await one.button('Log out everywhere').click();
    await one.heading('ccard console').waitFor();
    await two.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Cards', exact: true }).click(); // its next request is refused
    await two.heading('ccard console').waitFor();
    await a.close();
    await b.close();
  });

  it('an operator (not admin) is not offered the administration pages', async () => {
    const other = await c.newContext();
    const op = new OperatorConsole(await other.newPage(), c.baseUrl);
    await op.open('/');
    await op.logIn(operator.login, operator.password);
    await op.heading('Series').waitFor();
    const nav = op.page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Operators' }).count()).toBe(0);
    expect(await nav.getByRole('link', { name: 'API keys' }).count()).toBe(0);
    // on a phone the grid scrolls inside its frame; the page itself stays the screen's width
    await op.page.setViewportSize({ width: 390, height: 844 });
    await op.open('/cards?series=42');
    await expect.poll(() => op.cardRows().count()).toBe(5);
    expect(await op.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await op.screenshot('20-cards-phone');
    await other.close();
  });
});

describe('cardholder self-care', () => {
  it('logs in with serial and PIN on a phone and sees the balance and the calls with their cost', async () => {
    // the demo series opens self-care through the console
    await ui.open('/series/100/edit');
    await page.getByLabel('Cardholders may use self-care (/my)').check();
    await ui.button('Save').click();
    await ui.heading(/^Series 100/).waitFor();

    const phone = await c.newContext();
    const p = await phone.newPage();
    await p.setViewportSize({ width: 390, height: 844 });
    const my = new SelfcareScreen(p, c.baseUrl);
    const card = c.h.data.cards.rich;
    await my.open();
    await my.logIn(card.serial, '0000000000');
    await expect.poll(() => my.alert().first().textContent()).toMatch(/PIN|serial|wrong|invalid/i);
    await my.logIn(card.serial, card.pin);
    await expect.poll(() => my.balance().textContent()).toMatch(/USD/);
    expect(await my.balance().textContent()).toContain(card.serial);
    await expect.poll(() => my.calls().count()).toBeGreaterThan(0);
    expect(await my.calls().first().textContent()).toContain('15557654321');
    // what a call costs, per minute
    await p.getByLabel('Number to call').fill('+1 555 765 4321');
    await my.button('Look up').click();
    await expect.poll(() => p.getByRole('status').filter({ hasText: 'per minute' }).textContent()).toMatch(/USA test exchange: 0\.05\d* USD per minute/);
    // a phone for pinless calls, bound and unbound
    await p.getByLabel('Add a phone number').fill('15559990000');
    await my.button('Add').click();
    const phones = p.getByRole('list', { name: 'Phones without PIN' });
    await expect.poll(() => phones.textContent()).toContain('15559990000');
    expect((await c.h.service.pool.query(`SELECT 1 FROM caller_ids WHERE caller_id = '15559990000'`)).rowCount).toBe(1);
    await my.screenshot('09-selfcare-phone');
    await phones.getByRole('listitem').filter({ hasText: '15559990000' }).getByRole('button', { name: 'Remove' }).click();
    await expect.poll(() => p.getByRole('status').filter({ hasText: 'removed' }).count()).toBe(1);
    expect((await c.h.service.pool.query(`SELECT 1 FROM caller_ids WHERE caller_id = '15559990000'`)).rowCount).toBe(0);
    // the page fits the phone: nothing wider than the screen
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await phone.close();
  });
});
