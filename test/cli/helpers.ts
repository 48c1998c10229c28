import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/main.ts';
import type { Pool } from 'pg';

export const SECRET = 'test-secret-0123456789';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
  json<T = any>(): T;
}

/** Runs `ccard <args>` in-process against the test database. */
export function cli(db: { url: string; pool: Pool }, sharedPool = true) {
  return async (...args: string[]): Promise<CliRun> => {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runCli(['node', 'ccard', ...args], {
      env: { DATABASE_URL: db.url, CCARD_SECRET: SECRET },
      stdout,
      stderr,
      ...(sharedPool && { pool: db.pool }),
    });
    return { code, out: stdout.text, err: stderr.text, json: () => JSON.parse(stdout.text) };
  };
}
