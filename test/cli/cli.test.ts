import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import ExcelJS from 'exceljs';
import { parse } from 'csv-parse/sync';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { decryptPin, derivePinKeys, hashPin } from '../../src/store/pin.ts';
import { cli, SECRET, type CliRun } from './helpers.ts';
import { runCli } from '../../src/cli/main.ts';
import { getCard as getCardRecord } from '../../src/store/cards.ts';
import type { CardSnapshot } from '../../src/live/live-balance.ts';

let db: TestDb;
let run: (...args: string[]) => Promise<CliRun>;
let dir: string;
const keys = derivePinKeys(SECRET);

const failsWith = (r: CliRun, code: number, re: RegExp) => {
  expect(r.code, r.err).toBe(code);
  expect(r.err).toMatch(re);
  expect(r.err.trim().split('\n')).toHaveLength(1);
};

beforeAll(async () => {
  db = await createTestDb();
  run = cli(db);
  dir = await mkdtemp(path.join(tmpdir(), 'ccard-cli-'));
  await writeFile(path.join(dir, 'rates.csv'), 'prefix,destination,rate,connect_fee\n1,USA,0.0123,0\n44,UK,0.02,0.05\n');
  const r = await run('rates', 'import', 'std', path.join(dir, 'rates.csv'));
  expect(r.code, r.err).toBe(0);
});
afterAll(async () => {
  await db?.drop();
});

describe('rates', () => {
  it('lists tables and rates, exports the CSV', async () => {
    expect((await run('rates', 'list', '--json')).json()[0]).toMatchObject({ name: 'std', currency: 'USD', rateCount: 2 });
    const rates = (await run('rates', 'list', 'std', '--json')).json();
    expect(rates.items.map((r: any) => [r.prefix, r.rate, r.connectFee])).toEqual([['1', '0.0123', '0.00'], ['44', '0.02', '0.05']]);
    const out = path.join(dir, 'exp.csv');
    expect((await run('rates', 'export', 'std', '--out', out)).code).toBe(0);
    expect(await readFile(out, 'utf8')).toMatch(/^prefix,/);
    expect((await run('rates', 'export', 'std')).out).toMatch(/44/);
  });

  it('rejects a malformed CSV with line numbers, importing nothing', async () => {
    const bad = path.join(dir, 'bad.csv');
    await writeFile(bad, 'prefix,destination,rate\n1,USA,0.01\n2x,Bad,0.01\n33,X,abc\n');
    const r = await run('rates', 'import', 'broken', bad);
    failsWith(r, 1, /line 3.*line 4/);
    expect((await run('rates', 'list', 'broken')).err).toMatch(/unknown rate table/);
    failsWith(await run('rates', 'import', 'x', path.join(dir, 'missing.csv')), 1, /cannot read/);
  });
});

describe('series create', () => {
  it('creates 1,000 cards with unique PINs found by pin_hash, decryptable, balance == ledger', async () => {
    const r = await run('series', 'create', '--name', 'Thousand', '--number', '100', '--count', '1000', '--balance', '5.25',
      '--rate-table', 'std', '--pin-length', '10', '--status', 'active', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.json()).toMatchObject({ number: '100', count: 1000 });
    const cards = await db.pool.query<{ serial: string; pin_hash: Buffer; pin_cipher: Buffer; balance_micros: bigint; status: string }>(
      `SELECT c.serial, c.pin_hash, c.pin_cipher, c.balance_micros, c.status FROM cards c JOIN series s ON s.id = c.series_id
       WHERE s.series_number = '100' ORDER BY c.serial`,
    );
    expect(cards.rowCount).toBe(1000);
    expect(cards.rows[0]!.serial).toBe('100-000000001');
    expect(cards.rows[999]!.serial).toBe('100-000001000');
    const pins = cards.rows.map((c) => decryptPin(keys, c.pin_cipher));
    expect(new Set(pins).size).toBe(1000);
    for (const [i, c] of cards.rows.entries()) {
      expect(pins[i]).toMatch(/^\d{10}$/);
      expect(hashPin(keys, pins[i]!).equals(c.pin_hash)).toBe(true);
      expect(c.balance_micros).toBe(5_250_000n);
      expect(c.status).toBe('active');
    }
    // a PIN lookup is one indexed query
    const found = await db.pool.query<{ serial: string }>('SELECT serial FROM cards WHERE pin_hash = $1', [hashPin(keys, pins[500]!)]);
    expect(found.rows[0]!.serial).toBe(cards.rows[500]!.serial);
    const mismatch = await db.pool.query(
      `SELECT c.id FROM cards c LEFT JOIN (SELECT card_id, sum(amount_micros) AS s FROM ledger GROUP BY card_id) l ON l.card_id = c.id
       WHERE c.balance_micros <> COALESCE(l.s, 0)`,
    );
    expect(mismatch.rowCount).toBe(0);
  });

  it('never reuses a PIN across series and regenerates collisions', async () => {
    // 8-digit PINs: 2,000 more cards next to 1,000; every PIN in the system must stay unique.
    expect((await run('series', 'create', '--name', 'Short', '--number', '101', '--count', '2000', '--pin-length', '8', '--rate-table', 'std')).code).toBe(0);
    const dup = await db.pool.query('SELECT pin_hash FROM cards GROUP BY pin_hash HAVING count(*) > 1');
    expect(dup.rowCount).toBe(0);
  });

  it('rejects bad input with one line and a non-zero exit', async () => {
    const base = ['series', 'create', '--name', 'X', '--count', '10', '--rate-table', 'std'];
    failsWith(await run(...base, '--number', '100'), 1, /series 100 already exists/);
    failsWith(await run('series', 'create', '--name', 'X', '--number', '7', '--count', '1', '--rate-table', 'nope'), 1, /unknown rate table "nope"/);
    failsWith(await run(...base, '--number', '7', '--balance', '-5'), 1, /must not be negative/);
    failsWith(await run(...base, '--number', '7', '--balance', '1e3'), 1, /invalid amount/);
    failsWith(await run('series', 'create', '--name', 'X', '--number', '7', '--count', 'ten', '--rate-table', 'std'), 1, /count: must be a whole number/);
    failsWith(await run(...base, '--number', '7', '--pin-length', '6'), 1, /pinLength/);
    failsWith(await run(...base, '--number', 'abc'), 1, /number: must be 1 to 9 digits/);
    failsWith(await run(...base, '--number', '7', '--status', 'weird'), 1, /status/);
    failsWith(await run('series', 'create', '--number', '7'), 2, /required option '--name/);
    const n = await db.pool.query(`SELECT 1 FROM series WHERE series_number = '7'`);
    expect(n.rowCount).toBe(0);
  });
});

describe('series list/show/edit', () => {
  it('lists, shows and edits; the count never changes', async () => {
    const list = (await run('series', 'list', '--json')).json();
    expect(list.map((s: any) => s.number)).toEqual(['100', '101']);
    expect((await run('series', 'list')).out).toMatch(/Thousand/);
    const show = (await run('series', 'show', '100', '--json')).json();
    expect(show).toMatchObject({ count: 1000, cardsByStatus: { active: 1000 }, totalBalance: { value: '5250.00' } });
    const e = await run('series', 'edit', '100', '--name', 'Renamed', '--status', 'stopped', '--max-calls', '3', '--selfcare', '--json');
    expect(e.code, e.err).toBe(0);
    expect(e.json()).toMatchObject({ name: 'Renamed', status: 'stopped', maxCalls: 3, selfcare: true });
    failsWith(await run('series', 'edit', '100', '--count', '5'), 1, /count of a series cannot change/);
    failsWith(await run('series', 'edit', '100', '--status', 'pending'), 1, /status/);
    failsWith(await run('series', 'edit', '999', '--name', 'x'), 1, /unknown series 999/);
    failsWith(await run('series', 'show', '999'), 1, /unknown series 999/);
    failsWith(await run('series', 'edit', '100'), 1, /nothing to change/);
    await run('series', 'edit', '100', '--status', 'active');
  });
});

describe('cards', () => {
  it('lists and searches with filters and pagination', async () => {
    const r = (await run('cards', 'list', '--series', '100', '--limit', '5', '--offset', '10', '--json')).json();
    expect(r.items.map((c: any) => c.serial)).toEqual(['100-000000011', '100-000000012', '100-000000013', '100-000000014', '100-000000015']);
    expect(r.hasMore).toBe(true);
    const s = (await run('cards', 'search', '--serial', '100-00000010', '--min-balance', '5', '--max-balance', '6', '--json')).json();
    expect(s.items).toHaveLength(10);
    expect((await run('cards', 'search', '--status', 'pending', '--series', '100', '--json')).json().items).toHaveLength(0);
    expect((await run('cards', 'search', '--last-used-after', '2020-01-01', '--json')).json().items).toHaveLength(0);
    failsWith(await run('cards', 'list', '--series', '555'), 1, /unknown series 555/);
    failsWith(await run('cards', 'list', '--min-balance', 'lots'), 1, /invalid amount/);
    failsWith(await run('cards', 'list', '--limit', '5000'), 1, /limit/);
    expect((await run('cards', 'list', '--series', '100', '--limit', '2')).out).toMatch(/100-000000001/);
  });

  it('tops up, adjusts and shows history through the ledger', async () => {
    const t = await run('cards', 'topup', '100-000000001', '10', '--reason', 'cash', '--json');
    expect(t.code, t.err).toBe(0);
    expect(t.json()).toMatchObject({ kind: 'topup', amount: { value: '10.00' }, balance: { value: '15.25', micros: '15250000' } });
    const a = await run('cards', 'adjust', '100-000000001', '-0.255', '--reason', 'refund correction', '--json');
    expect(a.json()).toMatchObject({ balance: { value: '14.995' } });
    const h = (await run('cards', 'history', '100-000000001', '--json')).json();
    expect(h.items.map((e: any) => [e.reason, e.amount.value, e.balanceAfter.value, e.note])).toEqual([
      ['initial', '5.25', '5.25', 'initial balance'],
      ['topup', '10.00', '15.25', 'cash'],
      ['adjustment', '-0.255', '14.995', 'refund correction'],
    ]);
    expect((await run('cards', 'history', '100-000000001')).out).toMatch(/refund correction/);
  });

  it('rejects bad amounts and unknown cards', async () => {
    failsWith(await run('cards', 'topup', '100-000000002', '-5'), 1, /greater than zero/);
    failsWith(await run('cards', 'topup', '100-000000002', '0'), 1, /greater than zero/);
    failsWith(await run('cards', 'topup', '100-000000002', 'ten'), 1, /invalid amount "ten"/);
    failsWith(await run('cards', 'topup', '100-000000002', '1.1234567'), 1, /invalid amount/);
    failsWith(await run('cards', 'topup', '100-999999999', '5'), 1, /unknown card 100-999999999/);
    failsWith(await run('cards', 'adjust', '100-000000002', '-1'), 2, /required option '--reason/);
    failsWith(await run('cards', 'adjust', '100-000000002', '0', '--reason', 'x'), 1, /must not be zero/);
    failsWith(await run('cards', 'adjust', '100-000000002', '-100', '--reason', 'x'), 1, /below its floor/);
    failsWith(await run('cards', 'topup', '100-000000002'), 2, /missing required argument/);
    const b = await db.pool.query(`SELECT balance_micros FROM cards WHERE serial = '100-000000002'`);
    expect(b.rows[0]!.balance_micros).toBe(5_250_000n);
  });

  it('an idempotency key credits once; a different request with it is refused', async () => {
    const first = await run('cards', 'topup', '100-000000003', '2', '--idempotency-key', 'cli-k1', '--json');
    const again = await run('cards', 'topup', '100-000000003', '2', '--idempotency-key', 'cli-k1', '--json');
    expect(again.json()).toMatchObject({ ...first.json(), replayed: true });
    failsWith(await run('cards', 'topup', '100-000000003', '3', '--idempotency-key', 'cli-k1'), 1, /already used for a different request/);
    const b = await db.pool.query(`SELECT balance_micros FROM cards WHERE serial = '100-000000003'`);
    expect(b.rows[0]!.balance_micros).toBe(7_250_000n);
  });

  it('sets a status', async () => {
    expect((await run('cards', 'set-status', '100-000000004', 'disabled', '--json')).json().status).toBe('disabled');
    failsWith(await run('cards', 'set-status', '100-000000004', 'gone'), 1, /status/);
    failsWith(await run('cards', 'set-status', '100-999999998', 'active'), 1, /unknown card/);
    expect((await run('cards', 'show', '100-000000004', '--json')).json().status).toBe('disabled');
  });

  it('exports CSV with and without PINs, and XLSX, readable back', async () => {
    const csv = path.join(dir, 'cards.csv');
    const r = await run('cards', 'export', '--series', '100', '--format', 'csv', '--out', csv, '--with-pins');
    expect(r.code, r.err).toBe(0);
    const rows = parse(await readFile(csv, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(1000);
    expect(Object.keys(rows[0]!)).toEqual(['serial', 'pin', 'balance', 'currency', 'status', 'expires_at']);
    const byPin = await db.pool.query<{ serial: string }>('SELECT serial FROM cards WHERE pin_hash = $1', [hashPin(keys, rows[41]!.pin!)]);
    expect(byPin.rows[0]!.serial).toBe(rows[41]!.serial);
    const plain = path.join(dir, 'plain.csv');
    await run('cards', 'export', '--series', '101', '--out', plain);
    const p = parse(await readFile(plain, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(p).toHaveLength(2000);
    expect(p[0]).not.toHaveProperty('pin');

    const xlsx = path.join(dir, 'cards.xlsx');
    expect((await run('cards', 'export', '--series', '100', '--format', 'xlsx', '--out', xlsx, '--with-pins')).code).toBe(0);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(xlsx);
    const ws = wb.worksheets[0]!;
    expect(ws.rowCount).toBe(1001);
    expect(ws.getRow(1).values).toEqual([undefined, 'serial', 'pin', 'balance', 'currency', 'status', 'expires_at']);
    expect(String(ws.getRow(2).getCell(2).value)).toBe(rows[0]!.pin);
    failsWith(await run('cards', 'export', '--format', 'pdf', '--out', path.join(dir, 'x.pdf')), 1, /csv or xlsx/);
    failsWith(await run('cards', 'export', '--series', '404', '--out', path.join(dir, 'y.csv')), 1, /unknown series 404/);
  });
});

describe('did and cli', () => {
  it('adds, lists, edits and removes access numbers; a duplicate is refused', async () => {
    const a = await run('did', 'add', '18005550100', '--gateway', 'carrier1', '--language', 'es', '--auth', 'cli-then-pin',
      '--allow-prefix', '1', '--allow-prefix', '44,33', '--deny-prefix', '1900', '--bind-cli', '--pin-tries', '5', '--json');
    expect(a.code, a.err).toBe(0);
    expect(a.json()).toMatchObject({ did: '18005550100', language: 'es', auth: 'cli-then-pin', allowPrefix: ['1', '44', '33'], denyPrefix: ['1900'], bindCli: true, pinTries: 5 });
    failsWith(await run('did', 'add', '18005550100', '--gateway', 'carrier1'), 1, /access number 18005550100 already exists/);
    failsWith(await run('did', 'add', '18005550101', '--gateway', 'carrier1', '--auth', 'voice'), 1, /auth/);
    failsWith(await run('did', 'add', '18005550101', '--gateway', 'carrier1', '--language', 'fr'), 1, /language/);
    failsWith(await run('did', 'add', '18005550101', '--gateway', 'bad gw'), 1, /gateway/);
    failsWith(await run('did', 'add', '18005550101', '--gateway', 'g', '--min-digits', '15', '--max-digits', '10'), 1, /minDigits/);
    failsWith(await run('did', 'add', '18005550101'), 2, /--gateway/);
    const e = await run('did', 'edit', '18005550100', '--no-bind-cli', '--max-digits', '16', '--failover-gateway', 'carrier2', '--disable', '--json');
    expect(e.json()).toMatchObject({ bindCli: false, maxDigits: 16, failoverGateway: 'carrier2', enabled: false });
    expect((await run('did', 'list', '--json')).json()).toHaveLength(1);
    expect((await run('did', 'list')).out).toMatch(/carrier2/);
    failsWith(await run('did', 'edit', '19999999999', '--language', 'en'), 1, /unknown access number/);
    expect((await run('did', 'remove', '18005550100')).code).toBe(0);
    failsWith(await run('did', 'remove', '18005550100'), 1, /unknown access number/);
  });

  it('binds caller ids to cards', async () => {
    expect((await run('cli', 'add', '+15551230000', '100-000000005')).code).toBe(0);
    failsWith(await run('cli', 'add', '+15551230000', '100-000000006'), 1, /already bound/);
    failsWith(await run('cli', 'add', '+15551230001', '100-999999997'), 1, /unknown card/);
    failsWith(await run('cli', 'add', 'abc', '100-000000006'), 1, /digits/);
    expect((await run('cli', 'list', '--serial', '100-000000005', '--json')).json()).toEqual([
      expect.objectContaining({ callerId: '+15551230000', serial: '100-000000005' }),
    ]);
    expect((await run('cli', 'remove', '+15551230000')).code).toBe(0);
    failsWith(await run('cli', 'remove', '+15551230000'), 1, /unknown caller id/);
  });
});

describe('cdr and reports', () => {
  it('lists, exports and sums CDRs exactly', async () => {
    const ids = await db.pool.query<{ id: bigint; serial: string }>(
      `SELECT id, serial FROM cards WHERE serial IN ('100-000000010', '100-000000011', '101-000000001') ORDER BY serial`,
    );
    const [c10, c11, c101] = ids.rows;
    const cdr = (n: number, card: bigint, secs: number, cost: bigint, at: string) =>
      db.pool.query(
        `INSERT INTO cdrs (call_id, card_id, destination, billsec, billed_seconds, cost_micros, source, created_at)
         VALUES ($1, $2, '4420700000', $3, $3, $4, 'socket', $5)`,
        [`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, card, secs, cost.toString(), at],
      );
    await cdr(1, c10!.id, 61, 21_000n, '2026-01-10T10:00:00Z');
    await cdr(2, c10!.id, 120, 40_000n, '2026-01-11T10:00:00Z');
    await cdr(3, c11!.id, 30, 10_001n, '2026-01-12T10:00:00Z');
    await cdr(4, c101!.id, 600, 1_230_000n, '2026-02-01T10:00:00Z');

    const all = (await run('cdr', 'list', '--json')).json();
    expect(all.items).toHaveLength(4);
    const jan = (await run('cdr', 'list', '--series', '100', '--from', '2026-01-11', '--to', '2026-02-01', '--json')).json();
    expect(jan.items.map((c: any) => c.billsec)).toEqual([120, 30]);
    expect((await run('cdr', 'list', '--card', '100-000000010', '--json')).json().items).toHaveLength(2);
    failsWith(await run('cdr', 'list', '--card', '100-999999990'), 1, /unknown card/);
    failsWith(await run('cdr', 'list', '--from', 'yesterday'), 1, /invalid date/);
    const exp = await run('cdr', 'export', '--format', 'csv', '--series', '100');
    const rows = parse(exp.out, { columns: true }) as Array<Record<string, string>>;
    expect(rows.map((r) => r.cost)).toEqual(['0.021', '0.04', '0.010001']);
    failsWith(await run('cdr', 'export', '--format', 'json'), 1, /csv/);

    const byCard = (await run('report', 'costs', '--by', 'card', '--json')).json();
    expect(byCard).toEqual([
      expect.objectContaining({ key: '100-000000010', calls: 2, billedSeconds: 181, totalCost: { value: '0.061', micros: '61000' } }),
      expect.objectContaining({ key: '100-000000011', calls: 1, billedSeconds: 30, billedMinutes: '0.5' }),
      expect.objectContaining({ key: '101-000000001', calls: 1, billedMinutes: '10', totalCost: { value: '1.23', micros: '1230000' } }),
    ]);
    const bySeries = (await run('report', 'costs', '--by', 'series', '--to', '2026-02-01', '--json')).json();
    expect(bySeries).toEqual([expect.objectContaining({ key: '100', calls: 3, totalCost: { value: '0.071001', micros: '71001' } })]);
    expect((await run('report', 'costs', '--by', 'series')).out).toMatch(/1\.23/);
    failsWith(await run('report', 'costs', '--by', 'planet'), 1, /by/);
  });
});

describe('apikey, migrate, config', () => {
  it('creates (printed once, stored hashed), lists and revokes keys', async () => {
    const c = await run('apikey', 'create', 'ops');
    const key = c.out.trim();
    expect(key).toMatch(/^ccard_/);
    const stored = await db.pool.query<{ key_hash: Buffer }>(`SELECT key_hash FROM api_keys WHERE name = 'ops'`);
    expect(stored.rows[0]!.key_hash.toString('hex')).not.toContain(Buffer.from(key).toString('hex'));
    failsWith(await run('apikey', 'create', 'ops'), 1, /already exists/);
    expect((await run('apikey', 'list', '--json')).json()).toEqual([expect.objectContaining({ name: 'ops', revokedAt: null })]);
    expect((await run('apikey', 'revoke', 'ops')).code).toBe(0);
    failsWith(await run('apikey', 'revoke', 'ops'), 1, /no active API key/);
  });

  it('migrate reports an up-to-date database, with its own pool from DATABASE_URL', async () => {
    const own = cli(db, false);
    const r = await own('migrate');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/up to date/);
    expect((await own('series', 'list', '--json')).json()).toHaveLength(2);
  });

  it('reports a bad configuration in one line', async () => {
    const { Writable } = await import('node:stream');
    let err = '';
    const sink = new Writable({ write: (c, _e, cb) => ((err += c.toString()), cb()) });
    const { runCli } = await import('../../src/cli/main.ts');
    const code = await runCli(['node', 'ccard', 'series', 'list'], { env: { DATABASE_URL: db.url }, stdout: sink, stderr: sink });
    expect(code).toBe(1);
    expect(err).toMatch(/CCARD_SECRET/);
  });

  it('unknown commands are usage errors', async () => {
    failsWith(await run('frobnicate'), 2, /unknown command/);
  });
});

describe('the real bin', () => {
  it('prints help and exits non-zero on a bad argument', async () => {
    const exec = promisify(execFile);
    const root = path.resolve(import.meta.dirname, '../..');
    const help = await exec('node', ['bin/ccard.mjs', '--help'], { cwd: root });
    expect(help.stdout).toMatch(/series/);
    expect(help.stdout).toMatch(/apikey/);
    const bad = await exec('node', ['bin/ccard.mjs', 'cards', 'topup', '1-000000001', 'abc'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, CCARD_SECRET: SECRET },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid amount "abc"/);
  });
});

// Runs last: it adds series, which the counts above do not expect.
describe('tax profiles', () => {
  it('adds (percent stored exactly as ppm), lists and removes; bad input is refused in one line', async () => {
    const a = await run('tax', 'add', 'vat', '20', '--json');
    expect(a.code, a.err).toBe(0);
    expect(a.json()).toEqual({ name: 'vat', percent: '20', ratePpm: 200_000, seriesCount: 0 });
    expect((await run('tax', 'add', 'ny', '7.25')).out).toMatch(/added tax profile "ny": 7.25%/);
    expect((await run('tax', 'add', 'tiny', '0.0001', '--json')).json().ratePpm).toBe(1);
    expect((await run('tax', 'add', 'all', '100', '--json')).json().ratePpm).toBe(1_000_000);
    expect((await run('tax', 'add', 'none', '0', '--json')).json().ratePpm).toBe(0);
    const stored = await db.pool.query<{ name: string; rate_ppm: number }>('SELECT name, rate_ppm FROM tax_profiles ORDER BY name');
    expect(stored.rows).toEqual([
      { name: 'all', rate_ppm: 1_000_000 }, { name: 'none', rate_ppm: 0 }, { name: 'ny', rate_ppm: 72_500 },
      { name: 'tiny', rate_ppm: 1 }, { name: 'vat', rate_ppm: 200_000 },
    ]);

    failsWith(await run('tax', 'add', 'vat', '10'), 1, /tax profile "vat" already exists/);
    failsWith(await run('tax', 'add', 'neg', '-5'), 1, /invalid percent "-5": must not be negative/);
    failsWith(await run('tax', 'add', 'big', '100.0001'), 1, /must be at most 100/);
    failsWith(await run('tax', 'add', 'big', '250'), 1, /must be at most 100/);
    failsWith(await run('tax', 'add', 'fine', '7.12345'), 1, /at most 4 decimals/);
    failsWith(await run('tax', 'add', 'word', 'ten'), 1, /invalid percent "ten"/);
    failsWith(await run('tax', 'add', 'exp', '1e1'), 1, /invalid percent "1e1"/);
    failsWith(await run('tax', 'add', 'comma', '7,25'), 1, /invalid percent/);
    failsWith(await run('tax', 'add', 'bad name', '5'), 1, /name: must be 1 to 64/);
    failsWith(await run('tax', 'add', 'x'), 2, /missing required argument/);
    expect((await run('tax', 'list', '--json')).json()).toHaveLength(5);

    const list = await run('tax', 'list');
    expect(list.out).toMatch(/ny\s.*7\.25/);
    expect((await run('tax', 'remove', 'tiny')).code).toBe(0);
    failsWith(await run('tax', 'remove', 'tiny'), 1, /unknown tax profile "tiny"/);
  });

  it('series create names an unknown profile clearly; a profile in use cannot be removed', async () => {
    const base = ['series', 'create', '--name', 'Taxed', '--number', '200', '--count', '3', '--rate-table', 'std'];
    failsWith(await run(...base, '--tax-profile', 'nope'), 1, /unknown tax profile "nope"/);
    expect((await db.pool.query(`SELECT 1 FROM series WHERE series_number = '200'`)).rowCount).toBe(0);
    expect((await run(...base, '--tax-profile', 'ny')).code).toBe(0);
    expect((await run('series', 'show', '200', '--json')).json().taxProfile).toBe('ny');
    const id = await db.pool.query<{ id: string }>(`SELECT id::text AS id FROM cards WHERE serial = '200-000000001'`);
    expect((await getCardRecord(db.pool, id.rows[0]!.id))!.taxPpm).toBe(72_500);
    failsWith(await run('tax', 'remove', 'ny'), 1, /tax profile "ny" is used by series 200/);
    expect((await run('tax', 'list', '--json')).json().find((t: any) => t.name === 'ny')).toMatchObject({ seriesCount: 1 });
  });
});

describe('cards set-limits', () => {
  const changes: Array<[string, CardSnapshot]> = [];
  const runLive = async (...args: string[]) => {
    const { Writable } = await import('node:stream');
    let out = '';
    let err = '';
    const code = await runCli(['node', 'ccard', ...args], {
      env: { DATABASE_URL: db.url, CCARD_SECRET: SECRET },
      pool: db.pool,
      stdout: new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) }),
      stderr: new Writable({ write: (c, _e, cb) => ((err += c.toString()), cb()) }),
      onBalanceChange: async (cardId, snap) => {
        changes.push([cardId, snap]);
      },
    });
    return { code, out, err, json: () => JSON.parse(out) };
  };
  const row = async (serial: string) =>
    (
      await db.pool.query<{ id: string; balance_micros: bigint; credit_limit_micros: bigint; balance_version: bigint; max_concurrent_calls: number | null }>(
        `SELECT id::text AS id, balance_micros, credit_limit_micros, balance_version, max_concurrent_calls FROM cards WHERE serial = $1`,
        [serial],
      )
    ).rows[0]!;

  beforeAll(async () => {
    await writeFile(path.join(dir, 'alt.csv'), 'prefix,rate\n1,0.01\n');
    expect((await run('rates', 'import', 'alt', path.join(dir, 'alt.csv'))).code).toBe(0);
    expect((await run('rates', 'import', 'euro', path.join(dir, 'alt.csv'), '--currency', 'EUR')).code).toBe(0);
  });

  it('sets max calls, credit limit and rate table; the live store gets the new spendable with a newer version', async () => {
    const serial = '101-000000020';
    const before = await row(serial);
    changes.length = 0;
    const r = await runLive('cards', 'set-limits', serial, '--max-calls', '3', '--credit-limit', '2.5', '--rate-table', 'alt', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.json()).toMatchObject({
      serial, maxCalls: 3, maxCallsOverride: 3, creditLimit: { value: '2.50', micros: '2500000' }, rateTable: 'alt', rateTableOverride: 'alt',
    });
    const after = await row(serial);
    expect(after.credit_limit_micros).toBe(2_500_000n);
    expect(after.balance_version).toBe(before.balance_version + 1n);
    expect(changes).toEqual([[after.id, { spendable: after.balance_micros + 2_500_000n, version: after.balance_version }]]);
    // what a call uses
    const rec = (await getCardRecord(db.pool, after.id))!;
    const alt = await db.pool.query<{ id: string }>(`SELECT id::text AS id FROM rate_tables WHERE name = 'alt'`);
    expect(rec).toMatchObject({ maxConcurrentCalls: 3, rateTableId: alt.rows[0]!.id, creditLimit: 2_500_000n });

    const show = await run('cards', 'show', serial);
    expect(show.out).toMatch(/credit limit\s*│?\s*2\.50/);
    expect(show.out).toMatch(/max calls\s*│?\s*3 \(card\)/);
    expect(show.out).toMatch(/rate table\s*│?\s*alt \(card\)/);

    // back to the series' values; no credit-limit change: no balance change, no version bump
    changes.length = 0;
    const back = await runLive('cards', 'set-limits', serial, '--max-calls', 'series', '--rate-table', 'series');
    expect(back.code, back.err).toBe(0);
    expect(back.out).toMatch(/max calls 1 \(series\), credit limit 2\.50, rate table std \(series\)/);
    expect(changes).toEqual([]);
    expect((await row(serial)).balance_version).toBe(after.balance_version);
    expect((await run('cards', 'show', serial, '--json')).json()).toMatchObject({ maxCalls: 1, maxCallsOverride: null, rateTable: 'std', rateTableOverride: null });
    expect((await getCardRecord(db.pool, after.id))!.maxConcurrentCalls).toBe(1);
  });

  it('lowers the credit limit only as far as the balance allows', async () => {
    const serial = '101-000000021'; // balance 0
    expect((await run('cards', 'set-limits', serial, '--credit-limit', '5')).code).toBe(0);
    expect((await run('cards', 'adjust', serial, '-3.25', '--reason', 'test')).code).toBe(0);
    failsWith(await run('cards', 'set-limits', serial, '--credit-limit', '3'), 1, /balance -3\.25.*at least 3\.25/);
    failsWith(await run('cards', 'set-limits', serial, '--credit-limit', '0'), 1, /below what the balance/);
    expect((await row(serial)).credit_limit_micros).toBe(5_000_000n);
    changes.length = 0;
    const ok = await runLive('cards', 'set-limits', serial, '--credit-limit', '3.25', '--json');
    expect(ok.code, ok.err).toBe(0);
    const r = await row(serial);
    expect(r.credit_limit_micros).toBe(3_250_000n);
    expect(changes).toEqual([[r.id, { spendable: 0n, version: r.balance_version }]]);
  });

  it('rejects bad input with one line and changes nothing', async () => {
    const serial = '101-000000022';
    const before = await row(serial);
    failsWith(await run('cards', 'set-limits', serial, '--max-calls', '0'), 1, /maxCalls: must be at least 1/);
    failsWith(await run('cards', 'set-limits', serial, '--max-calls', 'lots'), 1, /maxCalls: must be a whole number/);
    failsWith(await run('cards', 'set-limits', serial, '--max-calls', '2.5'), 1, /maxCalls/);
    failsWith(await run('cards', 'set-limits', serial, '--credit-limit', '-1'), 1, /must not be negative/);
    failsWith(await run('cards', 'set-limits', serial, '--credit-limit', '1e3'), 1, /invalid amount "1e3"/);
    failsWith(await run('cards', 'set-limits', serial, '--credit-limit', 'series'), 1, /invalid amount "series"/);
    failsWith(await run('cards', 'set-limits', serial, '--rate-table', 'nope'), 1, /unknown rate table "nope"/);
    failsWith(await run('cards', 'set-limits', serial, '--rate-table', 'euro'), 1, /rate table "euro" is in EUR, not USD/);
    failsWith(await run('cards', 'set-limits', serial, '--rate-table', 'bad name'), 1, /rateTable/);
    failsWith(await run('cards', 'set-limits', serial), 1, /nothing to change/);
    failsWith(await run('cards', 'set-limits', '101-999999999', '--max-calls', '2'), 1, /unknown card 101-999999999/);
    failsWith(await run('cards', 'set-limits', 'x', '--max-calls', '2'), 1, /serial: must look like/);
    failsWith(await run('cards', 'set-limits'), 2, /missing required argument/);
    failsWith(await run('cards', 'set-limits', serial, '--max-calls'), 2, /argument missing/);
    expect(await row(serial)).toEqual(before);
  });
});
