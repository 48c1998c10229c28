import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { RateImportError, parseRatesCsv } from '../../src/billing/rates-csv.ts';
import { cost } from '../../src/billing/rating.ts';
import {
  exportRates,
  getRateTable,
  importRates,
  listRates,
  listRateTables,
  loadRateIndex,
  RateCache,
} from '../../src/store/rates.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const HEADER = 'prefix,destination,rate,connect_fee,initial_increment,subsequent_increment,effective_from,effective_to';

async function rateCount(tableName: string): Promise<number> {
  const r = await db.pool.query<{ n: bigint }>(
    'SELECT count(*)::bigint AS n FROM rates r JOIN rate_tables t ON t.id = r.rate_table_id WHERE t.name = $1',
    [tableName],
  );
  return Number(r.rows[0]!.n);
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

describe('importRates / exportRates', () => {
  it('creates the table with the given rules and imports every row exactly', async () => {
    const csv = `${HEADER}\n44,UK,0.0125,0.05,30,6,2025-01-01T00:00:00Z,\n1,"USA, Canada",123456789.123456,0.000001,1,1,,\n`;
    const res = await importRates(db.pool, 'retail', csv, { currency: 'EUR', decimals: 4, rounding: 'half_up', minBillableSeconds: 3 });
    expect(res).toMatchObject({ created: true, rows: 2, inserted: 2, updated: 0, deleted: 0 });
    expect(await getRateTable(db.pool, 'retail')).toEqual({
      id: res.tableId,
      name: 'retail',
      currency: 'EUR',
      decimals: 4,
      rounding: 'half_up',
      minBillableSeconds: 3,
    });
    const rates = await listRates(db.pool, 'retail');
    expect(rates.map((r) => [r.prefix, r.destination, r.ratePerMin, r.connectFee, r.initialIncrement, r.subsequentIncrement])).toEqual([
      ['1', 'USA, Canada', 123_456_789_123_456n, 1n, 1, 1],
      ['44', 'UK', 12_500n, 50_000n, 30, 6],
    ]);
    expect(rates[1]!.effectiveFrom).toEqual(new Date('2025-01-01T00:00:00Z'));
  });

  it('export -> import into another table -> export is identical, exact to the micro', async () => {
    const first = await exportRates(db.pool, 'retail');
    expect(first).toBe(
      // amounts keep every significant decimal and at least the table's 4
      `${HEADER}\n1,"USA, Canada",123456789.123456,0.000001,1,1,,\n44,UK,0.0125,0.0500,30,6,2025-01-01T00:00:00.000Z,\n`,
    );
    await importRates(db.pool, 'retail-copy', first, { decimals: 4, rounding: 'half_up', currency: 'EUR', minBillableSeconds: 3 });
    expect(await exportRates(db.pool, 'retail-copy')).toBe(first);
    const parsed = await parseRatesCsv(first);
    expect(parsed.map((r) => r.ratePerMin)).toEqual([123_456_789_123_456n, 12_500n]);
  });

  it('a bad file imports nothing: no table created, an existing table untouched', async () => {
    const bad = `${HEADER}\n44,UK,0.01,,,,,\n45,X,abc,,,,,\n46,Y,-1,,,,,\n`;
    const err = await importRates(db.pool, 'never-created', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateImportError);
    expect((err as RateImportError).code).toBe('RATE_CSV_INVALID');
    expect((err as RateImportError).errors).toEqual([
      "line 3: rate 'abc' is not a decimal number (at most 6 decimals, e.g. 0.0125)",
      "line 4: rate '-1' must not be negative",
    ]);
    expect(await getRateTable(db.pool, 'never-created')).toBeUndefined();

    const before = await exportRates(db.pool, 'retail');
    await expect(importRates(db.pool, 'retail', bad)).rejects.toMatchObject({ code: 'RATE_CSV_INVALID' });
    await expect(importRates(db.pool, 'retail', 'prefix,rate\n44,"0.1\n')).rejects.toMatchObject({ code: 'RATE_CSV_INVALID' });
    expect(await exportRates(db.pool, 'retail')).toBe(before);
  });

  it('an import whose rules differ from the existing table is refused and changes nothing', async () => {
    const before = await exportRates(db.pool, 'retail');
    await expect(importRates(db.pool, 'retail', `${HEADER}\n9,Z,1,,,,,\n`, { decimals: 2 })).rejects.toMatchObject({
      code: 'RATE_TABLE_MISMATCH',
    });
    expect(await exportRates(db.pool, 'retail')).toBe(before);
  });

  it('a database failure in the middle of an import rolls all of it back (one transaction)', async () => {
    await importRates(db.pool, 'atomic', `${HEADER}\n44,UK,0.01,,,,,\n`);
    const before = await exportRates(db.pool, 'atomic');
    // Test-only trigger that fails on one row, after the DELETE and the earlier inserts already ran.
    await db.pool.query(`CREATE FUNCTION test_fail_666() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.prefix = '666' THEN RAISE EXCEPTION 'boom on 666'; END IF; RETURN NEW; END $$`);
    await db.pool.query(`CREATE TRIGGER test_fail_666 BEFORE INSERT ON rates FOR EACH ROW EXECUTE FUNCTION test_fail_666()`);
    try {
      await expect(importRates(db.pool, 'atomic', `${HEADER}\n1,US,0.01,,,,,\n666,X,0.01,,,,,\n`)).rejects.toThrow(/boom on 666/);
      await expect(importRates(db.pool, 'atomic-new', `${HEADER}\n666,X,0.01,,,,,\n`)).rejects.toThrow(/boom on 666/);
    } finally {
      await db.pool.query('DROP TRIGGER test_fail_666 ON rates');
      await db.pool.query('DROP FUNCTION test_fail_666()');
    }
    expect(await exportRates(db.pool, 'atomic')).toBe(before);
    expect(await getRateTable(db.pool, 'atomic-new')).toBeUndefined();
  });

  it('replace makes the file the whole content; merge upserts by (prefix, effective_from) and keeps the rest', async () => {
    await importRates(db.pool, 'wholesale', `${HEADER}\n44,UK,0.01,,,,,\n33,FR,0.02,,,,,\n49,DE,0.03,,,,,\n`);
    const replaced = await importRates(db.pool, 'wholesale', `${HEADER}\n44,UK,0.011,,,,,\n39,IT,0.04,,,,,\n`);
    expect(replaced).toMatchObject({ created: false, deleted: 3, inserted: 2, updated: 0 });
    expect((await listRates(db.pool, 'wholesale')).map((r) => [r.prefix, r.ratePerMin])).toEqual([
      ['39', 40_000n],
      ['44', 11_000n],
    ]);

    const merged = await importRates(
      db.pool,
      'wholesale',
      `${HEADER}\n44,United Kingdom,0.012,,,,,\n44,UK from July,0.009,,,,2025-07-01,\n34,ES,0.05,,,,,\n`,
      { mode: 'merge' },
    );
    expect(merged).toMatchObject({ updated: 1, inserted: 2, deleted: 0 });
    const rows = await listRates(db.pool, 'wholesale');
    expect(rows.map((r) => [r.prefix, r.destination, r.ratePerMin, r.effectiveFrom?.toISOString() ?? null])).toEqual([
      ['34', 'ES', 50_000n, null],
      ['39', 'IT', 40_000n, null],
      ['44', 'United Kingdom', 12_000n, null],
      ['44', 'UK from July', 9_000n, '2025-07-01T00:00:00.000Z'],
    ]);
    expect((await listRates(db.pool, 'wholesale', { prefix: '4' })).map((r) => r.prefix)).toEqual(['44', '44']);
    expect(await listRates(db.pool, 'wholesale', { limit: 1, offset: 1 })).toHaveLength(1);
  });

  it('imports from a stream, and lists tables with their rate counts', async () => {
    const lines = [HEADER];
    for (let i = 0; i < 12_000; i++) lines.push(`${100_000 + i},bulk,0.${String(i).padStart(6, '0')},,,,,`);
    const res = await importRates(db.pool, 'bulk', Readable.from([lines.join('\n')]));
    expect(res.inserted).toBe(12_000);
    expect(await rateCount('bulk')).toBe(12_000);
    const tables = await listRateTables(db.pool);
    expect(tables.find((t) => t.name === 'bulk')?.rateCount).toBe(12_000);
  });

  it('export of an unknown table is refused', async () => {
    await expect(exportRates(db.pool, 'nope')).rejects.toThrow(/no rate table named "nope"/);
  });
});

describe('RateIndex from the database', () => {
  it('ruleFor gives the matched rate and the full RateRule (table rules + tax)', async () => {
    const index = await loadRateIndex(db.pool);
    const retail = index.tableByName('retail')!;
    const rated = index.ruleFor(retail.id, '447700900123', 200_000, new Date('2025-06-01T00:00:00Z'))!;
    expect(rated.rate.prefix).toBe('44');
    expect(rated.rule).toEqual({
      ratePerMin: 12_500n,
      connectFee: 50_000n,
      initialIncrement: 30,
      subsequentIncrement: 6,
      decimals: 4,
      rounding: 'half_up',
      minBillableSeconds: 3,
      taxPpm: 200_000,
    });
    // 30 s: (0.05 + 0.00625) * 1.2 = 0.0675
    expect(cost(rated.rule, 30)).toBe(67_500n);
    // 44 only starts 2025-01-01: before that, no rate -> refused, never free
    expect(index.ruleFor(retail.id, '447700900123', 0, new Date('2024-06-01T00:00:00Z'))).toBeUndefined();
    expect(index.ruleFor(retail.id, '999', 0)).toBeUndefined();
    expect(index.ruleFor('999999', '44', 0)).toBeUndefined();
  });
});

describe('RateCache', () => {
  it('reloads on NOTIFY within a second of a change', async () => {
    const cache = new RateCache({ pool: db.pool, debounceMs: 50 });
    await cache.start();
    try {
      const table = cache.index.tableByName('wholesale')!;
      const now = new Date('2025-03-01T00:00:00Z');
      expect(cache.ruleFor(table.id, '4420', 0, now)?.rule.ratePerMin).toBe(12_000n);

      await db.pool.query(`UPDATE rates SET rate_per_min_micros = 13000 WHERE rate_table_id = $1 AND prefix = '44' AND effective_from IS NULL`, [
        table.id,
      ]);
      const took = await waitFor(() => cache.ruleFor(table.id, '4420', 0, now)?.rule.ratePerMin === 13_000n, 1_000);
      expect(took).toBeLessThan(1_000);

      // a new table (trigger on rate_tables) and an import both show up too
      await importRates(db.pool, 'late', `${HEADER}\n7,RU,0.3,,,,,\n`);
      await waitFor(() => cache.index.tableByName('late') !== undefined, 1_000);
      expect(cache.ruleFor(cache.index.tableByName('late')!.id, '7495', 0)?.rate.destination).toBe('RU');

      // a deleted rate disappears: the number is then refused
      await db.pool.query(`DELETE FROM rates WHERE prefix = '7'`);
      await waitFor(() => cache.ruleFor(cache.index.tableByName('late')!.id, '7495', 0) === undefined, 1_000);
    } finally {
      await cache.stop();
    }
  });

  it('a notification whose change a reload() already read does not stop later reloads', async () => {
    // The notification's debounce fires after an explicit reload() has read everything: nothing is pending then.
    const cache = new RateCache({ pool: db.pool, debounceMs: 150 });
    await cache.start();
    try {
      const table = cache.index.tableByName('wholesale')!;
      const now = new Date('2025-03-01T00:00:00Z');
      await db.pool.query(`UPDATE rates SET rate_per_min_micros = 14000 WHERE rate_table_id = $1 AND prefix = '44' AND effective_from IS NULL`, [table.id]);
      await new Promise((r) => setTimeout(r, 50)); // the notification has arrived: its refresh is scheduled
      await cache.reload(); // ...and this reads what it named
      expect(cache.ruleFor(table.id, '4420', 0, now)?.rule.ratePerMin).toBe(14_000n);
      await new Promise((r) => setTimeout(r, 300)); // the debounced refresh runs with nothing pending
      await db.pool.query(`UPDATE rates SET rate_per_min_micros = 15000 WHERE rate_table_id = $1 AND prefix = '44' AND effective_from IS NULL`, [table.id]);
      await cache.reload();
      expect(cache.ruleFor(table.id, '4420', 0, now)?.rule.ratePerMin).toBe(15_000n);
    } finally {
      await cache.stop();
    }
  });

  it('a reload of one table keeps the routing plans and carriers', async () => {
    const cache = new RateCache({ pool: db.pool, debounceMs: 50 });
    await cache.start();
    try {
      const routing = cache.index.routing;
      const table = cache.index.tableByName('wholesale')!;
      await db.pool.query(`UPDATE rates SET rate_per_min_micros = 16000 WHERE rate_table_id = $1 AND prefix = '44' AND effective_from IS NULL`, [table.id]);
      await waitFor(() => cache.ruleFor(table.id, '4420', 0, new Date('2025-03-01T00:00:00Z'))?.rule.ratePerMin === 16_000n, 1_000);
      expect(cache.index.routing).toBe(routing);
    } finally {
      await cache.stop();
    }
  });

  it('coalesces a burst of notifications into few reloads and stops cleanly', async () => {
    let reloads = 0;
    const cache = new RateCache({ pool: db.pool, debounceMs: 100, onReload: () => reloads++ });
    await cache.start();
    expect(reloads).toBe(1);
    for (let i = 0; i < 10; i++) await db.pool.query(`UPDATE rate_tables SET currency = 'USD' WHERE name = 'late'`);
    await waitFor(() => reloads >= 2, 1_000);
    await new Promise((r) => setTimeout(r, 250));
    expect(reloads).toBeLessThanOrEqual(3);
    await cache.stop();
    const after = reloads;
    await db.pool.query(`UPDATE rate_tables SET currency = 'USD' WHERE name = 'late'`);
    await new Promise((r) => setTimeout(r, 250));
    expect(reloads).toBe(after);
  });
});
