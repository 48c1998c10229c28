#!/usr/bin/env node
/**
 * Compiles the service (src/) to JavaScript in dist/ (`npm run build:server`). With --if-stale (`prestart`) it only
 * builds when dist/ is missing or older than the sources, and does nothing where there are no sources (an image
 * or package that ships dist/ alone). bin/ccard.mjs uses distIsFresh to choose dist/ or the sources.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Written last by a build: dist/ is complete and as new as this file's time. */
const STAMP = 'dist/.build-stamp';
/** What the compiled output depends on besides src/. */
const INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a deleted or renamed file changes its directory's time
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

export function hasSources(root = ROOT) {
  return existsSync(join(root, 'src/main.ts'));
}

/** dist/ holds a complete build at least as new as every source it was made from. */
export function distIsFresh(root = ROOT) {
  const stamp = join(root, STAMP);
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  const inputs = [join(root, 'src'), ...INPUTS.map((f) => join(root, f)).filter((f) => existsSync(f))];
  return inputs.every((p) => newestMtime(p) <= built);
}

export function buildServer(root = ROOT) {
  // Everything but the web console's build (dist/web, made by `npm run build:web` from web/, not from src/).
  const dist = join(root, 'dist');
  if (existsSync(dist)) for (const e of readdirSync(dist)) if (e !== 'web') rmSync(join(dist, e), { recursive: true, force: true });
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc failed (exit ${r.status ?? r.signal})`);
  writeFileSync(join(root, STAMP), `${new Date().toISOString()}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ifStale = process.argv.includes('--if-stale');
  try {
    if (!ifStale) buildServer();
    else if (hasSources() && !distIsFresh()) {
      process.stderr.write('dist/ is missing or older than src/: building it (npm run build:server)\n');
      buildServer();
    }
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
