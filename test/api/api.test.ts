import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import ExcelJS from 'exceljs';
import { parse } from 'csv-parse/sync';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { decryptPin, derivePinKeys } from '../../src/store/pin.ts';
import { createApiKey, revokeApiKey } from '../../src/store/admin/api-keys.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import type { CardSnapshot } from '../../src/live/live-balance.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let key: string;
const keys = derivePinKeys('api-test-secret-0123456789');
const changes: Array<[string, CardSnapshot]> = [];
const jsonCdrs: string[] = [];

const auth = () => ({ authorization: `Bearer ${key}` });
const req = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method, url, headers: { ...auth(), ...headers }, ...(payload !== undefined && { payload: payload as never }) });

async function pinOf(serial: string): Promise<string> {
  const r = await db.pool.query<{ pin_cipher: Buffer }>('SELECT pin_cipher FROM cards WHERE serial = $1', [serial]);
  return decryptPin(keys, r.rows[0]!.pin_cipher);
}

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  key = (await createApiKey(ctx, 'test')).key;
  app = buildApi({
    pool: db.pool,
    pinKeys: keys,
    onBalanceChange: async (cardId, snap) => {
      changes.push([cardId, snap]);
    },
    onJsonCdr: async (body) => {
      jsonCdrs.push(body);
      return { status: 200, body: { ok: true } };
    },
    selfcare: { lockout: { maxFailures: 3, windowSeconds: 600, lockSeconds: 900 }, loginRateLimit: { max: 30, timeWindowMs: 60_000 } },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('auth and docs', () => {
  it('requires a valid, unrevoked API key', async () => {
    const none = await app.inject({ method: 'GET', url: '/v1/series' });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/API key is required/) } });
    const wrong = await app.inject({ method: 'GET', url: '/v1/series', headers: { authorization: 'Bearer ccard_nope' } });
    expect(wrong.statusCode).toBe(401);
    const other = await createApiKey(ctx, 'short-lived');
    expect((await app.inject({ method: 'GET', url: '/v1/series', headers: { authorization: `Bearer ${other.key}` } })).statusCode).toBe(200);
    await revokeApiKey(ctx, 'short-lived');
    expect((await app.inject({ method: 'GET', url: '/v1/series', headers: { authorization: `Bearer ${other.key}` } })).statusCode).toBe(401);
  });

  it('serves the OpenAPI document and the UI', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.openapi).toMatch(/^3/);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/series', '/v1/cards/{serial}/topup', '/selfcare/login', '/v1/rates/{table}']));
    expect(doc.paths['/v1/series'].post.requestBody).toBeDefined();
    expect((await app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('answers unknown routes with the error body', async () => {
    const r = await req('GET', '/v1/nothing');
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('NOT_FOUND');
  });
});

describe('series and cards', () => {
  it('creates, lists, shows and edits series', async () => {
    const c = await req('POST', '/v1/series', { name: 'API', number: '300', count: 50, balance: '3.50', rateTable: 'std', status: 'active' });
    expect(c.statusCode, c.body).toBe(201);
    expect(c.json()).toMatchObject({ number: '300', count: 50 });
    const sc = await req('POST', '/v1/series', { name: 'Self', number: '301', count: 5, balance: '1', rateTable: 'std', selfcare: true });
    expect(sc.statusCode).toBe(201);
    expect((await req('GET', '/v1/series')).json().items).toHaveLength(2);
    expect((await req('GET', '/v1/series/300')).json()).toMatchObject({ count: 50, totalBalance: { value: '175.00' } });
    const bad = await req('POST', '/v1/series', { name: 'X', number: '302', count: 5, rateTable: 'missing' });
    expect(bad.statusCode).toBe(404);
    expect(bad.json().error.message).toMatch(/unknown rate table/);
    const dup = await req('POST', '/v1/series', { name: 'X', number: '300', count: 5, rateTable: 'std' });
    expect(dup.statusCode).toBe(409);
    const neg = await req('POST', '/v1/series', { name: 'X', number: '303', count: 5, rateTable: 'std', balance: '-1' });
    expect(neg.statusCode).toBe(400);
    expect(neg.json().error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/balance/) });
    const float = await req('POST', '/v1/series', { name: 'X', number: '303', count: 5, rateTable: 'std', balance: 1.5 });
    expect(float.statusCode).toBe(400);
    const p = await req('PATCH', '/v1/series/300', { notes: 'hello', maxCalls: 2 });
    expect(p.json()).toMatchObject({ notes: 'hello', maxCalls: 2 });
    const cnt = await req('PATCH', '/v1/series/300', { count: 60 });
    expect(cnt.statusCode).toBe(400);
    expect(cnt.json().error.message).toMatch(/count/);
    expect((await req('GET', '/v1/series/999')).statusCode).toBe(404);
  });

  it('searches cards with pagination and shows one', async () => {
    const r = await req('GET', '/v1/cards?series=300&limit=20&offset=40');
    expect(r.json().items).toHaveLength(10);
    expect(r.json().hasMore).toBe(false);
    expect((await req('GET', '/v1/cards?limit=5000')).statusCode).toBe(400);
    expect((await req('GET', '/v1/cards?series=404')).statusCode).toBe(404);
    expect((await req('GET', '/v1/cards/300-000000001')).json()).toMatchObject({ serial: '300-000000001', balance: { value: '3.50' } });
    expect((await req('GET', '/v1/cards/300-000000999')).statusCode).toBe(404);
    const st = await req('POST', '/v1/cards/300-000000002/status', { status: 'disabled' });
    expect(st.json().status).toBe('disabled');
    expect((await req('POST', '/v1/cards/300-000000002/status', { status: 'nope' })).statusCode).toBe(400);
  });

  it('exports cards as CSV and XLSX', async () => {
    const csv = await req('GET', '/v1/cards/export?series=300&withPins=true&confirm=pins');
    expect(csv.statusCode).toBe(200);
    const rows = parse(csv.body, { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(50);
    expect(rows[0]!.pin).toBe(await pinOf(rows[0]!.serial!));
    const x = await req('GET', '/v1/cards/export?series=300&format=xlsx');
    expect(x.statusCode).toBe(200);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(x.rawPayload as unknown as ArrayBuffer);
    expect(wb.worksheets[0]!.rowCount).toBe(51);
    expect((await req('GET', '/v1/cards/export?format=pdf')).statusCode).toBe(400);
  });
});

describe('money: top-up and adjust', () => {
  it('requires an Idempotency-Key and valid amounts', async () => {
    const none = await req('POST', '/v1/cards/300-000000003/topup', { amount: '5' });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.message).toMatch(/Idempotency-Key/);
    for (const amount of ['-5', '0', 'abc', 5]) {
      const r = await req('POST', '/v1/cards/300-000000003/topup', { amount }, { 'idempotency-key': `bad-${String(amount)}` });
      expect(r.statusCode, String(amount)).toBe(400);
      expect(r.json().error.code).toBe('INVALID_INPUT');
    }
    expect((await req('POST', '/v1/cards/300-000000999/topup', { amount: '1' }, { 'idempotency-key': 'nocard' })).statusCode).toBe(404);
    const adj = await req('POST', '/v1/cards/300-000000003/adjust', { amount: '-1' }, { 'idempotency-key': 'adj-noreason' });
    expect(adj.statusCode).toBe(400);
  });

  it('a repeated key replays the answer and credits once; another body is a 409', async () => {
    changes.length = 0;
    const h = { 'idempotency-key': 'topup-1' };
    const a = await req('POST', '/v1/cards/300-000000003/topup', { amount: '10', reason: 'web' }, h);
    expect(a.statusCode).toBe(200);
    expect(a.json()).toMatchObject({ balance: { value: '13.50' }, applied: true, ref: 'apikey:test/topup-1' });
    const b = await req('POST', '/v1/cards/300-000000003/topup', { amount: '10', reason: 'web' }, h);
    expect(b.statusCode).toBe(200);
    expect(b.json()).toEqual(a.json());
    expect(b.headers['idempotent-replayed']).toBe('true');
    const c = await req('POST', '/v1/cards/300-000000003/topup', { amount: '11', reason: 'web' }, h);
    expect(c.statusCode).toBe(409);
    expect(c.json().error.code).toBe('IDEMPOTENCY_MISMATCH');
    const card = await db.pool.query<{ id: bigint; balance_micros: bigint; balance_version: bigint }>(
      `SELECT id, balance_micros, balance_version FROM cards WHERE serial = '300-000000003'`,
    );
    expect(card.rows[0]!.balance_micros).toBe(13_500_000n);
    expect(changes).toEqual([[card.rows[0]!.id.toString(), { spendable: 13_500_000n, version: card.rows[0]!.balance_version }]]);
  });

  it('concurrent duplicates credit once', async () => {
    const h = { 'idempotency-key': 'race-1' };
    const rs = await Promise.all(Array.from({ length: 8 }, () => req('POST', '/v1/cards/300-000000004/topup', { amount: '2' }, h)));
    expect(rs.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
    expect(new Set(rs.map((r) => r.body)).size).toBe(1);
    const l = await db.pool.query(`SELECT 1 FROM ledger l JOIN cards c ON c.id = l.card_id WHERE c.serial = '300-000000004' AND l.reason = 'topup'`);
    expect(l.rowCount).toBe(1);
    const b = await db.pool.query<{ balance_micros: bigint }>(`SELECT balance_micros FROM cards WHERE serial = '300-000000004'`);
    expect(b.rows[0]!.balance_micros).toBe(5_500_000n);
  });

  it('adjusts by a signed amount, never below the floor, and lists history', async () => {
    const a = await req('POST', '/v1/cards/300-000000005/adjust', { amount: '-1.5', reason: 'fix' }, { 'idempotency-key': 'adj-1' });
    expect(a.json()).toMatchObject({ kind: 'adjustment', balance: { value: '2.00' } });
    const floor = await req('POST', '/v1/cards/300-000000005/adjust', { amount: '-9', reason: 'fix' }, { 'idempotency-key': 'adj-2' });
    expect(floor.statusCode).toBe(400);
    const h = (await req('GET', '/v1/cards/300-000000005/history')).json();
    expect(h.items.map((e: any) => e.reason)).toEqual(['initial', 'adjustment']);
  });
});

describe('dids, caller ids, rates, cdrs', () => {
  it('manages access numbers; a duplicate is a 409', async () => {
    const a = await req('POST', '/v1/dids', { did: '18005550199', gateway: 'gw1', auth: 'cli', allowPrefix: ['1'] });
    expect(a.statusCode).toBe(201);
    expect((await req('POST', '/v1/dids', { did: '18005550199', gateway: 'gw1' })).statusCode).toBe(409);
    expect((await req('POST', '/v1/dids', { did: '18005550198' })).statusCode).toBe(400);
    expect((await req('PATCH', '/v1/dids/18005550199', { language: 'es' })).json().language).toBe('es');
    expect((await req('GET', '/v1/dids')).json().items).toHaveLength(1);
    expect((await req('DELETE', '/v1/dids/18005550199')).statusCode).toBe(204);
    expect((await req('GET', '/v1/dids/18005550199')).statusCode).toBe(404);
  });

  it('binds caller ids', async () => {
    expect((await req('POST', '/v1/caller-ids', { callerId: '15550001111', serial: '300-000000006' })).statusCode).toBe(201);
    expect((await req('POST', '/v1/caller-ids', { callerId: '15550001111', serial: '300-000000007' })).statusCode).toBe(409);
    expect((await req('GET', '/v1/caller-ids?serial=300-000000006')).json().items).toHaveLength(1);
    expect((await req('DELETE', '/v1/caller-ids/15550001111')).statusCode).toBe(204);
  });

  it('imports (text/csv) and exports rates; a bad CSV lists its lines', async () => {
    const ok = await req('PUT', '/v1/rates/intl?decimals=4', 'prefix,destination,rate\n44,UK,0.0234\n', { 'content-type': 'text/csv' });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ created: true, inserted: 1 });
    const bad = await req('PUT', '/v1/rates/intl2', 'prefix,destination,rate\n44,UK,x\n4a,Y,0.1\n', { 'content-type': 'text/csv' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details).toEqual([expect.stringMatching(/^line 2/), expect.stringMatching(/^line 3/)]);
    const mismatch = await req('PUT', '/v1/rates/intl?decimals=2', 'prefix,rate\n44,0.1\n', { 'content-type': 'text/csv' });
    expect(mismatch.statusCode).toBe(409);
    const exp = await req('GET', '/v1/rates/intl/export');
    expect(exp.headers['content-type']).toMatch(/text\/csv/);
    expect(exp.body).toMatch(/44,UK,0.0234/);
    expect((await req('GET', '/v1/rates/intl')).json().items[0]).toMatchObject({ prefix: '44', rate: '0.0234' });
    expect((await req('GET', '/v1/rates')).json().items.map((t: any) => t.name)).toEqual(['intl', 'std']);
    expect((await req('GET', '/v1/rates/nope/export')).statusCode).toBe(404);
  });

  it('lists and exports CDRs and reports costs', async () => {
    const card = await db.pool.query<{ id: bigint }>(`SELECT id FROM cards WHERE serial = '301-000000001'`);
    await db.pool.query(
      `INSERT INTO cdrs (call_id, card_id, destination, billsec, billed_seconds, cost_micros, source)
       VALUES ('00000000-0000-4000-8000-000000000001', $1, '15551234567', 90, 120, 24600, 'json_cdr')`,
      [card.rows[0]!.id],
    );
    expect((await req('GET', '/v1/cdrs?series=301')).json().items).toHaveLength(1);
    expect((await req('GET', '/v1/cdrs/export?card=301-000000001')).body.split('\n')[1]).toMatch(/^00000000-0000-4000-8000-000000000001,301-000000001/);
    expect((await req('GET', '/v1/reports/costs?by=series')).json().items).toEqual([
      expect.objectContaining({ key: '301', calls: 1, billedSeconds: 120, billedMinutes: '2', totalCost: { value: '0.0246', micros: '24600' } }),
    ]);
    expect((await req('GET', '/v1/reports/costs?by=moon')).statusCode).toBe(400);
  });

  it('passes mod_json_cdr posts through as raw text without an API key', async () => {
    const r = await app.inject({ method: 'POST', url: '/cdr', headers: { 'content-type': 'application/json' }, payload: '{"variables":{"uuid":"x"}}' });
    expect(r.statusCode).toBe(200);
    expect(jsonCdrs).toEqual(['{"variables":{"uuid":"x"}}']);
  });
});

describe('self-care', () => {
  const login = (serial: string, pin: string) => app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial, pin } });

  it('logs in a card of a self-care series and shows its balance and calls', async () => {
    const r = await login('301-000000001', await pinOf('301-000000001'));
    expect(r.statusCode, r.body).toBe(200);
    const token = r.json().token as string;
    const me = await app.inject({ method: 'GET', url: '/selfcare/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toMatchObject({ serial: '301-000000001', balance: { value: '1.00' }, status: 'pending' });
    const calls = await app.inject({ method: 'GET', url: '/selfcare/calls', headers: { authorization: `Bearer ${token}` } });
    expect(calls.json().items).toEqual([expect.objectContaining({ destination: '15551234567', billedSeconds: 120 })]);
    expect((await app.inject({ method: 'GET', url: '/selfcare/me' })).statusCode).toBe(401);
    const forged = `${token.split('.')[0]}.AAAA`;
    expect((await app.inject({ method: 'GET', url: '/selfcare/me', headers: { authorization: `Bearer ${forged}` } })).statusCode).toBe(401);
  });

  it('refuses a series without self-care, exactly like a wrong PIN', async () => {
    const r = await login('300-000000001', await pinOf('300-000000001'));
    expect(r.statusCode).toBe(401);
    expect(r.json().error).toEqual({ code: 'UNAUTHORIZED', message: 'invalid serial or PIN' });
    expect((await login('300-000000001', '0000000000')).statusCode).toBe(401);
  });

  it('locks a serial after repeated wrong PINs, even for the right PIN', async () => {
    const pin = await pinOf('301-000000002');
    const wrong = pin === '1111111111' ? '2222222222' : '1111111111';
    for (let i = 0; i < 3; i++) expect((await login('301-000000002', wrong)).statusCode).toBe(401);
    const locked = await login('301-000000002', pin);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error).toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/try again in 15 minutes/) });
    // another card is not affected
    expect((await login('301-000000003', await pinOf('301-000000003'))).statusCode).toBe(200);
    expect((await login('bad', '1')).statusCode).toBe(400);
  });

  it('rate-limits logins per IP', async () => {
    const small = buildApi({ pool: db.pool, pinKeys: keys, selfcare: { loginRateLimit: { max: 2, timeWindowMs: 60_000 } } });
    await small.ready();
    try {
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) codes.push((await small.inject({ method: 'POST', url: '/selfcare/login', payload: { serial: '301-000000004', pin: '1234567890' } })).statusCode);
      expect(codes.slice(2)).toEqual([429, 429]);
      const r = await small.inject({ method: 'POST', url: '/selfcare/login', payload: { serial: '301-000000004', pin: '1234567890' } });
      expect(r.json().error.code).toBe('RATE_LIMITED');
    } finally {
      await small.close();
    }
  });
});

// Runs last: it adds series, which the counts above do not expect.
describe('tax profiles', () => {
  it('adds (exact ppm), lists and removes; bad input is a 400, a duplicate a 409', async () => {
    const a = await req('POST', '/v1/tax-profiles', { name: 'vat', percent: '20' });
    expect(a.statusCode, a.body).toBe(201);
    expect(a.json()).toEqual({ name: 'vat', percent: '20', ratePpm: 200_000, seriesCount: 0 });
    expect((await req('POST', '/v1/tax-profiles', { name: 'ny', percent: '7.25' })).json().ratePpm).toBe(72_500);
    expect((await req('POST', '/v1/tax-profiles', { name: 'whole', percent: 5 })).json().ratePpm).toBe(50_000);
    const dup = await req('POST', '/v1/tax-profiles', { name: 'vat', percent: '10' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error).toMatchObject({ code: 'CONFLICT', message: 'tax profile "vat" already exists' });
    for (const percent of ['-1', '100.5', '101', '7.12345', 'abc', '', 7.25, null]) {
      const r = await req('POST', '/v1/tax-profiles', { name: 'bad', percent });
      expect(r.statusCode, String(percent)).toBe(400);
      expect(r.json().error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^percent/) });
    }
    expect((await req('POST', '/v1/tax-profiles', { percent: '5' })).statusCode).toBe(400);
    expect((await req('GET', '/v1/tax-profiles')).json().items.map((t: any) => [t.name, t.percent])).toEqual([
      ['ny', '7.25'], ['vat', '20'], ['whole', '5'],
    ]);
    expect((await req('DELETE', '/v1/tax-profiles/whole')).statusCode).toBe(204);
    expect((await req('DELETE', '/v1/tax-profiles/whole')).statusCode).toBe(404);
  });

  it('series create refuses an unknown profile; a profile in use cannot be removed', async () => {
    const bad = await req('POST', '/v1/series', { name: 'T', number: '310', count: 2, rateTable: 'std', taxProfile: 'nope' });
    expect(bad.statusCode).toBe(404);
    expect(bad.json().error.message).toBe('unknown tax profile "nope"');
    const ok = await req('POST', '/v1/series', { name: 'T', number: '310', count: 2, rateTable: 'std', taxProfile: 'vat' });
    expect(ok.statusCode, ok.body).toBe(201);
    const del = await req('DELETE', '/v1/tax-profiles/vat');
    expect(del.statusCode).toBe(409);
    expect(del.json().error.message).toMatch(/used by series 310/);
    expect((await req('GET', '/v1/tax-profiles')).json().items.find((t: any) => t.name === 'vat').seriesCount).toBe(1);
  });

  it('documents the new routes', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.paths['/v1/tax-profiles'].post.requestBody).toBeDefined();
    expect(doc.paths['/v1/cards/{serial}'].patch.requestBody).toBeDefined();
  });
});

describe('PATCH /v1/cards/:serial', () => {
  const row = async (serial: string) =>
    (
      await db.pool.query<{ id: string; balance_micros: bigint; credit_limit_micros: bigint; balance_version: bigint; max_concurrent_calls: number | null; rate_table_id: string | null }>(
        `SELECT id::text AS id, balance_micros, credit_limit_micros, balance_version, max_concurrent_calls, rate_table_id::text AS rate_table_id
         FROM cards WHERE serial = $1`,
        [serial],
      )
    ).rows[0]!;

  it('sets per-card limits and refreshes the live store when the credit limit changes', async () => {
    await importRateTable(ctx, 'alt', 'prefix,rate\n1,0.01\n');
    const serial = '300-000000030'; // balance 3.50
    const before = await row(serial);
    changes.length = 0;
    const r = await req('PATCH', `/v1/cards/${serial}`, { maxCalls: 4, creditLimit: '1.25', rateTable: 'alt' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ maxCalls: 4, maxCallsOverride: 4, creditLimit: { value: '1.25', micros: '1250000' }, rateTable: 'alt', rateTableOverride: 'alt' });
    const after = await row(serial);
    expect(after.balance_version).toBe(before.balance_version + 1n);
    expect(changes).toEqual([[after.id, { spendable: 4_750_000n, version: after.balance_version }]]);
    expect((await req('GET', `/v1/cards/${serial}`)).json()).toMatchObject({ maxCalls: 4, rateTable: 'alt', creditLimit: { value: '1.25' } });

    changes.length = 0;
    const back = await req('PATCH', `/v1/cards/${serial}`, { maxCalls: null, rateTable: 'series' });
    expect(back.json()).toMatchObject({ maxCalls: 2, maxCallsOverride: null, rateTable: 'std', rateTableOverride: null });
    expect(changes).toEqual([]);
    expect(await row(serial)).toMatchObject({ max_concurrent_calls: null, rate_table_id: null, balance_version: after.balance_version });
  });

  it('refuses a credit limit the balance is already below', async () => {
    const serial = '300-000000031';
    expect((await req('PATCH', `/v1/cards/${serial}`, { creditLimit: '10' })).statusCode).toBe(200);
    const adj = await req('POST', `/v1/cards/${serial}/adjust`, { amount: '-5', reason: 'test' }, { 'idempotency-key': 'limits-adj' });
    expect(adj.json().balance.value).toBe('-1.50');
    const low = await req('PATCH', `/v1/cards/${serial}`, { creditLimit: '1' });
    expect(low.statusCode).toBe(400);
    expect(low.json().error.message).toMatch(/at least 1\.50/);
    expect((await row(serial)).credit_limit_micros).toBe(10_000_000n);
    expect((await req('PATCH', `/v1/cards/${serial}`, { creditLimit: '1.5' })).statusCode).toBe(200);
  });

  it('rejects bad input', async () => {
    const serial = '300-000000032';
    const before = await row(serial);
    const cases: Array<[unknown, number, RegExp]> = [
      [{ maxCalls: 0 }, 400, /maxCalls/],
      [{ maxCalls: 1.5 }, 400, /maxCalls/],
      [{ maxCalls: 'many' }, 400, /maxCalls/],
      [{ creditLimit: '-1' }, 400, /must not be negative/],
      [{ creditLimit: 2.5 }, 400, /creditLimit/],
      [{ creditLimit: null }, 400, /creditLimit/],
      [{ rateTable: 'nope' }, 404, /unknown rate table "nope"/],
      [{ rateTable: 'std', colour: 'red' }, 400, /colour/],
      [{}, 400, /nothing to change/],
    ];
    for (const [body, status, re] of cases) {
      const r = await req('PATCH', `/v1/cards/${serial}`, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(status);
      expect(r.json().error.message, JSON.stringify(body)).toMatch(re);
    }
    expect((await req('PATCH', '/v1/cards/300-000000999', { maxCalls: 2 })).statusCode).toBe(404);
    expect((await req('PATCH', '/v1/cards/nope', { maxCalls: 2 })).statusCode).toBe(400);
    expect(await row(serial)).toEqual(before);
  });
});
