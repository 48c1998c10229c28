import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices } from '../../src/app/call-services.ts';
import type { Reservation } from '../../src/flow/services.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog, unansweredBridge } from './fixtures.ts';
import { storeKinds } from './stores.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(storeKinds)('simultaneous calls on one card ($name live store)', (kind) => {
  async function run(opts: { callers: number; attemptsEach: number; balance: bigint; maxConcurrent: number }) {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: opts.maxConcurrent, taxPpm: 150_000 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: opts.balance });
    // 0.60/min + 0.05 connect, 6/6 s blocks, 15% tax, rounded up to the cent.
    const rates = memoryRates(
      { [rateTableId]: [{ prefix: '1', ratePerMin: 600_000n, connectFee: 50_000n, initialIncrement: 6, subsequentIncrement: 6 }] },
      { decimals: 2, rounding: 'up' },
    );
    const { store } = kind.make();
    const svc = createCallServices({ pool: db.pool, live: store, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const outcomes = { reserved: 0, insufficient: 0, tooMany: 0, answered: 0, released: 0 };
    const reservations: Reservation[] = [];
    let minSeen = opts.balance;

    const caller = async () => {
      for (let a = 0; a < opts.attemptsEach; a++) {
        await sleep(Math.random() * 20);
        const r = await svc.reserve(cardId, '15557654321', { ivrUuid: crypto.randomUUID(), did: '18005550100', callerId: '15551230000' });
        if (!r.ok) {
          if (r.reason === 'too_many_calls') outcomes.tooMany++;
          else outcomes.insufficient++;
          continue;
        }
        outcomes.reserved++;
        reservations.push(r.reservation);
        expect(r.reservation.maxSeconds).toBeGreaterThanOrEqual(BASE_CONFIG.minCallSeconds);
        await sleep(Math.random() * 30);
        const bridge =
          Math.random() < 0.15 ? unansweredBridge() : answeredBridge(r.reservation.callId, Math.floor(Math.random() * (r.reservation.maxSeconds + 1)));
        if (bridge.answered) outcomes.answered++;
        else outcomes.released++;
        const s = await svc.settle(r.reservation, bridge);
        expect(s.cost).toBeLessThanOrEqual(r.reservation.reserved);
        if (s.balance < minSeen) minSeen = s.balance;
      }
    };
    await Promise.all(Array.from({ length: opts.callers }, caller));

    const f = await moneyFacts(db.pool, cardId);
    expect(minSeen).toBeGreaterThanOrEqual(0n);
    expect(f.balance).toBeGreaterThanOrEqual(0n);
    expect(f.uncollected).toBe(0n);
    expect(f.balance).toBe(opts.balance - f.cdrCost);
    expect(f.ledgerSum).toBe(f.balance);
    expect(-f.callDebits).toBe(f.cdrCost);
    expect(f.openCalls).toBe(0);
    expect(f.cdrs).toBe(outcomes.answered);
    expect(await store.reservations(cardId)).toEqual([]);
    const statuses = await db.pool.query<{ status: string; n: string }>(
      'SELECT status, count(*)::text AS n FROM calls WHERE card_id = $1 GROUP BY status ORDER BY status',
      [cardId],
    );
    expect(Object.fromEntries(statuses.rows.map((r) => [r.status, Number(r.n)]))).toEqual({
      ...(outcomes.released ? { released: outcomes.released } : {}),
      ...(outcomes.answered ? { settled: outcomes.answered } : {}),
    });
    // The live store agrees with PostgreSQL once every call is over.
    const peek = await store.peek(cardId);
    if (peek !== 'needs_load') expect(peek).toEqual({ available: f.balance, active: 0 });
    await store.close();
    return { outcomes, facts: f };
  }

  it('50 callers x 3 calls on a 5.00 card (max 50 concurrent): never below zero, every cent accounted', async () => {
    const { outcomes, facts } = await run({ callers: 50, attemptsEach: 3, balance: 5_000_000n, maxConcurrent: 50 });
    expect(outcomes.reserved).toBeGreaterThan(5);
    expect(outcomes.insufficient).toBeGreaterThan(0);
    expect(facts.cdrCost).toBeGreaterThan(0n);
  });

  it('20 simultaneous calls with a concurrency limit of 5', async () => {
    const { outcomes } = await run({ callers: 20, attemptsEach: 2, balance: 20_000_000n, maxConcurrent: 5 });
    expect(outcomes.reserved).toBeGreaterThan(0);
    expect(outcomes.reserved + outcomes.insufficient + outcomes.tooMany).toBe(40);
  });
});
