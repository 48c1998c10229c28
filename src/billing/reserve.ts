import { randomUUID } from 'node:crypto';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { Micros } from '../money/money.ts';
import type { CallContextInfo, CardView, Reservation, ReserveHint, ReserveResult } from '../flow/services.ts';
import { getCard, readSnapshot, type CardRecord } from '../store/cards.ts';
import { deleteUnheldCall, insertCall, toRateSnapshot } from '../store/calls.ts';
import type { BillingDeps, SettleDeps } from './billing-deps.ts';
import { reserveRefusal } from './lifecycle.ts';
import { rememberPricing } from './pricing-cache.ts';
import { cost, maxSeconds, COST_ALGORITHM } from './rating.ts';

/** How many times a hold is tried when other calls on the card keep changing what is left (and at recovery). */
export const RESERVE_TRIES = 5;

/** Loads the card's spendable from PostgreSQL into the live store (versioned: never overwrites newer). */
export async function loadLive(deps: SettleDeps, cardId: string): Promise<void> {
  const snap = await readSnapshot(deps.pool, cardId);
  if (snap) await deps.live.load(cardId, { spendable: snap.spendable, version: snap.version });
}

type PricedCard = Pick<CardRecord, 'id' | 'rateTableId' | 'taxPpm' | 'maxConcurrentCalls'> & { status?: CardRecord['status'] };

function rateFor(deps: BillingDeps, card: PricedCard, number: string, now: Date) {
  return deps.rates.ruleFor(card.rateTableId, number, card.taxPpm, now);
}

/** The card as authorized (no read) when the flow passes it with its pricing, else read now. */
async function pricedCard(deps: BillingDeps, cardId: string, view: CardView | undefined): Promise<PricedCard | undefined> {
  if (view?.pricing && view.id === cardId) return { id: cardId, ...view.pricing };
  return getCard(deps.pool, cardId);
}


/**
 * Holds the cost of the longest affordable call (capped at maxCallSeconds) in the live store, atomically against
 * every other call on the card, then records the open call in PostgreSQL. The new call id becomes the carrier
 * leg's origination_uuid, so every CDR of that leg names this reservation.
 */
export async function reserveCall(
  deps: BillingDeps,
  cardId: string,
  number: string,
  ctx: CallContextInfo,
  now: Date = new Date(),
  hint: ReserveHint = {},
): Promise<ReserveResult> {
  const card = await pricedCard(deps, cardId, hint.card);
  // A card read now is checked here; one passed as authorized is checked by the insert of the calls row.
  if (!card) return { ok: false, reason: 'card_unknown' };
  const refused = card.status === undefined ? undefined : reserveRefusal({ status: card.status });
  if (refused) return { ok: false, reason: refused };
  // The insert refused the calls row: the card stopped being active since it was authorized. Read why.
  const inactive = async () => ({ ok: false, reason: reserveRefusal(await getCard(deps.pool, card.id)) ?? 'retry' }) as const;
  const found = rateFor(deps, card, number, now);
  if (!found) return { ok: false, reason: 'no_rate' };
  const { rule } = found;
  const cfg = deps.config;
  const callId = randomUUID();
  // The hinted amount (what the card could spend when authorized) is the first guess; the reservation itself is
  // atomic and says when less is left.
  let known: Micros | undefined = hint.available;
  for (let i = 0; i < RESERVE_TRIES; i++) {
    let available = known;
    const guessed = i === 0 && available !== undefined;
    known = undefined;
    if (available === undefined) {
      const p = await deps.live.peek(card.id);
      if (p === 'needs_load') {
        await loadLive(deps, card.id);
        continue;
      }
      // Said first: a card busy with its allowed calls is not "out of money".
      if (p.active >= card.maxConcurrentCalls) return { ok: false, reason: 'too_many_calls' };
      available = p.available;
    }
    // What the card's available balance buys for this call now (announced); the hold is one slice of it.
    const affordable = maxSeconds(rule, available, cfg.maxCallSeconds);
    const slice = cfg.sliceSeconds ? Math.max(cfg.sliceSeconds, cfg.minCallSeconds) : 0;
    const secs = slice ? Math.min(affordable, slice) : affordable;
    if (secs < cfg.minCallSeconds) {
      // A hinted amount is only a guess: the live store says what is left, and first whether the card is busy.
      if (guessed) continue;
      return { ok: false, reason: 'insufficient' };
    }
    const amount = cost(rule, secs);
    const ttlMs = (secs + cfg.originateTimeoutSec + cfg.holdMarginSec) * 1000;
    const snapshot = toRateSnapshot(found.rate, rule);
    // The calls row is written while the hold is taken (the two round trips overlap): no row, no call, and a row
    // whose hold was refused is deleted again (it never held anything; the Lua script alone decides what is spent).
    // The insert also checks that the card is still active (it may have been disabled or expired since it was
    // authorized).
    const recording = insertCall(deps.pool, {
      callId,
      cardId: card.id,
      ivrUuid: ctx.ivrUuid,
      did: ctx.did || null,
      callerId: ctx.callerId || null,
      destination: number,
      rate: snapshot,
      costAlgorithm: COST_ALGORITHM,
      maxSeconds: secs,
      reserved: amount,
      holdUntil: new Date(now.getTime() + ttlMs),
    });
    recording.catch(() => undefined); // awaited below, whatever the hold's outcome
    let r: Awaited<ReturnType<LiveBalanceStore['reserve']>>;
    try {
      r = await deps.live.reserve(card.id, callId, amount, ttlMs, card.maxConcurrentCalls);
    } catch (err) {
      await recording.then((recorded) => recorded && deleteUnheldCall(deps.pool, callId)).catch(() => undefined);
      throw err;
    }
    let recorded = false;
    try {
      recorded = await recording;
    } finally {
      // If giving a hold back (or deleting a row) fails too, the hold expires and the row is swept at hold_until.
      if (r.ok && !recorded) await deps.live.settle(card.id, callId).catch(() => {});
      if (!r.ok && recorded) await deleteUnheldCall(deps.pool, callId).catch(() => {});
    }
    if (r.ok) {
      if (!recorded) return inactive();
      rememberPricing(callId, { rate: snapshot, maxSeconds: secs, costAlgorithm: COST_ALGORITHM });
      const reservation: Reservation = { callId, cardId: card.id, maxSeconds: secs, reserved: amount };
      // Announced: what the card's available balance (as the atomic hold saw it, not the hint) buys for this call.
      if (slice) {
        const announceSeconds = maxSeconds(rule, r.available + amount, cfg.maxCallSeconds);
        Object.assign(reservation, { announceSeconds, sliceSeconds: slice, ceilingSeconds: cfg.maxCallSeconds });
      }
      return { ok: true, reservation };
    }
    if (!recorded) return inactive();
    if (r.reason === 'too_many_calls') return { ok: false, reason: 'too_many_calls' };
    if (r.reason === 'needs_load') await loadLive(deps, card.id);
    else known = r.available; // insufficient: others took some meanwhile; size the call to what is left.
  }
  return { ok: false, reason: 'retry' };
}
