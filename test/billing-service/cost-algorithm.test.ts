import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices } from '../../src/app/call-services.ts';
import { COST_ALGORITHM, cost, costUnder } from '../../src/billing/rating.ts';
import { debitCall } from '../../src/billing/debit.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { insertCall, toRateSnapshot } from '../../src/store/calls.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog } from './fixtures.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const ctx = { ivrUuid: '2b314978-1142-482a-9df4-4905a48f5811', did: '18005550100', callerId: '15551230000' };
const callRow = async (callId: string) =>
  (await db.pool.query<{ cost_algorithm: string; status: string }>(`SELECT cost_algorithm, status FROM calls WHERE call_id = $1`, [callId])).rows[0]!;

describe('a call is debited by the rule it was reserved under', () => {
  it('the reservation stores its cost algorithm; a table whose rounding changes during the call does not change the debit', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool);
    const { cardId } = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    // 0.0133/min at 2 decimals: 25 s cost 0.00554..., 0.01 rounded up, 0.00 rounded down.
    const table = { decimals: 2, rounding: 'up' as 'up' | 'down' };
    const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 13_300n }] }, table);
    const svc = createCallServices({ pool: db.pool, live: new MemoryLiveBalance(), rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const r = await svc.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    expect(await callRow(r.reservation.callId)).toEqual({ cost_algorithm: COST_ALGORITHM, status: 'reserved' });
    table.rounding = 'down'; // the operator edits the table while the call is up
    const s = await svc.settle(r.reservation, answeredBridge(r.reservation.callId, 25));
    expect(s.cost).toBe(10_000n);
    expect((await moneyFacts(db.pool, cardId)).balance).toBe(9_990_000n);
  });

  it('a call reserved under an algorithm this code does not know is not debited by a guess', async () => {
    const { seriesId } = await createSeries(db.pool);
    const { cardId } = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    const rule = { ratePerMin: 600_000n, connectFee: 0n, initialIncrement: 1, subsequentIncrement: 1, decimals: 2, rounding: 'up' as const, minBillableSeconds: 0, taxPpm: 0 };
    const callId = randomUUID();
    await insertCall(db.pool, {
      callId, cardId, ivrUuid: null, did: null, callerId: null, destination: '15557654321',
      rate: toRateSnapshot({ id: '1', prefix: '1', destination: 'USA' }, rule), costAlgorithm: 'per-block-v9',
      maxSeconds: 600, reserved: 6_000_000n, holdUntil: new Date(Date.now() + 3_600_000),
    });
    const deps = { pool: db.pool, live: new MemoryLiveBalance() };
    await expect(debitCall(deps, { callId, answered: true, billsec: 30, source: 'json_cdr' })).rejects.toThrow(/unknown cost algorithm "per-block-v9"/);
    expect(await callRow(callId)).toEqual({ cost_algorithm: 'per-block-v9', status: 'reserved' });
    const f = await moneyFacts(db.pool, cardId);
    expect([f.balance, f.callDebits]).toEqual([10_000_000n, 0n]);
  });

  it('costUnder knows each stored name and nothing else', () => {
    const rule = { ratePerMin: 1_000_000n, connectFee: 0n, initialIncrement: 60, subsequentIncrement: 60, decimals: 2, rounding: 'up' as const, minBillableSeconds: 0, taxPpm: 0 };
    expect(costUnder('round-once-v1', rule, 61)).toBe(cost(rule, 61));
    expect(costUnder(COST_ALGORITHM, rule, 61)).toBe(2_000_000n);
    for (const name of ['toString', 'constructor', '', 'ROUND-ONCE-V1']) expect(() => costUnder(name, rule, 61)).toThrow(/unknown cost algorithm/);
  });
});
