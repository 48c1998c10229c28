/**
 * Reservations in slices against real PostgreSQL and each live store: a call holds one slice, extendReservation
 * grows it atomically (fully, partly, or not at all), records the new cap and deadline, and the debit bills up to
 * the grown cap (never past it). A settled call cannot be extended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extendReservation } from '../../src/billing/slices.ts';
import { createCallServices } from '../../src/app/call-services.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, createCard, createSeries, memoryRates, pinKeys, silentLog } from './fixtures.ts';
import { storeKinds } from './stores.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const ctx = { ivrUuid: '2b314978-1142-482a-9df4-4905a48f5811', did: '18005550100', callerId: '15551230000' };
const config = { ...BASE_CONFIG, sliceSeconds: 15 };

describe.each(storeKinds)('reservations in slices ($name live store)', (kind) => {
  it('holds a slice, announces what the card buys, grows fully / partly / not at all, bills up to the grown cap', async () => {
    const { store: live } = kind.make();
    try {
      const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
      const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n });
      // 1.20/min per second: 0.02/s; 1.00 buys 50 s.
      const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
      const svc = createCallServices({ pool: db.pool, live, rates, pinKeys, config, logger: silentLog });
      const deps = { pool: db.pool, live, rates, config, logger: silentLog };

      const a = await svc.reserve(cardId, '15557654321', ctx);
      const b = await svc.reserve(cardId, '15557654322', ctx);
      if (!a.ok || !b.ok) throw new Error('not reserved');
      expect(a.reservation).toMatchObject({ maxSeconds: 15, reserved: 300_000n, announceSeconds: 50, sliceSeconds: 15, ceilingSeconds: 60 });
      // Announced from what was available when it was held: 1.00 - the first slice = 0.70 -> 35 s.
      expect(b.reservation).toMatchObject({ maxSeconds: 15, reserved: 300_000n, announceSeconds: 35 });

      expect(await extendReservation(deps, a.reservation, 30, 10)).toEqual({ ok: true, maxSeconds: 30 });
      // Only 0.40 is left for b: 20 s in all, not the 30 it asked for.
      expect(await extendReservation(deps, b.reservation, 30, 10)).toEqual({ ok: true, maxSeconds: 20 });
      // Nothing left: a may not hold more than the 0.60 it has.
      expect(await extendReservation(deps, a.reservation, 45, 25)).toEqual({ ok: false, reason: 'insufficient' });
      const holds = await live.reservations(cardId);
      expect(holds.reduce((s, h) => s + h.amount, 0n)).toBe(1_000_000n);

      const rows = await db.pool.query<{ call_id: string; max_seconds: number; reserved_micros: bigint; hold_until: Date }>(
        'SELECT call_id, max_seconds, reserved_micros, hold_until FROM calls WHERE card_id = $1 ORDER BY max_seconds DESC',
        [cardId],
      );
      expect(rows.rows.map((r) => [r.max_seconds, r.reserved_micros])).toEqual([
        [30, 600000n],
        [20, 400000n],
      ]);
      // The deadline covers the rest of the new cap plus the margin.
      expect(rows.rows[0]!.hold_until.getTime()).toBeGreaterThan(Date.now() + (30 - 10 + BASE_CONFIG.holdMarginSec - 2) * 1000);

      // a talked 28 s: billed 28 s (the grown cap), not clamped at the first slice.
      const sa = await svc.settle(a.reservation, answeredBridge(a.reservation.callId, 28));
      expect(sa).toMatchObject({ billedSeconds: 28, cost: 560_000n });
      expect(await extendReservation(deps, a.reservation, 45, 29)).toEqual({ ok: false, reason: 'gone' });
      // b's CDR says 25 s: never billed past its cap of 20.
      const sb = await svc.settle(b.reservation, answeredBridge(b.reservation.callId, 25));
      expect(sb).toMatchObject({ billedSeconds: 20, cost: 400_000n, balance: 40_000n });
      expect(await live.reservations(cardId)).toEqual([]);
    } finally {
      await live.close();
    }
  });

  it('a process that did not reserve the call (no cached pricing) reads the calls row; a gone call stays gone', async () => {
    const { store: live } = kind.make();
    try {
      const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
      const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n });
      const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
      const svc = createCallServices({ pool: db.pool, live, rates, pinKeys, config, logger: silentLog });
      const deps = { pool: db.pool, live, rates, config, logger: silentLog };
      const a = await svc.reserve(cardId, '15557654321', ctx);
      if (!a.ok) throw new Error('not reserved');
      // An unknown call is gone.
      expect(await extendReservation(deps, { ...a.reservation, callId: '00000000-0000-4000-8000-000000000000' }, 30, 1)).toEqual({ ok: false, reason: 'gone' });
      expect(await extendReservation(deps, a.reservation, 30, 1)).toEqual({ ok: true, maxSeconds: 30 });
      await svc.settle(a.reservation, answeredBridge(a.reservation.callId, 3));
      expect(await extendReservation(deps, a.reservation, 45, 5)).toEqual({ ok: false, reason: 'gone' });
    } finally {
      await live.close();
    }
  });
});
