/**
 * Resellers through the HTTP API on a real PostgreSQL: a reseller key sees and changes only its own series, cards and
 * CDRs (every /v1 route of the OpenAPI document is tried with another reseller's objects and with missing ones: the
 * answers must be the same 404), its generation and top-ups draw on its wholesale balance atomically, and
 * concurrent generation never overdraws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { addReseller, topUpReseller } from '../../src/store/admin/resellers.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
const keys = derivePinKeys('api-test-secret-0123456789');
const k: Record<string, string> = {};

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const as = (who: string) => (method: Method, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${k[who]}`, ...headers }, ...(payload !== undefined && { payload: payload as never }) });

const balanceOf = async (name: string) =>
  (await db.pool.query<{ balance_micros: bigint }>('SELECT balance_micros FROM resellers WHERE name = $1', [name])).rows[0]!.balance_micros;

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  await addReseller(ctx, { name: 'alpha' });
  await addReseller(ctx, { name: 'beta', discount: '20' });
  await topUpReseller(ctx, 'alpha', { amount: '100', ref: 'pay-1' });
  await topUpReseller(ctx, 'beta', { amount: '100', ref: 'pay-1' });
  k.op = (await createApiKey(ctx, 'operator')).key;
  k.alpha = (await createApiKey(ctx, 'alpha-key', 'alpha')).key;
  k.beta = (await createApiKey(ctx, 'beta-key', 'beta')).key;
  app = buildApi({ pool: db.pool, pinKeys: keys });
  await app.ready();
  const series = (who: string, number: string, count: number, balance: string) =>
    as(who)('POST', '/v1/series', { name: `${who} ${number}`, number, count, balance, rateTable: 'std', status: 'active' });
  expect((await series('alpha', '500', 2, '10')).statusCode).toBe(201);
  expect((await series('beta', '600', 2, '10')).statusCode).toBe(201);
  expect((await series('op', '700', 2, '10')).statusCode).toBe(201);
  // One CDR per series' first card.
  for (const s of ['500', '600', '700']) {
    await db.pool.query(
      `INSERT INTO cdrs (call_id, card_id, destination, billsec, billed_seconds, cost_micros, source)
       SELECT gen_random_uuid(), c.id, '15551234567', 60, 60, 12300, 'socket' FROM cards c WHERE c.serial = $1`,
      [`${s}-000000001`],
    );
  }
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('wholesale balance', () => {
  it('generation draws count x balance (at the reseller discount), in the reseller ledger', async () => {
    expect(await balanceOf('alpha')).toBe(80_000_000n);
    expect(await balanceOf('beta')).toBe(84_000_000n); // 20 at 20% off
    const l = await db.pool.query<{ reason: string; amount_micros: bigint; ref: string }>(
      `SELECT l.reason, l.amount_micros, l.ref FROM reseller_ledger l JOIN resellers r ON r.id = l.reseller_id WHERE r.name = 'alpha' ORDER BY l.id`,
    );
    expect(l.rows).toEqual([
      { reason: 'topup', amount_micros: 100_000_000n, ref: 'pay-1' },
      { reason: 'generation', amount_micros: -20_000_000n, ref: 'series:500' },
    ]);
  });

  it('a generation the balance does not cover is refused and creates nothing', async () => {
    const r = await as('alpha')('POST', '/v1/series', { name: 'big', number: '501', count: 9, balance: '10', rateTable: 'std' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/wholesale balance does not cover 90\.00/);
    expect((await db.pool.query(`SELECT 1 FROM series WHERE series_number = '501'`)).rowCount).toBe(0);
    expect(await balanceOf('alpha')).toBe(80_000_000n);
  });

  it("a top-up of a reseller's card draws on its wholesale balance; the reseller cannot name the series' owner", async () => {
    const t = await as('alpha')('POST', '/v1/cards/500-000000002/topup', { amount: '5' }, { 'idempotency-key': 'a-t1' });
    expect(t.statusCode, t.body).toBe(200);
    expect(await balanceOf('alpha')).toBe(75_000_000n);
    // replayed: no second draw
    await as('alpha')('POST', '/v1/cards/500-000000002/topup', { amount: '5' }, { 'idempotency-key': 'a-t1' });
    expect(await balanceOf('alpha')).toBe(75_000_000n);
    // The operator topping up a reseller's card draws on the reseller too.
    expect((await as('op')('POST', '/v1/cards/500-000000002/topup', { amount: '1' }, { 'idempotency-key': 'op-t1' })).statusCode).toBe(200);
    expect(await balanceOf('alpha')).toBe(74_000_000n);
    const steal = await as('alpha')('POST', '/v1/series', { name: 'x', number: '502', count: 1, rateTable: 'std', reseller: 'beta' });
    expect(steal.statusCode).toBe(400);
  });

  it('concurrent generation by two resellers never overdraws either', async () => {
    await addReseller(ctx, { name: 'gamma' });
    await addReseller(ctx, { name: 'delta', creditLimit: '5' });
    await topUpReseller(ctx, 'gamma', { amount: '50', ref: 'g' });
    await topUpReseller(ctx, 'delta', { amount: '50', ref: 'd' });
    k.gamma = (await createApiKey(ctx, 'gamma-key', 'gamma')).key;
    k.delta = (await createApiKey(ctx, 'delta-key', 'delta')).key;
    const attempts = Array.from({ length: 16 }, (_, i) =>
      as(i % 2 ? 'gamma' : 'delta')('POST', '/v1/series', { name: 'race', number: String(800 + i), count: 2, balance: '5', rateTable: 'std' }),
    );
    const results = await Promise.all(attempts);
    const okBy = (who: number) => results.filter((r, i) => i % 2 === who && r.statusCode === 201).length;
    for (const r of results) expect([201, 400], r.body).toContain(r.statusCode);
    expect(okBy(1)).toBe(5); // gamma: 50 / 10
    expect(okBy(0)).toBe(5); // delta: 55 / 10 -> 5 (a sixth would reach -10)
    expect(await balanceOf('gamma')).toBe(0n);
    expect(await balanceOf('delta')).toBe(0n);
    const sums = await db.pool.query<{ name: string; ok: boolean }>(
      `SELECT r.name, r.balance_micros = (SELECT sum(amount_micros) FROM reseller_ledger l WHERE l.reseller_id = r.id) AS ok FROM resellers r`,
    );
    for (const s of sums.rows) expect(s.ok, s.name).toBe(true);
    const cards = await db.pool.query<{ n: bigint }>(`SELECT count(*)::bigint AS n FROM cards c JOIN series s ON s.id = c.series_id WHERE s.name = 'race'`);
    expect(cards.rows[0]!.n).toBe(20n);
  });
});

describe('a reseller key sees only its own', () => {
  it('lists and exports only its series, cards and CDRs', async () => {
    const a = as('alpha');
    expect((await a('GET', '/v1/series')).json().items.map((s: { number: string }) => s.number)).toEqual(['500']);
    const cards = (await a('GET', '/v1/cards')).json().items.map((c: { serial: string }) => c.serial);
    expect(cards).toEqual(['500-000000001', '500-000000002']);
    const csv = (await a('GET', '/v1/cards/export?format=csv')).body;
    expect(csv).toContain('500-000000001');
    expect(csv).not.toMatch(/600-|700-/);
    expect((await a('GET', '/v1/cdrs')).json().items.map((c: { serial: string }) => c.serial)).toEqual(['500-000000001']);
    const cdrCsv = (await a('GET', '/v1/cdrs/export')).body;
    expect(cdrCsv).toContain('500-000000001');
    expect(cdrCsv).not.toMatch(/600-|700-/);
    expect((await a('GET', '/v1/reports/costs?by=series')).json().items.map((r: { key: string }) => r.key)).toEqual(['500']);
    const report = (await a('GET', '/v1/reseller/report')).json().items;
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ reseller: 'alpha', cards: 2, calls: 1, revenue: { micros: '12300' } });
    expect((await a('GET', '/v1/reseller')).json()).toMatchObject({ name: 'alpha', series: ['500'] });
    // The operator sees everything.
    expect((await as('op')('GET', '/v1/series')).json().items.length).toBeGreaterThanOrEqual(3);
    expect((await as('op')('GET', '/v1/reports/resellers')).json().items.map((r: { reseller: string }) => r.reseller)).toEqual(
      expect.arrayContaining(['alpha', 'beta']),
    );
  });

  it("every /v1 route: another reseller's card or series answers exactly as a missing one does", async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const paths = Object.entries(doc.paths).filter(([p]) => p.startsWith('/v1/'));
    expect(paths.length).toBeGreaterThan(30);
    const fill = (path: string, serial: string, number: string) =>
      path
        .replace('{serial}', serial)
        .replace('{number}', number)
        .replace('{name}', 'alpha')
        .replace('{table}', 'std')
        .replace('{did}', '15550001111')
        .replace('{callerId}', '15551230000')
        .replace('{prefix}', '44');
    const bodyOf = { amount: '1', status: 'active', notes: 'x', maxCalls: 2, reason: 'r', name: 'n', gateway: 'g' };
    let tried = 0;
    for (const [path, methods] of paths) {
      for (const m of Object.keys(methods)) {
        const method = m.toUpperCase() as Method;
        const headers = { 'idempotency-key': `probe-${tried}` };
        const send = (url: string) => as('alpha')(method, url, method === 'GET' || method === 'DELETE' ? undefined : bodyOf, { ...headers, 'idempotency-key': `${headers['idempotency-key']}-${url}` });
        const theirs = await send(fill(path, '600-000000001', '600'));
        const missing = await send(fill(path, '500-000000999', '599'));
        tried++;
        const norm = (s: string) => s.replace(/600-000000001|500-000000999/g, 'X').replace(/\b(600|599)\b/g, 'N');
        if (path.includes('{serial}') || path.includes('{number}')) {
          expect(theirs.statusCode, `${method} ${path}`).toBe(404);
          expect(norm(theirs.body), `${method} ${path}`).toBe(norm(missing.body));
        } else if (theirs.statusCode === 404) {
          // an operator-only route: the same 404 as a route that does not exist
          expect(theirs.json().error.message, `${method} ${path}`).toMatch(/^no route /);
        }
        // Never a 403: a refusal by role would tell the key that the route exists.
        expect(theirs.statusCode, `${method} ${path}`).not.toBe(403);
        // Never any of beta's or the operator's data (only what the request itself named is echoed).
        expect(theirs.body, `${method} ${path}`).not.toMatch(/600-000000002|700-0000|"beta"/);
      }
    }
    // Vouchers, devices and provisioning codes are the operator's: every such route answers a reseller "no route", so a
    // reseller can neither see nor redeem another's vouchers nor reach any device.
    const operatorOnly = paths.filter(([p]) => /^\/v1\/(vouchers|devices|provision-codes)(\/|$)/.test(p));
    expect(operatorOnly.map(([p]) => p)).toEqual(expect.arrayContaining(['/v1/vouchers', '/v1/vouchers/redeem', '/v1/vouchers/{batch}/export', '/v1/devices', '/v1/devices/{user}', '/v1/provision-codes']));
    for (const [path, methods] of operatorOnly) {
      for (const m of Object.keys(methods)) {
        const url = path.replace('{batch}', 'B1').replace('{user}', '100000001');
        const r = await as('alpha')(m.toUpperCase() as Method, url, m === 'get' || m === 'delete' ? undefined : { number: '4539578763621486', serial: '500-000000001', count: 1, value: '1', currency: 'USD' });
        expect(r.statusCode, `${m} ${path}`).toBe(404);
        expect(r.json().error.message, `${m} ${path}`).toMatch(/^no route /);
      }
    }
    // The filters name objects too.
    for (const url of ['/v1/cards?series=', '/v1/cards/export?series=', '/v1/cdrs?series=', '/v1/cdrs/export?series=', '/v1/reports/costs?by=card&series=']) {
      const theirs = await as('alpha')('GET', `${url}600`);
      const missing = await as('alpha')('GET', `${url}599`);
      expect(theirs.statusCode, url).toBe(404);
      expect(theirs.body.replace('600', 'N'), url).toBe(missing.body.replace('599', 'N'));
    }
    for (const url of ['/v1/cdrs?card=', '/v1/cdrs/export?card=', '/v1/reports/costs?by=card&card=']) {
      const theirs = await as('alpha')('GET', `${url}600-000000001`);
      expect(theirs.statusCode, url).toBe(404);
      expect(theirs.json().error.message).toBe('unknown card 600-000000001');
    }
    // Nothing of beta's changed.
    const beta = await db.pool.query<{ status: string; balance_micros: bigint }>(`SELECT status, balance_micros FROM cards WHERE serial LIKE '600-%' ORDER BY serial`);
    expect(beta.rows.map((r) => [r.status, r.balance_micros])).toEqual([
      ['active', 10_000_000n],
      ['active', 10_000_000n],
    ]);
    expect(await balanceOf('beta')).toBe(84_000_000n);
    const notes = await db.pool.query<{ notes: string }>(`SELECT notes FROM series WHERE series_number = '600'`);
    expect(notes.rows[0]!.notes).toBe('');
  });
});

describe('operator endpoints for resellers, carriers and routing plans', () => {
  it('manages resellers and their wholesale balance', async () => {
    const op = as('op');
    const add = await op('POST', '/v1/resellers', { name: 'epsilon', creditLimit: '10', discount: '12.5' });
    expect(add.statusCode, add.body).toBe(201);
    expect(add.json()).toMatchObject({ name: 'epsilon', balance: { micros: '0' }, creditLimit: { micros: '10000000' }, discountPercent: '12.5' });
    expect((await op('POST', '/v1/resellers', { name: 'epsilon' })).statusCode).toBe(409);
    expect((await op('POST', '/v1/resellers', { name: 'bad name' })).statusCode).toBe(400);
    expect((await op('POST', '/v1/resellers/epsilon/topup', { amount: 12.5 })).statusCode).toBe(400); // never a float
    const t = await op('POST', '/v1/resellers/epsilon/topup', { amount: '12.50', ref: 'inv-9' });
    expect(t.json().balance.micros).toBe('12500000');
    expect((await op('POST', '/v1/resellers/epsilon/topup', { amount: '12.50', ref: 'inv-9' })).statusCode).toBe(409);
    expect((await op('GET', '/v1/resellers/epsilon/ledger')).json().items).toEqual([
      expect.objectContaining({ reason: 'topup', ref: 'inv-9', amount: { value: '12.50', micros: '12500000' } }),
    ]);
    expect((await op('GET', '/v1/resellers/nobody')).statusCode).toBe(404);
    expect((await op('GET', '/v1/reseller')).statusCode).toBe(404);
  });

  it('manages carriers and routing plans', async () => {
    const op = as('op');
    expect((await op('POST', '/v1/carriers', { name: 'acme', gateway: 'acme-gw', maxCalls: 10 })).statusCode).toBe(201);
    expect((await op('POST', '/v1/carriers', { name: 'acme', gateway: 'acme-gw' })).statusCode).toBe(409);
    expect((await op('POST', '/v1/carriers', { name: 'x', gateway: 'bad gw' })).statusCode).toBe(400);
    expect((await op('PATCH', '/v1/carriers/acme', { prefixAdd: '00' })).json()).toMatchObject({ prefixAdd: '00', buyRates: 'buy-acme' });
    expect((await op('POST', '/v1/routing-plans', { name: 'p1' })).statusCode).toBe(201);
    const e = await op('PUT', '/v1/routing-plans/p1/entries', { prefix: '44', mode: 'ordered', carriers: [{ carrier: 'acme' }] });
    expect(e.json().entries).toEqual([{ prefix: '44', mode: 'ordered', carriers: [{ carrier: 'acme', position: 0, weight: 1 }] }]);
    expect((await op('PUT', '/v1/routing-plans/p1/entries', { prefix: '4x', mode: 'block' })).statusCode).toBe(400);
    expect((await op('POST', '/v1/routing-plans/assign', { plan: 'p1', series: '700' })).json()).toEqual({ plan: 'p1', series: '700' });
    expect((await op('GET', '/v1/routing-plans/p1')).json()).toMatchObject({ series: ['700'] });
    expect((await op('DELETE', '/v1/routing-plans/p1')).statusCode).toBe(409);
    expect((await op('DELETE', '/v1/carriers/acme')).statusCode).toBe(409);
    expect((await op('DELETE', '/v1/routing-plans/p1/entries/44')).statusCode).toBe(204);
    expect((await op('DELETE', '/v1/carriers/acme')).statusCode).toBe(204);
    // A reseller cannot see any of it.
    expect((await as('alpha')('GET', '/v1/carriers')).statusCode).toBe(404);
    expect((await as('alpha')('GET', '/v1/routing-plans/p1')).statusCode).toBe(404);
  });
});
