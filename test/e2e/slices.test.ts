/**
 * Reservations in slices (issue 15 §2), end to end against real PostgreSQL and Redis with the simulator in real
 * time: 20 simultaneous calls on one 5.00 card at 0.60/min all bridge, their caps grow while money remains, and the
 * card ends spent to within one billing block, never below zero, with no hold left.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseMoney } from '../../src/money/money.ts';
import { carrier, type CallScript } from '../../src/sim/index.ts';
import { startHarness, type Harness } from './harness.ts';

const SLICE = 6;
const BLOCK = parseMoney('0.06'); // 6 s at 0.60/min

const fast = (keys: string) => ({ keys, afterMs: 50, gapMs: 20 });

async function slicedHarness(): Promise<Harness> {
  const h = await startHarness({
    env: { CCARD_SLICE_SECONDS: String(SLICE), CCARD_MIN_CALL_SECONDS: '5', CCARD_WARNING_SECONDS: '2' },
    sim: { timeScale: 1, idleTimeoutMs: 120_000 },
    service: { flow: { menuTimeoutMs: 500, bridgeHangupGraceMs: 3000, warningSecondsBeforeEnd: 2, warningMinLeadSec: 1 } },
  });
  // 0.60/min in 6 s blocks (the demo table: 2 decimals, rounding up).
  await h.service.pool.query(
    `INSERT INTO rates (rate_table_id, prefix, destination, rate_per_min_micros, connect_fee_micros, initial_increment, subsequent_increment)
     VALUES ($1, '1555777', 'slices test', $2, 0, 6, 6)`,
    [h.data.rateTableId, parseMoney('0.60').toString()],
  );
  await h.service.rates.reload();
  await h.service.pool.query('UPDATE cards SET max_concurrent_calls = 50 WHERE id = $1', [h.data.cards.rich.id]);
  return h;
}

describe('reservations in slices', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('20 simultaneous calls on one 5.00 card at 0.60/min all bridge and share it to within one block', async () => {
    h = await slicedHarness();
    const card = h.data.cards.rich;
    expect(await h.balance(card.id)).toBe(parseMoney('5.00'));
    const script = (i: number): CallScript => ({
      did: h!.data.did,
      callerId: `1555200${String(1000 + i)}`,
      digits: [fast(`${card.pin}#`), fast(`1555777${String(1000 + i)}#`), ''],
      // The far end never hangs up: only the caps end these calls.
      carrier: () => carrier.answer(100, 3_600_000),
    });
    // Never more held than the card has, sampled while the calls run.
    let maxHeld = 0n;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const held = (await h!.service.live.reservations(card.id)).reduce((s, r) => s + r.amount, 0n);
        if (held > maxHeld) maxHeld = held;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => h!.sim.call(script(i))));
    sampling = false;
    await sampler;
    const outcomes = await h.waitOutcomes(20, 30_000);

    // Every call bridged and was told what the card's available balance bought it then (5.00 -> 8 min, ... at least
    // 5.00 - 19 first slices = 3.86 -> 6 min).
    expect(results.every((r) => r.bLegs.length === 1 && r.bLegs[0]!.answered)).toBe(true);
    for (const o of outcomes) {
      expect(o.played).toContain('call_can_last');
      const minutes = Number(o.played.find((p) => p.startsWith('say:NUMBER:'))!.slice('say:NUMBER:'.length));
      expect(minutes).toBeGreaterThanOrEqual(6);
      expect(minutes).toBeLessThanOrEqual(8);
    }
    // Caps grew past the first slice while money remained; every call ended at its cap.
    for (const r of results) {
      expect(r.bLegs[0]!.hangupCause).toBe('ALLOTTED_TIMEOUT');
      expect(r.bLegs[0]!.billsec).toBeGreaterThan(SLICE);
      // Each re-arm replaced the warning with the cap; only the last one played, before the cap it warned of.
      const warnings = r.apps.filter((a) => a.broadcast);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.arg).toMatch(/low_balance_warning\.wav$/);
      expect(warnings[0]!.startUs).toBeLessThan(r.bLegs[0]!.endUs);
    }
    expect(maxHeld).toBeLessThanOrEqual(parseMoney('5.00'));

    const final = await h.balance(card.id);
    expect(final).toBeGreaterThanOrEqual(0n);
    expect(final).toBeLessThan(BLOCK);
    const cdrs = await h.service.pool.query<{ n: string; sum: string }>(
      'SELECT count(*) AS n, coalesce(sum(cost_micros), 0) AS sum FROM cdrs WHERE card_id = $1',
      [card.id],
    );
    expect(Number(cdrs.rows[0]!.n)).toBe(20);
    expect(BigInt(cdrs.rows[0]!.sum)).toBe(parseMoney('5.00') - final);
    // The calls rows recorded the grown caps, and nothing is held any more.
    const rows = await h.service.pool.query<{ max_seconds: number; billed: number }>(
      `SELECT c.max_seconds, d.billed_seconds AS billed FROM calls c JOIN cdrs d USING (call_id) WHERE c.card_id = $1`,
      [card.id],
    );
    for (const row of rows.rows) expect(row.billed).toBeLessThanOrEqual(row.max_seconds);
    expect(rows.rows.some((r) => r.max_seconds > SLICE)).toBe(true);
    expect(await h.service.live.reservations(card.id)).toEqual([]);
  }, 120_000);
});
