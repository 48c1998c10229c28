/**
 * Reservations in slices (issue 15 §2): a call holds what one slice costs and, while it runs, grows that hold.
 * The live store's extend script decides atomically against every other call of the card (src/live), so the holds
 * of a card's calls never sum to more than the card has; the calls row then records the new cap (the debit never
 * bills past calls.max_seconds) and the new deadline (recovery and the expiry sweep read them).
 */
import type { ExtendResult, Reservation } from '../flow/services.ts';
import { getCall, ruleFromSnapshot } from '../store/calls.ts';
import { costUnder, maxSeconds } from './rating.ts';
import type { BillingDeps } from './billing-deps.ts';
import { cachedPricing, rememberPricing } from './pricing-cache.ts';
import { loadLive } from './reserve.ts';

const TRIES = 5;

/**
 * Grows `reservation`'s hold so that the call may last `wantSeconds` in all (capped at the longest call), or as
 * much of that as the card can fund. `talkedSeconds`: how long the call has run (the hold must outlive the new cap).
 */
export async function extendReservation(
  deps: BillingDeps,
  reservation: Reservation,
  wantSeconds: number,
  talkedSeconds: number,
  now: Date = new Date(),
): Promise<ExtendResult> {
  const { callId, cardId } = reservation;
  let pricing = cachedPricing(callId);
  if (!pricing) {
    const row = await getCall(deps.pool, callId);
    if (!row || row.status !== 'reserved') return { ok: false, reason: 'gone' };
    pricing = { rate: row.rate, maxSeconds: row.maxSeconds, costAlgorithm: row.costAlgorithm };
  }
  const current = pricing.maxSeconds;
  const rule = ruleFromSnapshot(pricing.rate);
  let target = Math.min(Math.floor(wantSeconds), deps.config.maxCallSeconds);
  if (target <= current) return { ok: false, reason: 'insufficient' };
  for (let i = 0; i < TRIES; i++) {
    // Priced by the algorithm the call was reserved under, like its debit.
    const amount = costUnder(pricing.costAlgorithm, rule, target);
    const ttlSec = Math.max(1, target - Math.floor(talkedSeconds)) + deps.config.holdMarginSec;
    const r = await deps.live.extend(cardId, callId, amount, ttlSec * 1000);
    if (r.ok) {
      const holdUntil = new Date(now.getTime() + ttlSec * 1000);
      // Monotonic: a late writer never lowers a cap another extension already recorded.
      const res = await deps.pool.query(
        `UPDATE calls SET max_seconds = $2, reserved_micros = $3, hold_until = GREATEST(hold_until, $4)
          WHERE call_id = $1 AND status = 'reserved' AND max_seconds <= $2`,
        [callId, target, amount.toString(), holdUntil],
      );
      // Settled meanwhile (its CDR arrived): nothing to re-arm; the settle already dropped the hold.
      if (res.rowCount !== 1) return { ok: false, reason: 'gone' };
      rememberPricing(callId, { rate: pricing.rate, maxSeconds: target, costAlgorithm: pricing.costAlgorithm });
      return { ok: true, maxSeconds: target };
    }
    if (r.reason === 'gone') return { ok: false, reason: 'gone' };
    if (r.reason === 'needs_load') {
      await loadLive(deps, cardId);
      continue;
    }
    // What the card can fund for this call in all: the longest call that costs no more, if it is any longer.
    const fundable = maxSeconds(rule, r.available, target);
    if (fundable <= current) return { ok: false, reason: 'insufficient' };
    target = fundable;
  }
  return { ok: false, reason: 'insufficient' };
}
