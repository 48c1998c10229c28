import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WEB_ROOT, webBuilt } from '../api/web.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * `npm start` and `npm run demo -- --serve` build the web console (`npm run build:web`, vite) when dist/web is missing, so
 * `npm ci` and the README's commands are all a newcomer needs; nothing generated is committed. A failed or
 * impossible build (no web/ sources, no dev dependencies) leaves the API running and the console page saying
 * how to build it. Returns whether the console is there.
 */
export function ensureWebBuilt(log: (line: string) => void, env: NodeJS.ProcessEnv = process.env, root = DEFAULT_WEB_ROOT): boolean {
  if (webBuilt(root)) return true;
  // Only `npm start` and `npm run demo` build (npm names the script it runs): `ccard serve` run by hand, by a
  // supervisor or by the tests never starts a build of its own.
  if (env.npm_lifecycle_event !== 'start' && env.npm_lifecycle_event !== 'demo') {
    log('the web console is not built (npm run build:web): serving the API only');
    return false;
  }
  if (!existsSync(path.join(REPO, 'web', 'index.html'))) {
    log('web console sources (web/) not found: serving the API only');
    return false;
  }
  log('building the web console once (npm run build:web)...');
  const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '--silent', 'build:web'], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 300_000,
  });
  if (r.status !== 0 || !webBuilt()) {
    log(`the web console could not be built (${r.error?.message ?? `exit ${r.status}`}): serving the API only; run npm run build:web`);
    return false;
  }
  return true;
}
