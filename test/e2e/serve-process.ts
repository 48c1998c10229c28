import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/**
 * `ccard serve` as a real child process (from the sources, through tsx) with the given environment on top of this
 * one; every JSON log line it prints on stdout is parsed and pushed into `lines` (anything else is skipped), so a
 * test can wait for "ccard ready" and read the workers' ports and pids from them. stderr is the test's.
 */
export function spawnServe<L>(env: Record<string, string>, lines: L[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as L);
      } catch {
        // not a log line
      }
    }
  });
  return child;
}
