import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parse } from 'csv-parse/sync';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { cli, SECRET } from '../cli/helpers.ts';
import { buildApi } from '../../src/api/server.ts';
import { decryptPin, derivePinKeys } from '../../src/store/pin.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { createSeries } from '../../src/store/admin/series.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { createVouchers, exportVouchers, isValidVoucherNumber, luhnCheckDigit, redeemVoucher } from '../../src/store/admin/vouchers.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import { PassThrough } from 'node:stream';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let key: string;
const keys = derivePinKeys(SECRET);
let run: ReturnType<typeof cli>;
const dir = mkdtempSync(join(tmpdir(), 'ccard-vouchers-'));
const changes: string[] = [];

async function numbersOf(batch: string): Promise<string[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c) => chunks.push(c));
  await exportVouchers(ctx, batch, out, { format: 'csv', withNumbers: true });
  return (parse(Buffer.concat(chunks).toString(), { columns: true }) as Array<{ number: string }>).map((r) => r.number);
}
const balance = async (serial: string) => (await db.pool.query<{ b: bigint }>('SELECT balance_micros AS b FROM cards WHERE serial = $1', [serial])).rows[0]!.b;
const pinOf = async (serial: string) =>
  decryptPin(keys, (await db.pool.query<{ p: Buffer }>('SELECT pin_cipher AS p FROM cards WHERE serial = $1', [serial])).rows[0]!.p);

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys, onBalanceChange: async (cardId) => void changes.push(cardId) };
  run = cli(db);
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  await importRateTable(ctx, 'eur', 'prefix,destination,rate\n33,FR,0.02\n', { currency: 'EUR' } as never);
  await createSeries(ctx, { name: 'usd', number: '5', count: 6, balance: '1', rateTable: 'std', status: 'active', selfcare: true });
  await createSeries(ctx, { name: 'eur', number: '6', count: 1, balance: '1', currency: 'EUR', rateTable: 'eur', status: 'active' });
  key = (await createApiKey(ctx, 'voucher-test')).key;
  app = buildApi({
    pool: db.pool,
    pinKeys: keys,
    onBalanceChange: async (cardId) => void changes.push(cardId),
    selfcare: { lockout: { maxFailures: 3, windowSeconds: 600, lockSeconds: 900 }, loginRateLimit: { max: 100, timeWindowMs: 60_000 } },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('voucher numbers', () => {
  it('have 16 digits with a Luhn check digit', () => {
    expect(luhnCheckDigit('7992739871')).toBe('3');
    expect(isValidVoucherNumber('4539578763621486')).toBe(true);
    expect(isValidVoucherNumber('4539578763621487')).toBe(false);
    expect(isValidVoucherNumber('453957876362148')).toBe(false);
  });
});

describe('ccard voucher (CLI)', () => {
  it('creates a batch stored hashed, exports it, redeems once with a ledger row referencing the voucher', async () => {
    const c = await run('voucher', 'create', '--count', '5', '--value', '10.00', '--currency', 'usd', '--batch', 'B1', '--json');
    expect(c.code).toBe(0);
    expect(c.json()).toMatchObject({ batch: 'B1', count: 5, used: 0, currency: 'USD', value: { value: '10.00', micros: '10000000' } });
    const file = join(dir, 'b1.csv');
    const e = await run('voucher', 'export', 'B1', '--out', file, '--with-numbers');
    expect(e.err).toBe(`exported 5 vouchers to ${file}\n`);
    const rows = parse(readFileSync(file, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(5);
    // Like a PIN export: created new with mode 0600, never overwritten, never through a symlink; audited.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const twice = await run('voucher', 'export', 'B1', '--out', file, '--with-numbers');
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/already exists/);
    symlinkSync(join(dir, 'elsewhere.csv'), join(dir, 'link.csv'));
    expect((await run('voucher', 'export', 'B1', '--out', join(dir, 'link.csv'), '--with-numbers')).err).toMatch(/symbolic link|already exists/);
    expect(existsSync(join(dir, 'elsewhere.csv'))).toBe(false);
    const logged = await db.pool.query("SELECT actor, action FROM audit_log WHERE object = 'voucher-batch:B1'");
    expect(logged.rows).toEqual([{ actor: 'cli:local', action: 'ccard voucher export --with-numbers' }]);
    expect(rows.every((r) => isValidVoucherNumber(r.number!) && r.value === '10.00' && r.currency === 'USD')).toBe(true);
    const dump = JSON.stringify((await db.pool.query("SELECT encode(number_hash, 'hex') h, encode(number_cipher, 'hex') c FROM vouchers")).rows);
    for (const r of rows) expect(dump).not.toContain(r.number);
    const plain = await run('voucher', 'export', 'B1', '--out', join(dir, 'plain.csv'));
    expect(plain.code).toBe(0);
    expect(readFileSync(join(dir, 'plain.csv'), 'utf8')).not.toContain(rows[0]!.number);

    const before = await balance('5-000000001');
    const r = await run('voucher', 'redeem', rows[0]!.number!, '5-000000001', '--json');
    expect(r.code).toBe(0);
    const j = r.json();
    expect(j).toMatchObject({ serial: '5-000000001', amount: { micros: '10000000' }, ref: `voucher:${rows[0]!.id}` });
    expect(await balance('5-000000001')).toBe(before + 10_000_000n);
    const ledger = await db.pool.query("SELECT reason, ref, amount_micros FROM ledger l JOIN cards c ON c.id = l.card_id WHERE c.serial = '5-000000001' AND ref LIKE 'voucher:%'");
    expect(ledger.rows).toEqual([{ reason: 'topup', ref: `voucher:${rows[0]!.id}`, amount_micros: 10_000_000n }]);
    const again = await run('voucher', 'redeem', rows[0]!.number!, '5-000000002');
    expect(again.code).toBe(1);
    expect(again.err).toBe('ccard: error: invalid, used or expired voucher\n');
    expect((await run('voucher', 'redeem', '1234567812345678', '5-000000002')).err).toMatch(/invalid, used or expired voucher/);
    expect((await run('voucher', 'list', '--json')).json()).toEqual([expect.objectContaining({ batch: 'B1', used: 1, count: 5 })]);
    // The redemption is in the audit log, the number only as its last 4 digits.
    const redeemed = await db.pool.query("SELECT actor, object, request FROM audit_log WHERE action = 'ccard voucher redeem'");
    expect(redeemed.rows).toEqual([{ actor: 'cli:local', object: 'card:5-000000001', request: expect.objectContaining({ number: `…${rows[0]!.number!.slice(-4)}` }) }]);
    expect(JSON.stringify(redeemed.rows)).not.toContain(rows[0]!.number);
    expect((await run('voucher', 'create', '--count', '0', '--value', '1', '--currency', 'USD')).err).toMatch(/count: must be at least 1/);
    expect((await run('voucher', 'create', '--count', '1', '--value', '1.5x', '--currency', 'USD')).code).toBe(1);
    expect((await run('voucher', 'create', '--count', '1', '--value', '1', '--currency', 'USD', '--batch', 'B1')).err).toMatch(/batch B1 already exists/);
  });

  it('refuses another currency and expired vouchers', async () => {
    await createVouchers(ctx, { count: 1, value: '3', currency: 'EUR', batch: 'E1' });
    const [eur] = await numbersOf('E1');
    await expect(redeemVoucher(ctx, { number: eur!, serial: '5-000000002' })).rejects.toThrow('the voucher is in EUR, the card in USD');
    expect((await redeemVoucher(ctx, { number: eur!, serial: '6-000000001' })).amount).toBe(3_000_000n);
    await createVouchers(ctx, { count: 1, value: '3', currency: 'USD', batch: 'X1', expires: new Date(Date.now() + 60_000) });
    await db.pool.query("UPDATE vouchers SET expires_at = now() - interval '1 second' WHERE batch = 'X1'");
    const [expired] = await numbersOf('X1');
    await expect(redeemVoucher(ctx, { number: expired!, serial: '5-000000002' })).rejects.toThrow('invalid, used or expired voucher');
  });

  it('a voucher keyed on two cards at the same moment is used exactly once', async () => {
    await createVouchers(ctx, { count: 10, value: '2', currency: 'USD', batch: 'RACE' });
    const numbers = await numbersOf('RACE');
    const b3 = await balance('5-000000003');
    const b4 = await balance('5-000000004');
    for (const n of numbers) {
      const rs = await Promise.allSettled([redeemVoucher(ctx, { number: n, serial: '5-000000003' }), redeemVoucher(ctx, { number: n, serial: '5-000000004' })]);
      expect(rs.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((rs.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.message).toBe('invalid, used or expired voucher');
    }
    expect((await balance('5-000000003')) + (await balance('5-000000004'))).toBe(b3 + b4 + 20_000_000n);
    const ledger = await db.pool.query("SELECT count(*)::int AS n FROM ledger WHERE ref LIKE 'voucher:%' AND ref IN (SELECT 'voucher:' || id FROM vouchers WHERE batch = 'RACE')");
    expect(ledger.rows[0].n).toBe(10);
  });
});

describe('vouchers over the API', () => {
  const auth = () => ({ authorization: `Bearer ${key}` });

  it('operator: create, list, export, redeem', async () => {
    const c = await app.inject({ method: 'POST', url: '/v1/vouchers', headers: auth(), payload: { count: 2, value: '5.00', currency: 'USD', batch: 'API1' } });
    expect(c.statusCode).toBe(201);
    const unconfirmed = await app.inject({ method: 'GET', url: '/v1/vouchers/API1/export?withNumbers=true', headers: auth() });
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.json().error.message).toMatch(/confirm=numbers/);
    expect((await app.inject({ method: 'GET', url: '/v1/vouchers/NOPE/export', headers: auth() })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/vouchers/API1/export?withNumber=true', headers: auth() })).statusCode).toBe(400);
    const csv = await app.inject({ method: 'GET', url: '/v1/vouchers/API1/export?withNumbers=true&confirm=numbers', headers: auth() });
    expect(csv.statusCode).toBe(200);
    const rows = parse(csv.body, { columns: true }) as Array<{ number: string }>;
    expect(rows).toHaveLength(2);
    const audit = await app.inject({ method: 'GET', url: '/v1/audit?object=voucher-batch:API1', headers: auth() });
    expect(audit.json().items.filter((a: { action: string }) => a.action.startsWith('GET'))).toEqual([
      expect.objectContaining({ actor: 'apikey:voucher-test', action: 'GET /v1/vouchers/:batch/export', request: { query: { withNumbers: 'true', confirm: 'numbers' } } }),
    ]);
    // Cells go through the export's neutralising: a batch name that a spreadsheet would read as a formula is quoted.
    await createVouchers(ctx, { count: 1, value: '1', currency: 'USD', batch: '-HYPERLINK' });
    for (const format of ['csv', 'xlsx']) {
      const x = await app.inject({ method: 'GET', url: `/v1/vouchers/-HYPERLINK/export?format=${format}`, headers: auth() });
      expect(x.statusCode).toBe(200);
      if (format === 'csv') expect((parse(x.body, { columns: true }) as Array<{ batch: string }>)[0]!.batch).toBe("'-HYPERLINK");
      else expect(x.rawPayload.subarray(0, 2).toString()).toBe('PK');
    }
    const r = await app.inject({ method: 'POST', url: '/v1/vouchers/redeem', headers: auth(), payload: { number: rows[0]!.number, serial: '5-000000005' } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ serial: '5-000000005', amount: { value: '5.00' } });
    const bad = await app.inject({ method: 'POST', url: '/v1/vouchers/redeem', headers: auth(), payload: { number: rows[0]!.number, serial: '5-000000005' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: { code: 'INVALID_INPUT', message: 'invalid, used or expired voucher' } });
    expect((await app.inject({ method: 'POST', url: '/v1/vouchers', headers: auth(), payload: { count: 1, value: 5, currency: 'USD' } })).statusCode).toBe(400);
  });

  it('cardholder: self-care recharge; wrong vouchers count toward the PIN lockout', async () => {
    await createVouchers(ctx, { count: 1, value: '4', currency: 'USD', batch: 'SC1' });
    const [good] = await numbersOf('SC1');
    const login = await app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial: '5-000000006', pin: await pinOf('5-000000006') } });
    const token = login.json().token;
    const sc = (number: string) => app.inject({ method: 'POST', url: '/selfcare/voucher', headers: { authorization: `Bearer ${token}` }, payload: { number } });
    expect((await app.inject({ method: 'POST', url: '/selfcare/voucher', payload: { number: good } })).statusCode).toBe(401);
    const ok = await sc(good!);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ amount: { value: '4.00', micros: '4000000' }, balance: { value: '5.00', micros: '5000000' }, currency: 'USD' });
    const logged = await db.pool.query("SELECT action, object, status FROM audit_log WHERE actor = 'card:5-000000006'");
    expect(logged.rows).toEqual([{ action: 'POST /selfcare/voucher', object: 'card:5-000000006', status: 200 }]);
    // One wrong PIN, then two wrong vouchers: the third failure locks the card (maxFailures 3).
    expect((await app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial: '5-000000006', pin: '0000000000' } })).statusCode).toBe(401);
    expect((await sc(good!)).statusCode).toBe(400);
    expect((await sc('4539578763621486')).statusCode).toBe(400);
    const locked = await sc('4539578763621486');
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error).toEqual({ code: 'LOCKED', message: 'too many failed attempts: try again in 15 minutes' });
    const relog = await app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial: '5-000000006', pin: await pinOf('5-000000006') } });
    expect(relog.json().error.code).toBe('LOCKED');
  });
});
