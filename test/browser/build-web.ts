import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const WEB_DIST = join(root, 'dist/web');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Builds the console into dist/web when it is missing or older than its sources, so `npm test` works on a fresh
 * clone after `npm ci` (vite's build API, the same config as `npm run build:web`).
 */
export async function ensureWebBuilt(): Promise<string> {
  const index = join(WEB_DIST, 'index.html');
  const sources = Math.max(newest(join(root, 'web/src')), statSync(join(root, 'web/index.html')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return WEB_DIST;
  const { build } = await import('vite');
  // vitest runs with NODE_ENV=test, which would bundle React's development build: build what ccard ships.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ configFile: join(root, 'web/vite.config.ts'), mode: 'production', logLevel: 'warn' });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  return WEB_DIST;
}
