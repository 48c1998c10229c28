import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { decryptPin, derivePinKeys } from '../../src/store/pin.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { clientSubject } from '../../src/store/admin/selfcare.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let key: string;
const keys = derivePinKeys('selfcare-hard-secret-0123456789');
let ipSeq = 1;
const freshIp = () => `10.9.${Math.floor(ipSeq / 250)}.${ipSeq++ % 250}`;

const admin = (method: 'POST' | 'PATCH', url: string, payload: unknown) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, payload: payload as never });
const login = (serial: string, pin: string, ip = freshIp()) =>
  app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial, pin }, remoteAddress: ip });
const me = (token: string) => app.inject({ method: 'GET', url: '/selfcare/me', headers: { authorization: `Bearer ${token}` } });
const calls = (token: string) => app.inject({ method: 'GET', url: '/selfcare/calls', headers: { authorization: `Bearer ${token}` } });

async function pinOf(serial: string): Promise<string> {
  const r = await db.pool.query<{ pin_cipher: Buffer }>('SELECT pin_cipher FROM cards WHERE serial = $1', [serial]);
  return decryptPin(keys, r.rows[0]!.pin_cipher);
}
const wrongPin = (pin: string) => (pin === '1111111111' ? '2222222222' : '1111111111');

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  key = (await createApiKey(ctx, 'ops')).key;
  app = buildApi({
    pool: db.pool,
    pinKeys: keys,
    selfcare: { lockout: { maxFailures: 3, windowSeconds: 600, lockSeconds: 900, ipMaxFailures: 6 }, loginRateLimit: { max: 1000, timeWindowMs: 60_000 } },
  });
  await app.ready();
  for (const [number, selfcare] of [['400', true], ['401', false], ['402', true]] as const) {
    const r = await admin('POST', '/v1/series', { name: `S${number}`, number, count: 50, balance: '2', rateTable: 'std', status: 'active', selfcare });
    expect(r.statusCode, r.body).toBe(201);
  }
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('self-care login does not tell why it refused', () => {
  it('unknown serial, wrong PIN, self-care off, disabled card, deleted series: the same 401', async () => {
    await admin('POST', '/v1/cards/400-000000002/status', { status: 'disabled' });
    await admin('PATCH', '/v1/series/402', { status: 'deleted' });
    const answers = [
      await login('400-999999999', '1234567890'),
      await login('400-000000001', wrongPin(await pinOf('400-000000001'))),
      await login('401-000000001', await pinOf('401-000000001')),
      await login('400-000000002', await pinOf('400-000000002')),
      await login('402-000000001', await pinOf('402-000000001')),
    ];
    for (const a of answers) {
      expect(a.statusCode).toBe(401);
      expect(a.body).toBe(answers[0]!.body);
    }
    expect(answers[0]!.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'invalid serial or PIN' } });
  });

  it('an unknown serial locks exactly like a known one', async () => {
    const known = '400-000000010';
    const pin = await pinOf(known);
    for (const serial of [known, '400-888888888']) {
      for (let i = 0; i < 3; i++) expect((await login(serial, wrongPin(pin))).statusCode).toBe(401);
    }
    const a = await login(known, pin);
    const b = await login('400-888888888', pin);
    expect(a.statusCode).toBe(429);
    expect(b.statusCode).toBe(429);
    expect(a.body).toBe(b.body);
  });
});

describe('self-care tokens', () => {
  it('stop working at once when the card is disabled, the series deleted or its self-care turned off', async () => {
    const serial = '400-000000020';
    const r = await login(serial, await pinOf(serial));
    expect(r.statusCode, r.body).toBe(200);
    const token = r.json().token as string;
    expect((await me(token)).statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');

    await admin('POST', `/v1/cards/${serial}/status`, { status: 'disabled' });
    expect((await me(token)).statusCode).toBe(401);
    expect((await calls(token)).statusCode).toBe(401);
    await admin('POST', `/v1/cards/${serial}/status`, { status: 'active' });
    expect((await me(token)).statusCode).toBe(200);

    await admin('PATCH', '/v1/series/400', { selfcare: false });
    expect((await me(token)).statusCode).toBe(401);
    await admin('PATCH', '/v1/series/400', { selfcare: true });
    expect((await calls(token)).statusCode).toBe(200);

    await db.pool.query(`UPDATE series SET status = 'deleted' WHERE series_number = '400'`);
    expect((await me(token)).statusCode).toBe(401);
    await db.pool.query(`UPDATE series SET status = 'active' WHERE series_number = '400'`);
  });
});

describe('per-address limits come before per-serial locks', () => {
  it('one address walking serials is refused before it can lock them; the cardholders still log in', async () => {
    const ip = '203.0.113.7';
    const serials = Array.from({ length: 12 }, (_, i) => `400-${String(30 + i).padStart(9, '0')}`);
    const codes: number[] = [];
    // Three rounds over the serials: enough to lock every one of them (3 failures) without the address limit.
    for (let round = 0; round < 3; round++) for (const s of serials) codes.push((await login(s, '1234567890', ip)).statusCode);
    expect(codes.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(codes.slice(6).every((c) => c === 429)).toBe(true);
    const refused = await login(serials[0]!, '1234567890', ip);
    expect(refused.json().error.message).toMatch(/from this address/);
    // Not one serial got locked: each cardholder logs in from their own address.
    for (const s of serials) expect((await login(s, await pinOf(s))).statusCode, s).toBe(200);
  });

  it('an IPv6 /64 is one address', () => {
    expect(clientSubject('2001:db8:1:2:aaaa::1')).toBe(clientSubject('2001:0db8:0001:0002:ffff:1:2:3'));
    expect(clientSubject('2001:db8:1:2::1')).not.toBe(clientSubject('2001:db8:1:3::1'));
    expect(clientSubject('::ffff:192.0.2.1')).toBe('ip:192.0.2.1');
  });
});
