import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { openTransactions, seedBigRateTable } from '../helpers/bulk-data.ts';
import { runCli } from '../../src/cli/main.ts';
import { SECRET } from './helpers.ts';

/** stdout of `ccard ... | head -c 4096`: takes a few KB, then the pipe closes (EPIPE). */
class ClosingPipe extends Writable {
  taken = 0;
  err = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error) => void) {
    this.taken += chunk.length;
    if (this.taken > 4096) {
      const e = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
      cb(e);
      return;
    }
    cb();
  }
}

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
  await seedBigRateTable(db.pool, 'big', 30_000, 50);
});
afterAll(async () => {
  await db.drop();
});

describe('CLI exports into a pipe that closes', () => {
  it('rates export stops with one line, releasing its cursor', async () => {
    const stdout = new ClosingPipe();
    let err = '';
    const stderr = new Writable({
      write(c, _e, cb) {
        err += String(c);
        cb();
      },
    });
    const code = await runCli(['node', 'ccard', 'rates', 'export', 'big'], { env: { DATABASE_URL: db.url, CCARD_SECRET: SECRET }, stdout, stderr, pool: db.pool });
    expect(code).not.toBe(0);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/^ccard: error: the output failed: write EPIPE\n$/);
    expect(stdout.taken).toBeLessThan(30_000 * 80);
    const name = new URL(db.url).pathname.slice(1);
    expect(await openTransactions(db.pool, name)).toBe(0);
    // The pool is whole again: every connection can be taken.
    const clients = await Promise.all(Array.from({ length: 20 }, () => db.pool.connect()));
    for (const c of clients) c.release();
  });
});
