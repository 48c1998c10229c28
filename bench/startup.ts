/**
 * Start-up of `ccard serve` run from the TypeScript sources through tsx (development) and from the compiled
 * JavaScript in dist/ (production: `npm start`, `ccard serve`, the Docker image): time from spawn to the "ccard ready"
 * log line (migrations checked, PostgreSQL, Redis, both listeners up), resident memory after a few idle seconds, and
 * the time of `ccard --help` (an operator command). Builds dist/ first when it is missing or stale.
 *   npm run bench -- startup          (BENCH_STARTUP_RUNS=5, BENCH_STARTUP_IDLE_MS=3000)
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { percentile, scratchDb } from './scratch-db.ts';
// @ts-expect-error: a plain ES module without type declarations
import { buildServer, distIsFresh } from '../scripts/build-server.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODES = {
  tsx: ['--import', 'tsx', 'src/main.ts'],
  compiled: ['dist/main.js'],
} as const;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function serveOnce(args: readonly string[], env: Record<string, string>, idleMs: number): Promise<{ readyMs: number; rssMb: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [...args, 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const readyMs = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ccard ready')) resolve(performance.now() - started);
      });
      child.once('exit', (code) => reject(new Error(`ccard serve exited (${code}) before ready`)));
    });
    await new Promise((r) => setTimeout(r, idleMs));
    return { readyMs, rssMb: rssKb(child.pid!) / 1024 };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export async function benchStartup(): Promise<Record<string, string | number>> {
  const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 5);
  const idleMs = Number(process.env.BENCH_STARTUP_IDLE_MS ?? 3000);
  if (!distIsFresh()) buildServer();
  const db = await scratchDb('startup');
  const env = {
    PATH: process.env.PATH ?? '', DATABASE_URL: db.url, REDIS_URL: db.redisUrl, CCARD_REDIS_PREFIX: db.prefix,
    CCARD_SECRET: 'bench-secret-0123456789', CCARD_ESL_PORT: '0', CCARD_HTTP_PORT: '0', LOG_LEVEL: 'info',
  };
  const result: Record<string, string | number> = { runs };
  try {
    await serveOnce(MODES.compiled, env, 0); // applies the migrations once, outside the figures
    for (const [mode, args] of Object.entries(MODES)) {
      const ready: number[] = [];
      const rss: number[] = [];
      const help: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await serveOnce(args, env, idleMs);
        ready.push(r.readyMs);
        rss.push(r.rssMb);
        const t = performance.now();
        spawnSync(process.execPath, [...args, '--help'], { cwd: ROOT, env, stdio: 'ignore' });
        help.push(performance.now() - t);
      }
      const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
      result[`${mode}: serve ready, ms (median)`] = Math.round(med(ready));
      result[`${mode}: idle RSS, MB (median)`] = Number(med(rss).toFixed(1));
      result[`${mode}: ccard --help, ms (median)`] = Math.round(med(help));
    }
  } finally {
    await db.drop();
  }
  return result;
}
