import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { decryptPin, derivePinKeys } from '../../src/store/pin.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { createSeries } from '../../src/store/admin/series.ts';
import { addTaxProfile } from '../../src/store/admin/tax.ts';
import { topUp } from '../../src/store/admin/cards.ts';
import { addDid } from '../../src/store/admin/dids.ts';
import { addCallerId } from '../../src/store/admin/caller-ids.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
const keys = derivePinKeys('selfcare-card-test-secret-01');
const A = '610-000000001';
const B = '610-000000002';
let tokenA: string;
let tokenB: string;

const as = (token: string) => ({ authorization: `Bearer ${token}` });
async function pinOf(serial: string): Promise<string> {
  const r = await db.pool.query<{ pin_cipher: Buffer }>('SELECT pin_cipher FROM cards WHERE serial = $1', [serial]);
  return decryptPin(keys, r.rows[0]!.pin_cipher);
}
async function loginCard(serial: string): Promise<string> {
  const r = await app.inject({ method: 'POST', url: '/selfcare/login', payload: { serial, pin: await pinOf(serial) } });
  expect(r.statusCode, r.body).toBe(200);
  return r.json().token;
}

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate,connect_fee,initial_increment,subsequent_increment\n1,USA,0.0123,0,60,60\n44,UK,0.05,0.10,30,6\n4420,UK London,0.04,0,60,1\n');
  await addTaxProfile(ctx, { name: 'vat', percent: '7.25' });
  await createSeries(ctx, { name: 'Self', number: '610', count: 2, balance: '10', rateTable: 'std', selfcare: true, status: 'active', taxProfile: 'vat' });
  await topUp(ctx, { serial: A, amount: '5', reason: 'shop', idempotencyKey: 'a1' });
  await addCallerId(ctx, '15550002222', B);
  app = buildApi({ pool: db.pool, pinKeys: keys });
  await app.ready();
  tokenA = await loginCard(A);
  tokenB = await loginCard(B);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('self-care: the card of the token, and only it', () => {
  it('shows the ledger of its own card, newest first', async () => {
    const a = (await app.inject({ method: 'GET', url: '/selfcare/ledger', headers: as(tokenA) })).json();
    expect(a.items.map((x: { reason: string; amount: { value: string } }) => [x.reason, x.amount.value])).toEqual([['topup', '5.00'], ['initial', '10.00']]);
    const b = (await app.inject({ method: 'GET', url: '/selfcare/ledger', headers: as(tokenB) })).json();
    expect(b.items.map((x: { reason: string }) => x.reason)).toEqual(['initial']);
  });

  it('cardholder A cannot read card B by any parameter', async () => {
    for (const url of [`/selfcare/ledger?serial=${B}`, `/selfcare/me?serial=${B}`, `/selfcare/calls?card=${B}`, `/selfcare/caller-ids?serial=${B}`]) {
      const r = await app.inject({ method: 'GET', url, headers: as(tokenA) });
      expect(r.body, url).not.toContain(B);
      expect(r.body, url).not.toContain('15550002222');
    }
    expect((await app.inject({ method: 'GET', url: '/selfcare/me', headers: as(tokenA) })).json().serial).toBe(A);
    // Unbinding B's number with A's token fails and leaves it bound.
    const del = await app.inject({ method: 'DELETE', url: '/selfcare/caller-ids/15550002222', headers: as(tokenA) });
    expect(del.statusCode).toBe(404);
    expect((await db.pool.query(`SELECT 1 FROM caller_ids WHERE caller_id = '15550002222'`)).rowCount).toBe(1);
  });

  it('refuses a forged or altered token', async () => {
    const [body, sig] = tokenA.split('.');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString());
    const forged = `${Buffer.from(JSON.stringify({ ...claims, serial: B })).toString('base64url')}.${sig}`;
    expect((await app.inject({ method: 'GET', url: '/selfcare/ledger', headers: as(forged) })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/selfcare/ledger' })).statusCode).toBe(401);
    // An operator's session cookie is not a self-care login either.
    expect((await app.inject({ method: 'GET', url: '/selfcare/ledger', headers: { cookie: 'ccard_session=whatever-0123456789abcdefghij' } })).statusCode).toBe(401);
  });

  it('prices a call to a number: longest prefix, fees, increments, tax', async () => {
    const r = await app.inject({ method: 'GET', url: `/selfcare/rate?number=${encodeURIComponent('+44 20 7123 4567')}`, headers: as(tokenA) });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({
      number: '+442071234567', destination: 'UK London', prefix: '4420', currency: 'USD', ratePerMinute: '0.04', connectFee: '0.00',
      initialIncrement: 60, subsequentIncrement: 1, taxPercent: '7.25',
    });
    expect((await app.inject({ method: 'GET', url: '/selfcare/rate?number=0044161000000', headers: as(tokenA) })).json()).toMatchObject({ destination: 'UK', ratePerMinute: '0.05', connectFee: '0.10' });
    expect((await app.inject({ method: 'GET', url: '/selfcare/rate?number=15551234567', headers: as(tokenA) })).json().ratePerMinute).toBe('0.0123');
    const none = await app.inject({ method: 'GET', url: '/selfcare/rate?number=+861012345678', headers: as(tokenA) });
    expect(none.statusCode).toBe(404);
    expect(none.json().error.message).toMatch(/not possible/);
    const bad = await app.inject({ method: 'GET', url: '/selfcare/rate?number=hello', headers: as(tokenA) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^number: must be a phone number/);
  });

  it('binds and unbinds caller ids only when an access number offers pinless calls', async () => {
    const none = await app.inject({ method: 'POST', url: '/selfcare/caller-ids', headers: as(tokenA), payload: { callerId: '15550001111' } });
    expect(none.statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/selfcare/caller-ids', headers: as(tokenA) })).json()).toEqual({ pinlessAvailable: false, max: 5, items: [] });
    await addDid(ctx, { did: '15557770000', gateway: 'carrier', auth: 'cli-then-pin' });
    const ok = await app.inject({ method: 'POST', url: '/selfcare/caller-ids', headers: as(tokenA), payload: { callerId: '+15550001111' } });
    expect(ok.statusCode, ok.body).toBe(201);
    const list = (await app.inject({ method: 'GET', url: '/selfcare/caller-ids', headers: as(tokenA) })).json();
    expect(list.pinlessAvailable).toBe(true);
    expect(list.items.map((x: { callerId: string }) => x.callerId)).toEqual(['+15550001111']);
    const taken = await app.inject({ method: 'POST', url: '/selfcare/caller-ids', headers: as(tokenA), payload: { callerId: '15550002222' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error.message).not.toContain(B);
    expect((await app.inject({ method: 'POST', url: '/selfcare/caller-ids', headers: as(tokenA), payload: { callerId: 'abc' } })).statusCode).toBe(400);
    expect((await app.inject({ method: 'DELETE', url: '/selfcare/caller-ids/+15550001111', headers: as(tokenA) })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/selfcare/caller-ids', headers: as(tokenA) })).json().items).toEqual([]);
    const audit = await db.pool.query<{ actor: string; action: string }>(`SELECT actor, action FROM audit_log ORDER BY id`);
    expect(audit.rows).toEqual([
      { actor: `card:${A}`, action: 'POST /selfcare/caller-ids' },
      { actor: `card:${A}`, action: 'DELETE /selfcare/caller-ids/:callerId' },
    ]);
  });
});
