import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countUnbilled, listUnbilled } from '../../src/store/reconcile.ts';
import { createCallServices } from '../../src/app/call-services.ts';
import { recoverOpenCalls } from '../../src/billing/recovery.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, carrierLegCdr, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog } from './fixtures.ts';
import { storeKinds } from './stores.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const ctx = { ivrUuid: crypto.randomUUID(), did: '18005550100', callerId: '15551230000' };

describe.each(storeKinds)('crash and restart of ccard ($name live store)', (kind) => {
  async function card(balance: bigint) {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 10 });
    const { cardId } = await createCard(db.pool, { seriesId, balance });
    // 1.20/min per second: a 60 s capped call holds 1.20.
    const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
    return { cardId, rates };
  }

  it('re-asserts the holds of calls in progress; the late CDR is debited once and never below zero', async () => {
    const { cardId, rates } = await card(2_000_000n);
    const first = kind.make().store;
    const before = createCallServices({ pool: db.pool, live: first, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const r = await before.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    expect(r.reservation.reserved).toBe(1_200_000n);
    // Crash: the service object is dropped without settling (its process, and an in-process store, are gone).
    const restarted = kind.restart(first);
    await first.close();
    const after = createCallServices({ pool: db.pool, live: restarted, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    expect(await after.recoverOpenCalls()).toEqual({ reasserted: 1, overdue: 0, partial: 0 });
    expect((await restarted.reservations(cardId)).map((h) => [h.callId, h.amount])).toEqual([[r.reservation.callId, 1_200_000n]]);

    // Other calls meanwhile only get what the recovered hold leaves: 0.80 -> 40 s.
    const other = await after.reserve(cardId, '15557654321', ctx);
    if (!other.ok) throw new Error(other.reason);
    expect(other.reservation.maxSeconds).toBe(40);
    await after.settle(other.reservation, answeredBridge(other.reservation.callId, 40));
    expect(await after.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'insufficient' });

    // The crashed call's b-leg CDR arrives by mod_json_cdr (talked to its cap), then again.
    expect(await after.ingestJsonCdr(carrierLegCdr(r.reservation.callId, 60))).toMatchObject({ status: 'debited', cost: 1_200_000n, uncollected: 0n });
    expect(await after.ingestJsonCdr(carrierLegCdr(r.reservation.callId, 60))).toMatchObject({ status: 'duplicate' });
    const f = await moneyFacts(db.pool, cardId);
    expect(f).toMatchObject({ balance: 0n, ledgerSum: 0n, uncollected: 0n, openCalls: 0, cdrs: 2 });
    expect(await restarted.reservations(cardId)).toEqual([]);
    await restarted.close();
  });

  it('expires holds past their deadline; a CDR after that is clamped at zero, the rest recorded as uncollected', async () => {
    const { cardId, rates } = await card(1_500_000n);
    const first = kind.make().store;
    const before = createCallServices({ pool: db.pool, live: first, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const r = await before.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    const restarted = kind.restart(first);
    await first.close();
    // ccard comes back long after the call's deadline.
    const later = new Date(Date.now() + 3_600_000);
    expect(await recoverOpenCalls(db.pool, restarted, later)).toEqual({ reasserted: 0, overdue: 1, partial: 0 });
    expect(await restarted.reservations(cardId)).toEqual([]);
    const status = await db.pool.query<{ status: string }>('SELECT status FROM calls WHERE call_id = $1', [r.reservation.callId]);
    // Not silently released: the call may have been talked while nobody could bill it.
    expect(status.rows[0]!.status).toBe('unbilled');
    expect(await countUnbilled(db.pool)).toBeGreaterThanOrEqual(1);
    expect((await listUnbilled(db.pool)).map((u) => u.callId)).toContain(r.reservation.callId);

    // The funds are free again: another call takes 0.60 of them...
    const after = createCallServices({ pool: db.pool, live: restarted, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const other = await after.reserve(cardId, '15557654321', ctx);
    if (!other.ok) throw new Error(other.reason);
    await after.settle(other.reservation, answeredBridge(other.reservation.callId, 30));
    // ...then the old call's CDR arrives: 1.20 owed, 0.90 left.
    expect(await after.ingestJsonCdr(carrierLegCdr(r.reservation.callId, 60))).toMatchObject({
      status: 'debited',
      cost: 1_200_000n,
      uncollected: 300_000n,
    });
    const f = await moneyFacts(db.pool, cardId);
    expect(f).toMatchObject({ balance: 0n, ledgerSum: 0n, uncollected: 300_000n, openCalls: 0 });
    expect(f.balance).toBe(1_500_000n - f.cdrCost + f.uncollected);
    // Billed when its CDR came: no longer unbilled.
    const settled = await db.pool.query<{ status: string }>('SELECT status FROM calls WHERE call_id = $1', [r.reservation.callId]);
    expect(settled.rows[0]!.status).toBe('settled');
    expect((await listUnbilled(db.pool)).map((u) => u.callId)).not.toContain(r.reservation.callId);
    await restarted.close();
  });
});
