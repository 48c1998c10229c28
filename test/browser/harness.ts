/**
 * The real service (PostgreSQL, Redis, ESL, HTTP) with the demo data and three operators, the built console, and
 * Debian's chromium driven by playwright-core in a fresh profile. Tests talk to the pages through page objects.
 */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startHarness, type Harness } from '../e2e/harness.ts';
import { addOperator } from '../../src/store/admin/operators.ts';
import { ensureWebBuilt } from './build-web.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = join(process.cwd(), '.scratch/screenshots');
export const OPERATORS = {
  admin: { login: 'alice', password: 'alice-password-123' },
  operator: { login: 'oscar', password: 'oscar-password-123' },
  viewer: { login: 'victor', password: 'victor-password-123' },
} as const;

export interface ConsoleHarness {
  h: Harness;
  baseUrl: string;
  context: BrowserContext;
  /** A fresh tab (its own cookies are shared by the context: use newContext() for another person). */
  newPage(): Promise<Page>;
  /** A second browser profile (another person on another computer). */
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function startConsole(): Promise<ConsoleHarness> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  await ensureWebBuilt();
  const h = await startHarness({ jsonCdr: true });
  const ctx = { pool: h.service.pool, pinKeys: h.service.pinKeys };
  for (const [role, o] of Object.entries(OPERATORS)) await addOperator(ctx, { login: o.login, role: role as never, password: o.password });
  const baseUrl = `http://127.0.0.1:${h.service.http.port}`;
  // ccard serves the console itself (dist/web at / and /my)
  const home = await fetch(`${baseUrl}/`);
  if (!(home.headers.get('content-type') ?? '').includes('text/html')) throw new Error(`GET / answered ${home.status} ${home.headers.get('content-type')}`);
  await mkdir(SCREENSHOTS, { recursive: true });
  const profiles: string[] = [];
  const contexts: BrowserContext[] = [];
  const launch = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccard-chromium-'));
    profiles.push(dir);
    const c = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 1280, height: 860 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    c.setDefaultTimeout(10_000);
    contexts.push(c);
    return c;
  };
  const context = await launch();
  return {
    h,
    baseUrl,
    context,
    newPage: () => context.newPage(),
    newContext: launch,
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      await h.close();
      for (const d of profiles) await rm(d, { recursive: true, force: true });
    },
  };
}
