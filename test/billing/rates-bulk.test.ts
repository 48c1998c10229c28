import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { MAX_LISTED_ISSUES, parseRatesCsv, RateImportError, readRatesCsv } from '../../src/billing/rates-csv.ts';
import { exportRates, importRates, RateCache, streamRates } from '../../src/store/rates.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const HEADER = 'prefix,destination,rate,connect_fee,initial_increment,subsequent_increment,effective_from,effective_to';
const goodLines = (n: number, from = 100_000) => Array.from({ length: n }, (_, i) => `${from + i},D${i},0.0${i % 10}1,,,,,`);

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a bad rate CSV', () => {
  it('lists the first 100 problems and counts the rest', async () => {
    const bad = Array.from({ length: 5_000 }, (_, i) => `${i},X,abc,,,,,`);
    const err = (await parseRatesCsv([HEADER, ...bad].join('\n')).catch((e: unknown) => e)) as RateImportError;
    expect(err).toBeInstanceOf(RateImportError);
    expect(err.issues).toHaveLength(MAX_LISTED_ISSUES);
    expect(err.moreIssues).toBe(4_900);
    expect(err.issues[0]!.line).toBe(2);
    expect(err.errors).toHaveLength(MAX_LISTED_ISSUES + 1);
    expect(err.errors.at(-1)).toBe('... and 4900 more errors (not listed)');
    expect(err.message).toMatch(/^rate CSV rejected, nothing imported \(5000 errors\): line 2: rate 'abc'/);
  });

  it('is parsed in pieces, yielding to the event loop (other work runs while a big file is read)', async () => {
    const text = [HEADER, ...Array.from({ length: 60_000 }, (_, i) => `${i},X,abc,,,,,`)].join('\n');
    let ticks = 0;
    let on = true;
    const tick = () => {
      ticks++;
      if (on) setImmediate(tick);
    };
    setImmediate(tick);
    const r = await readRatesCsv(text, () => {});
    on = false;
    expect(r.issues).toHaveLength(MAX_LISTED_ISSUES);
    expect(r.moreIssues).toBe(60_000 - MAX_LISTED_ISSUES);
    // One tick per 2000 records at least: the parse never ran as one long block.
    expect(ticks).toBeGreaterThanOrEqual(25);
  });

  it('valid rows reach the importer in batches, never all at once', async () => {
    const sizes: number[] = [];
    const r = await readRatesCsv([HEADER, ...goodLines(12_345)].join('\n'), (rows) => void sizes.push(rows.length), { batchSize: 5_000 });
    expect(r).toEqual({ rows: 12_345, issues: [], moreIssues: 0 });
    expect(sizes).toEqual([5_000, 5_000, 2_345]);
  });

  it('an import finds duplicates in the staged rows (line numbers kept) and touches nothing', async () => {
    await importRates(db.pool, 'dups', [HEADER, ...goodLines(10)].join('\n'));
    const before = await exportRates(db.pool, 'dups');
    const lines = [HEADER, ...goodLines(300), ...goodLines(150)];
    const err = (await importRates(db.pool, 'dups', lines.join('\n')).catch((e: unknown) => e)) as RateImportError;
    expect(err).toBeInstanceOf(RateImportError);
    expect(err.code).toBe('RATE_CSV_INVALID');
    expect(err.issues).toHaveLength(MAX_LISTED_ISSUES);
    expect(err.moreIssues).toBe(50);
    expect(err.issues[0]).toEqual({ line: 302, message: 'duplicate of line 2: prefix 100000 with the same effective_from (empty)' });
    expect(await exportRates(db.pool, 'dups')).toBe(before);
  });

  it('an import of a huge bad file stops handing rows on at the first error and rolls back', async () => {
    const lines = [HEADER, ...goodLines(20_000), 'x,bad,1,,,,,', ...goodLines(20_000, 500_000)];
    await expect(importRates(db.pool, 'never', Readable.from([lines.join('\n')]))).rejects.toMatchObject({
      code: 'RATE_CSV_INVALID',
      issues: [{ line: 20_002, message: "prefix 'x' must be 1 to 20 digits" }],
    });
    expect((await db.pool.query(`SELECT 1 FROM rate_tables WHERE name = 'never'`)).rowCount).toBe(0);
  });
});

describe('streamed rate export', () => {
  it('writes exactly what exportRates returns, in batches', async () => {
    await importRates(db.pool, 'big', [HEADER, ...goodLines(12_000), '44,UK,0.0125,0.05,30,6,2025-01-01,'].join('\n'), { decimals: 4 });
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const n = await streamRates(db.pool, 'big', out);
    expect(n).toBe(12_001);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(await exportRates(db.pool, 'big'));
  });
});

describe('RateCache reloads only the table that changed', () => {
  it('a one-row change rebuilds that table; the others are kept as they were', async () => {
    await importRates(db.pool, 'small', `${HEADER}\n44,UK,0.01,,,,,\n`);
    let reloads = 0;
    const cache = new RateCache({ pool: db.pool, debounceMs: 20, onReload: () => reloads++ });
    await cache.start();
    try {
      const big = cache.index.tableByName('big')!;
      const small = cache.index.tableByName('small')!;
      const bigRate = cache.index.lookup(big.id, '100005123')!;
      const smallRate = cache.index.lookup(small.id, '4420')!;
      expect(smallRate.ratePerMin).toBe(10_000n);

      await db.pool.query(`UPDATE rates SET rate_per_min_micros = 20000 WHERE rate_table_id = $1`, [small.id]);
      await waitFor(() => cache.index.lookup(small.id, '4420')?.ratePerMin === 20_000n, 2_000);
      // The big table's entries are the very same objects: it was not read again.
      expect(cache.index.lookup(big.id, '100005123')).toBe(bigRate);
      expect(cache.index.lookup(small.id, '4420')).not.toBe(smallRate);

      // A deleted table disappears; a new one appears; the big one is still untouched.
      await db.pool.query(`DELETE FROM rates WHERE rate_table_id = $1`, [small.id]);
      await db.pool.query(`DELETE FROM rate_tables WHERE id = $1`, [small.id]);
      await importRates(db.pool, 'fresh', `${HEADER}\n33,FR,0.02,,,,,\n`);
      await waitFor(() => cache.index.tableByName('small') === undefined && cache.index.tableByName('fresh') !== undefined, 2_000);
      expect(cache.index.lookup(big.id, '100005123')).toBe(bigRate);

      // A reload of everything (reconnect, TRUNCATE) reads every table again.
      const before = reloads;
      await cache.reload();
      expect(reloads).toBe(before + 1);
      expect(cache.index.lookup(big.id, '100005123')).not.toBe(bigRate);
      expect(cache.index.lookup(big.id, '100005123')).toEqual(bigRate);
    } finally {
      await cache.stop();
    }
  });
});
