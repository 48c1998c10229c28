/**
 * The real service (PostgreSQL, Redis, ESL, HTTP) with the demo data and three operators, the built console, and
 * Debian's chromium driven by playwright-core in a fresh profile. Tests talk to the pages through page objects.
 */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
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

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

/**
 * When the service does not serve the console itself, the test serves dist/web and forwards the API paths to the
 * service, on one origin, as a reverse proxy in front of ccard would.
 */
async function consoleOrigin(apiPort: number, dist: string): Promise<{ url: string; server?: Server }> {
  const api = `http://127.0.0.1:${apiPort}`;
  const res = await fetch(`${api}/`).catch(() => undefined);
  if (res?.ok && (res.headers.get('content-type') ?? '').includes('text/html')) return { url: api };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (/^\/(v1|auth|selfcare|docs|cdr)(\/|$)/.test(path)) {
      const up = httpRequest({ host: '127.0.0.1', port: apiPort, path: req.url, method: req.method, headers: req.headers }, (u) => {
        res.writeHead(u.statusCode ?? 502, u.headers);
        u.pipe(res);
      });
      up.on('error', () => res.headersSent || res.writeHead(502).end());
      res.on('close', () => up.destroy()); // a closed tab ends its event stream upstream too
      req.pipe(up);
      return;
    }
    const file = normalize(join(dist, path));
    const real = file.startsWith(dist) && existsSync(file) && statSync(file).isFile() ? file : join(dist, 'index.html');
    res.writeHead(200, { 'content-type': TYPES[extname(real)] ?? 'application/octet-stream' });
    createReadStream(real).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, server };
}

export async function startConsole(): Promise<ConsoleHarness> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const dist = await ensureWebBuilt();
  const h = await startHarness({ jsonCdr: true });
  const ctx = { pool: h.service.pool, pinKeys: h.service.pinKeys };
  for (const [role, o] of Object.entries(OPERATORS)) await addOperator(ctx, { login: o.login, role: role as never, password: o.password });
  const origin = await consoleOrigin(h.service.http.port, dist);
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
    baseUrl: origin.url,
    context,
    newPage: () => context.newPage(),
    newContext: launch,
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      origin.server?.closeAllConnections();
      await new Promise<void>((r) => (origin.server ? origin.server.close(() => r()) : r()));
      await h.close();
      for (const d of profiles) await rm(d, { recursive: true, force: true });
    },
  };
}
