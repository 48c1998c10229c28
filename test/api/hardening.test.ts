import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let key: string;
let key2: string;
let port: number;
const keys = derivePinKeys('api-hard-secret-0123456789');

const req = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}, k = key) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${k}`, ...headers }, ...(payload !== undefined && { payload: payload as never }) });

const isErrorShape = (body: unknown) =>
  expect(body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  key = (await createApiKey(ctx, 'alpha')).key;
  key2 = (await createApiKey(ctx, 'beta')).key;
  app = buildApi({ pool: db.pool, pinKeys: keys });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  expect((await req('POST', '/v1/series', { name: 'H', number: '100', count: 5, balance: '10', rateTable: 'std', status: 'active' })).statusCode).toBe(201);
  expect((await req('POST', '/v1/series', { name: 'I', number: '101', count: 3, balance: '1', rateTable: 'std', status: 'active' })).statusCode).toBe(201);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('unknown query parameters', () => {
  it('are refused with 400 naming the parameter, on every endpoint', async () => {
    const r = await req('GET', '/v1/cards/export?withPins=true&serie=100');
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/unknown query parameter "serie"/);
    expect(r.headers['content-disposition']).toBeUndefined();
    for (const url of ['/v1/series?x=1', '/v1/cards?serie=100', '/v1/cdrs?cardd=1', '/v1/series/100?verbose=1', '/v1/rates/std?limt=5']) {
      const x = await req('GET', url);
      expect(x.statusCode, url).toBe(400);
      expect(x.json().error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/unknown query parameter/) });
    }
    // Documented ones still work.
    expect((await req('GET', '/v1/cards?series=100&limit=2')).statusCode).toBe(200);
    expect((await req('GET', '/v1/rates/std?prefix=1&limit=5')).statusCode).toBe(200);
    expect((await req('GET', '/v1/caller-ids?serial=100-000000001')).statusCode).toBe(200);
    const exp = await req('GET', '/v1/cards/export?series=101&withPins=true&confirm=pins');
    expect(exp.statusCode).toBe(200);
    expect(exp.body.trim().split('\n')).toHaveLength(4);
  });
});

describe('values PostgreSQL would refuse are 400 with a message, never 500', () => {
  it('NUL characters in a body, a query or a path', async () => {
    for (const r of [
      await req('POST', '/v1/series', { name: 'a\u0000b', number: '102', count: 1, rateTable: 'std' }),
      await req('PATCH', '/v1/series/100', { notes: 'x\u0000' }),
      await req('GET', '/v1/cards?series=1%0000'),
      await req('GET', '/v1/dids/1%00'),
      await req('POST', '/v1/cards/100-000000001/topup', { amount: '1', reason: 'r\u0000' }, { 'idempotency-key': 'nul-1' }),
    ]) {
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.message).toMatch(/NUL/);
    }
    // A rate CSV is read as a stream (bounded memory), so its NUL is found by the row check, with its line number.
    const csv = await req('PUT', '/v1/rates/nul', 'prefix,destination,rate\n1,US\u0000A,0.01\n', { 'content-type': 'text/csv' });
    expect(csv.statusCode, csv.body).toBe(400);
    expect(csv.json().error.message).toMatch(/line 2: destination must not contain control characters/);
  });

  it('dates outside what PostgreSQL stores', async () => {
    for (const expiryDate of ['+275760-09-13', '-001000-01-01T00:00:00Z', '0001-01-01']) {
      const r = await req('POST', '/v1/series', { name: 'D', number: '103', count: 1, rateTable: 'std', expiryDate });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.message).toMatch(/expiryDate: invalid date .*between 1900-01-01 and 9999-12-31/);
    }
    expect((await req('GET', '/v1/cdrs?from=%2B200000-01-01')).statusCode).toBe(400);
  });

  it('amounts beyond the one money bound (1 000 000 000), in every field and on the resulting balance', async () => {
    const big = await req('POST', '/v1/series', { name: 'B', number: '104', count: 1, rateTable: 'std', balance: '9223372036854' });
    expect(big.statusCode).toBe(400);
    expect(big.json().error.message).toMatch(/balance: invalid amount "9223372036854": must be at most 1000000000/);
    const fee = await req('POST', '/v1/series', { name: 'B', number: '104', count: 1, rateTable: 'std', activationFee: '1000000000.000001' });
    expect(fee.statusCode).toBe(400);
    const lim = await req('PATCH', '/v1/cards/100-000000001', { creditLimit: '999999999999999' });
    expect(lim.statusCode).toBe(400);
    const rate = await req('PUT', '/v1/rates/huge', 'prefix,destination,rate\n1,USA,9999999999\n', { 'content-type': 'text/csv' });
    expect(rate.statusCode).toBe(400);
    // The bound itself is fine; going past it by top-ups is refused and changes nothing.
    const max = await req('POST', '/v1/series', { name: 'M', number: '105', count: 1, rateTable: 'std', balance: '1000000000', status: 'active' });
    expect(max.statusCode).toBe(201);
    const over = await req('POST', '/v1/cards/105-000000001/topup', { amount: '0.01' }, { 'idempotency-key': 'over-1' });
    expect(over.statusCode).toBe(400);
    expect(over.json().error.message).toMatch(/would exceed 1000000000/);
    expect((await req('GET', '/v1/cards/105-000000001')).json().balance.value).toBe('1000000000.00');
  });
});

describe('idempotency keys are scoped to the API key that used them', () => {
  it('the same key from two API keys is two requests; a retry by the same API key is replayed', async () => {
    const before = (await req('GET', '/v1/cards/101-000000001')).json().balance.value;
    expect(before).toBe('1.00');
    const body = { amount: '2' };
    const a = await req('POST', '/v1/cards/101-000000001/topup', body, { 'idempotency-key': 'shared' }, key);
    const b = await req('POST', '/v1/cards/101-000000001/topup', body, { 'idempotency-key': 'shared' }, key2);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(a.json()).toMatchObject({ applied: true, balance: { value: '3.00' } });
    expect(b.json()).toMatchObject({ applied: true, balance: { value: '5.00' } });
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    // Another API key's different body under the same key is not a mismatch for this one.
    const c = await req('POST', '/v1/cards/101-000000001/topup', { amount: '7' }, { 'idempotency-key': 'shared' }, key2);
    expect(c.statusCode).toBe(409);
    const again = await req('POST', '/v1/cards/101-000000001/topup', body, { 'idempotency-key': 'shared' }, key);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(a.body);
    expect((await req('GET', '/v1/cards/101-000000001')).json().balance.value).toBe('5.00');
  });

  it('a key stored before scoping (empty scope) is still honoured on a retry', async () => {
    const r = await req('POST', '/v1/cards/101-000000002/topup', { amount: '1' }, { 'idempotency-key': 'legacy' });
    expect(r.statusCode).toBe(200);
    await db.pool.query(`UPDATE idempotency_keys SET scope = '' WHERE key = 'legacy'`);
    const again = await req('POST', '/v1/cards/101-000000002/topup', { amount: '1' }, { 'idempotency-key': 'legacy' }, key2);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect((await req('GET', '/v1/cards/101-000000002')).json().balance.value).toBe('2.00');
  });
});

describe('headers', () => {
  it('nosniff everywhere, no-store on API answers (balances, exports, tokens)', async () => {
    for (const url of ['/v1/series', '/v1/cards/100-000000001', '/v1/cards/export?series=100&withPins=true', '/nowhere']) {
      const r = await req('GET', url);
      expect(r.headers['x-content-type-options'], url).toBe('nosniff');
      expect(r.headers['cache-control'], url).toBe('no-store');
    }
    const login = await app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial: '100-000000001', pin: '12345678' } });
    expect(login.headers['cache-control']).toBe('no-store');
  });

  it('HTML (/docs) carries a CSP with frame-ancestors none and X-Frame-Options', async () => {
    const r = await app.inject({ method: 'GET', url: '/docs/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    expect(r.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(r.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(r.headers['x-frame-options']).toBe('DENY');
    const json = await req('GET', '/v1/series');
    expect(json.headers['content-security-policy']).toBeUndefined();
  });
});

describe("every error, fastify's own included, is { error: { code, message } }", () => {
  it('404, bad JSON, wrong content type, bad URL encoding', async () => {
    for (const r of [
      await req('GET', '/nowhere'),
      await req('POST', '/v1/series', '{"name": ', { 'content-type': 'application/json' }),
      await req('POST', '/v1/series', 'x', { 'content-type': 'application/x-www-form-urlencoded' }),
      await req('GET', '/v1/series/%E0%A4%A'),
    ]) {
      expect(r.statusCode, r.body).toBeGreaterThanOrEqual(400);
      expect(r.statusCode, r.body).toBeLessThan(500);
      isErrorShape(r.json());
    }
  });

  it('a value PostgreSQL refuses that slipped past the edge checks is a 400, not a 500', async () => {
    const other = buildApi({ pool: db.pool, pinKeys: keys });
    other.get('/pg', async () => db.pool.query(`SELECT $1::timestamptz`, ['294277-01-01']));
    other.get('/nul', async () => db.pool.query(`SELECT $1::text`, ['a\u0000b']));
    await other.ready();
    try {
      for (const url of ['/pg', '/nul']) {
        const r = await other.inject({ method: 'GET', url });
        expect(r.statusCode, r.body).toBe(400);
        expect(r.json().error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/refused by the database/) });
      }
    } finally {
      await other.close();
    }
  });

  it('a serialization failure is a 500 in the shape, with no stack', async () => {
    const other = buildApi({ pool: db.pool, pinKeys: keys });
    other.get('/boom', async () => ({ n: 1n }));
    await other.ready();
    try {
      const r = await other.inject({ method: 'GET', url: '/boom' });
      expect(r.statusCode).toBe(500);
      expect(r.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    } finally {
      await other.close();
    }
  });

  it('431 for oversized headers and 400 for a malformed request, from the HTTP parser', async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => s.write(text));
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
    const big = await raw(`GET /v1/series HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    isErrorShape(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)));
    const bad = await raw('GARBAGE\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    isErrorShape(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)));
  });
});
