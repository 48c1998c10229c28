/**
 * `ccard calls unbilled` and `ccard calls reconcile`: a call whose hold ran out with no CDR is listed as unbilled
 * (and counted), is billed when its CDR comes later (clamped at the floor, shortfall recorded), and reconciliation
 * finds nothing wrong then; a broken ledger is reported. The API's GET /v1/calls/unbilled and /reconcile agree.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/server.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { createCallServices, type CcardCallServices } from '../../src/app/call-services.ts';
import { closeOverdueCalls } from '../../src/billing/overdue.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { countUnbilled } from '../../src/store/reconcile.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, carrierLegCdr, createCard, createSeries, memoryRates, pinKeys, silentLog } from '../billing-service/fixtures.ts';
import { cli } from './helpers.ts';

const ctx = { ivrUuid: '2b314978-1142-482a-9df4-4905a48f5811', did: '18005550100', callerId: '15551230000' };

let db: TestDb;
let run: ReturnType<typeof cli>;
let svc: CcardCallServices;
let live: MemoryLiveBalance;
let rates: ReturnType<typeof memoryRates>;
let app: FastifyInstance;
let apiKey: string;
const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${apiKey}` } });
let cardId: string;
let serial: string;
const from = new Date(Date.now() - 3_600_000).toISOString();
const to = () => new Date(Date.now() + 60_000).toISOString();

beforeAll(async () => {
  db = await createTestDb();
  run = cli(db);
  const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
  ({ cardId } = await createCard(db.pool, { seriesId, balance: 1_500_000n }));
  serial = (await db.pool.query<{ serial: string }>('SELECT serial FROM cards WHERE id = $1', [cardId])).rows[0]!.serial;
  live = new MemoryLiveBalance();
  const keys = derivePinKeys('calls-test-secret-0123456789');
  app = buildApi({ pool: db.pool, pinKeys: keys });
  apiKey = (await createApiKey({ pool: db.pool, pinKeys: keys }, 'calls-test')).key;
  rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
  svc = createCallServices({ pool: db.pool, live, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
});
afterAll(async () => {
  await app.close();
  await db.drop();
});

describe('ccard calls', () => {
  it('lists an unbilled call, bills it when its CDR comes, and reconciles clean', async () => {
    expect((await run('calls', 'unbilled')).out).toMatch(/no unbilled calls/);
    const lost = await svc.reserve(cardId, '15557654321', ctx);
    if (!lost.ok) throw new Error('not reserved');
    // ccard was down while it was bridged; its hold ran out with no CDR.
    expect(await closeOverdueCalls(db.pool, live, new Date(Date.now() + 3_600_000))).toBe(1);
    expect(await countUnbilled(db.pool)).toBe(1);
    const listed = await run('calls', 'unbilled', '--json');
    expect(listed.code).toBe(0);
    expect(listed.json()).toEqual([
      expect.objectContaining({ callId: lost.reservation.callId, serial, destination: '15557654321', reserved: { value: '1.20', micros: '1200000' } }),
    ]);
    const table = await run('calls', 'unbilled');
    expect(table.out).toContain(lost.reservation.callId);
    // The same through the API (GET /v1/calls/unbilled).
    const api = await get('/v1/calls/unbilled?limit=10');
    expect(api.statusCode).toBe(200);
    expect(api.json()).toEqual({ items: listed.json(), hasMore: false });
    expect((await get('/v1/calls/unbilled?limt=10')).statusCode).toBe(400);

    const r1 = await run('calls', 'reconcile', '--from', from, '--to', to());
    expect(r1.code).toBe(0);
    expect(r1.out).toMatch(/1 difference/);
    expect(r1.out).toMatch(/unbilled/);

    // Meanwhile the funds were free: another call spends 0.60 of the 1.50.
    const other = await svc.reserve(cardId, '15557654321', ctx);
    if (!other.ok) throw new Error('not reserved');
    await svc.settle(other.reservation, answeredBridge(other.reservation.callId, 30));
    // The lost call's CDR arrives (e.g. `ccard cdr import`, the spool): 1.20 owed, 0.90 collected.
    expect(await svc.ingestJsonCdr(carrierLegCdr(lost.reservation.callId, 60), 'spool')).toMatchObject({ status: 'debited', uncollected: 300_000n });
    expect(await countUnbilled(db.pool)).toBe(0);

    const clean = await run('calls', 'reconcile', '--from', from, '--to', to(), '--json');
    expect(clean.code).toBe(0);
    expect(clean.json()).toMatchObject({
      calls: 2,
      cdrs: 2,
      cost: { value: '1.80' },
      collected: { value: '1.50' },
      uncollected: { value: '0.30' },
      debited: { value: '1.50' },
      differences: [],
    });
    expect((await run('calls', 'reconcile', '--from', from, '--to', to())).out).toMatch(/no differences/);
    const viaApi = await get(`/v1/calls/reconcile?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to())}`);
    expect(viaApi.statusCode).toBe(200);
    expect(viaApi.json()).toMatchObject({ calls: 2, debited: { value: '1.50' }, differences: [] });
    const bad = await get(`/v1/calls/reconcile?from=nope&to=${encodeURIComponent(to())}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^from: invalid date/);
  });

  it('reports a ledger that does not match its CDRs', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
    const own = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    rates.byTable[rateTableId] = [{ prefix: '1', ratePerMin: 1_200_000n }];
    const again = await svc.reserve(own.cardId, '15557654321', ctx);
    if (!again.ok) throw new Error('not reserved');
    await svc.settle(again.reservation, answeredBridge(again.reservation.callId, 10));
    await db.pool.query(`DELETE FROM ledger WHERE ref = $1`, [again.reservation.callId]);
    const out = await run('calls', 'reconcile', '--from', from, '--to', to(), '--json');
    const kinds = out.json().differences.map((d: { kind: string }) => d.kind).sort();
    expect(kinds).toEqual(['balance_differs', 'cdr_without_debit']);
  });

  it('release closes an unbilled call the operator knows was never talked; nothing else', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
    const own = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    rates.byTable[rateTableId] = [{ prefix: '1', ratePerMin: 1_200_000n }];
    const r = await svc.reserve(own.cardId, '15557654321', ctx);
    if (!r.ok) throw new Error('not reserved');
    const callId = r.reservation.callId;
    expect((await run('calls', 'release', callId)).err).toMatch(/not an unbilled call/);
    await closeOverdueCalls(db.pool, live, new Date(Date.now() + 3_600_000));
    expect(await countUnbilled(db.pool)).toBe(1);
    const ok = await run('calls', 'release', callId);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(`${callId}: released\n`);
    expect(await countUnbilled(db.pool)).toBe(0);
    expect((await run('calls', 'release', 'not-a-uuid')).err).toMatch(/"not-a-uuid" is not a call id/);
  });

  it('refuses bad dates with a one-line message', async () => {
    const bad = await run('calls', 'reconcile', '--from', 'yesterday', '--to', to());
    expect(bad.code).not.toBe(0);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/--from: invalid date/);
    const backwards = await run('calls', 'reconcile', '--from', to(), '--to', from);
    expect(backwards.err).toMatch(/--to must be after --from/);
    expect((await run('calls', 'unbilled', '--limit', 'lots')).err).toMatch(/--limit: must be a whole number/);
  });
});
