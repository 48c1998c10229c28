/**
 * The production build: src/ compiled by tsconfig.build.json, laid out as the Docker image and a deployment lay it out
 * (dist/ beside migrations/, package.json and node_modules/, no src/), runs without tsx: the operator commands, PIN
 * generation on worker threads, the migrations, the simulator's templates (the demo) and `serve` up to ready and a
 * clean SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SECRET = 'test-secret-0123456789';
const exec = promisify(execFile);

let app: string;
let db: TestDb;

beforeAll(async () => {
  app = await mkdtemp(path.join(tmpdir(), 'ccard-dist-'));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  await copyFile(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));
  await symlink(path.join(ROOT, 'migrations'), path.join(app, 'migrations'));
  await symlink(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'));
  db = await createTestDb();
}, 120_000);
afterAll(async () => {
  await db?.drop();
  if (app) await rm(app, { recursive: true, force: true });
});

/** `node dist/main.js ...` in the built layout, without tsx (NODE_OPTIONS cleared: vitest's loaders stay out). */
const ccard = (args: string[], env: Record<string, string> = {}) =>
  exec(process.execPath, [path.join(app, 'dist/main.js'), ...args], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, CCARD_SECRET: SECRET, ...env },
  });

async function jsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await jsFiles(p)));
    else if (p.endsWith('.js')) out.push(p);
  }
  return out;
}

describe('the compiled service (dist/)', () => {
  it('imports JavaScript only: no relative .ts specifier is left in the output', async () => {
    const files = await jsFiles(path.join(app, 'dist'));
    expect(files.length).toBeGreaterThan(50);
    const left: string[] = [];
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\()\s*["'](\.{1,2}\/[^"']+)["']/g)) if (!m[1]!.endsWith('.js') && !m[1]!.endsWith('.json')) left.push(`${f}: ${m[1]}`);
    }
    expect(left).toEqual([]);
  });

  it('imports only production dependencies (what `npm ci --omit=dev` installs, as in the Docker image)', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const { builtinModules } = await import('node:module');
    const builtin = new Set(builtinModules);
    const seen = new Set<string>();
    for (const f of await jsFiles(path.join(app, 'dist'))) {
      const text = await readFile(f, 'utf8');
      for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\b[^'"]*?from\s*["']([^"'.][^"']*)["']|import\(\s*["']([^"'.][^"']*)["']\s*\)/gm)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('node:') || builtin.has(spec)) continue;
        seen.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(seen.size).toBeGreaterThan(5);
    expect([...seen].filter((name) => !(name in pkg.dependencies))).toEqual([]);
  });

  it('runs the operator commands: migrations found, PINs generated on worker threads', async () => {
    expect((await ccard(['--help'])).stdout).toMatch(/series/);
    expect((await ccard(['migrate'])).stdout).toMatch(/database is up to date/);
    const csv = path.join(app, 'rates.csv');
    await writeFile(csv, 'prefix,destination,rate,connect_fee\n1,USA,0.0123,0\n');
    await ccard(['rates', 'import', 'std', csv]);
    const made = await ccard(['series', 'create', '--name', 'Built', '--number', '300', '--count', '500', '--rate-table', 'std', '--json']);
    expect(JSON.parse(made.stdout)).toMatchObject({ count: 500 });
    const bad = await ccard(['cards', 'topup', '1-000000001', 'abc']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid amount "abc"/);
  });

  it('plays the demo (embedded database, simulator templates) and serves until SIGTERM', async () => {
    const demo = await ccard(['demo'], { DATABASE_URL: '' });
    expect(demo.stdout).toMatch(/CDRs recorded/);

    const redis = createTestRedis();
    await redis.redis.quit();
    const child = spawn(process.execPath, [path.join(app, 'dist/main.js'), 'serve'], {
      cwd: app,
      env: {
        PATH: process.env.PATH ?? '', DATABASE_URL: db.url, CCARD_SECRET: SECRET, REDIS_URL: redis.url,
        CCARD_REDIS_PREFIX: redis.prefix, CCARD_ESL_PORT: '0', CCARD_HTTP_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 300 && !out.includes('ccard ready'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toMatch(/ccard ready/);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
