import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/store/db.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/store/embedded.ts';
import { migrate } from '../../src/store/migrate.ts';
import { streamRates } from '../../src/store/rates.ts';
import { seedBigRateTable } from '../helpers/bulk-data.ts';

/**
 * The embedded PGlite runs one transaction at a time for all connections: an export whose reader stalls must not
 * hold one open, or every call would wait for it.
 */
let dir: string;
let pg: EmbeddedPostgres;
let pool: Pool;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ccard-embedded-'));
  pg = await startEmbeddedPostgres(dir);
  pool = createPool(pg.url, 4);
  await migrate(pool);
  await seedBigRateTable(pool, 'big', 20_000, 100);
}, 120_000);
afterAll(async () => {
  await pool?.end();
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('exports on the embedded database', () => {
  it('a stalled export does not block other connections; ending it frees its cursor', async () => {
    const out = new PassThrough({ highWaterMark: 1024 }); // never read: the export waits for drain
    const exporting = streamRates(pool, 'big', out).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const other = await pool.query<{ n: bigint }>('SELECT count(*) AS n FROM rates');
    expect(Number(other.rows[0]!.n)).toBe(20_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    out.destroy();
    expect(await exporting).toMatchObject({ code: 'EXPORT_ABORTED' });
    const cursors = await pool.query<{ n: bigint }>('SELECT count(*) AS n FROM pg_cursors');
    expect(Number(cursors.rows[0]!.n)).toBe(0);
  });
});
