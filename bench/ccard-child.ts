/**
 * ccard as the benchmarks run it: the compiled JavaScript in dist/ (what `npm start`, `ccard serve` and the Docker
 * image run), in a child process of its own with plain `node` — no tsx loader, no esbuild transform (its `__name`
 * helpers), no source maps switched on (tsx enables them, which makes every `Error.stack` dearer). dist/ is built first
 * when it is missing or older than src/, as `npm start`'s prestart does.
 *
 * The child's harness (bench/ccard-server.ts: seeding, the IPC questions) is TypeScript; it is transpiled on its own
 * (typescript's transpileModule, types erased, nothing bundled) to .scratch/bench/ with its `../src/*.ts` imports
 * pointed at `../../dist/*.js`, so every line of ccard it runs is the compiled build's.
 */
import { fork } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
// @ts-expect-error: a plain ES module without type declarations
import { buildServer, distIsFresh } from '../scripts/build-server.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Builds dist/ when stale (says so on stderr); returns how ccard runs, for the benchmark's output. */
export function ensureDist(): string {
  if (!(distIsFresh as (root?: string) => boolean)(ROOT)) {
    process.stderr.write('bench: dist/ is missing or older than src/: building it (npm run build:server)\n');
    (buildServer as (root?: string) => void)(ROOT);
  }
  return 'compiled dist/ (node, no tsx)';
}

/**
 * The harness `file` (a .ts beside this one) as an ES module that imports ccard from dist/: written to
 * .scratch/bench/<name>.mjs (node_modules resolve from there as from the repository). Only `../src/` imports are
 * rewritten; the harness must not import other bench modules.
 */
export function compileHarness(file: string): string {
  const src = readFileSync(path.join(ROOT, 'bench', file), 'utf8');
  const pointed = src.replace(/(from\s+|import\s*\(\s*)'\.\.\/src\/([^']+)\.ts'/g, "$1'../../dist/$2.js'");
  if (/from\s+'\.\/[^']+'/.test(pointed)) throw new Error(`${file}: a child harness imports only from src/ and packages`);
  const out = ts.transpileModule(pointed, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    fileName: file,
  });
  const dir = path.join(ROOT, '.scratch/bench');
  mkdirSync(dir, { recursive: true });
  const target = path.join(dir, file.replace(/\.ts$/, '.mjs'));
  writeFileSync(target, out.outputText);
  return target;
}

export interface ServerInfo {
  eslPort: number;
  httpPort: number;
  did: string;
  pins: string[];
}

/**
 * bench/ccard-server.ts, compiled, as a child process: `env` configures it (BENCH_DATABASE_URL, ... see that file),
 * `nodeArgs` are extra node flags (e.g. --max-semi-space-size). ask(q) puts one of its IPC questions.
 * BENCH_CCARD_FROM=tsx runs the sources through tsx instead, for comparison.
 */
export function startCcard(env: Record<string, string>, nodeArgs: string[] = []) {
  // BENCH_CCARD_FROM=tsx: the TypeScript sources through tsx instead (development's way), to compare.
  const tsx = process.env.BENCH_CCARD_FROM === 'tsx';
  const how = tsx ? 'TypeScript sources through tsx (BENCH_CCARD_FROM=tsx; production runs dist/)' : ensureDist();
  const entry = tsx ? path.join(ROOT, 'bench/ccard-server.ts') : compileHarness('ccard-server.ts');
  const child = fork(entry, [], {
    execArgv: [...(tsx ? ['--import', 'tsx'] : []), '--expose-gc', ...nodeArgs],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    // BENCH_CCARD_LOG=<file>: ccard's log lines go there instead of /dev/null.
    stdio: ['ignore', process.env.BENCH_CCARD_LOG ? openSync(process.env.BENCH_CCARD_LOG, 'w') : 'ignore', 'inherit', 'ipc'],
  });
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.ok) w?.resolve(m.result);
    else w?.reject(new Error(m.error));
  });
  const ready = new Promise<ServerInfo>((resolve, reject) => {
    waiting.set(0, { resolve: resolve as (v: unknown) => void, reject });
    child.once('exit', (code) => reject(new Error(`ccard exited (${code}) before it was ready`)));
  });
  const ask = <T>(q: string) =>
    new Promise<T>((resolve, reject) => {
      const id = ++seq;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, ask: q });
    });
  const exited = new Promise((r) => child.once('exit', r));
  return { pid: child.pid!, how, ready, ask, stop: async () => (void ask('exit').catch(() => undefined), await exited) };
}
