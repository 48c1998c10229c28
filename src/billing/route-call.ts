import { randomUUID } from 'node:crypto';
import type { CallContextInfo, Reservation, ReserveHint, ReserveResult, SettleResult } from '../flow/services.ts';
import type { PromptName } from '../flow/prompts.ts';
import { PROMPT_NAMES } from '../flow/prompts.ts';
import type { BridgeResult } from '../flow/call.ts';
import { classifyBridge } from '../flow/bridge-outcome.ts';
import { getCard } from '../store/cards.ts';
import type { RateIndex } from '../store/rates.ts';
import type { CarrierSlots } from '../live/carrier-slots.ts';
import type { CarrierHealth } from './carrier-health.ts';
import type { RouteCandidate } from './routing.ts';
import type { BillingDeps } from './billing-deps.ts';
import { reserveCall } from './reserve.ts';
import { settleReservation } from './settle.ts';

export interface RoutingDeps extends BillingDeps {
  /** The current rate index (sell rates, buy rates, plans and carriers: one snapshot). */
  index: () => RateIndex;
  slots: CarrierSlots;
  health: CarrierHealth;
  random?: () => number;
}

/** Carrier slot tokens of this process's reservations, by call id: released with the settle. */
const slotOf = new Map<string, { carrierId: string; token: string }>();

const asPrompt = (p: string): PromptName => ((PROMPT_NAMES as string[]).includes(p) ? (p as PromptName) : 'destination_unprofitable');

function buyRateJson(c: RouteCandidate): Record<string, string | number> {
  return {
    prefix: c.buy.prefix,
    ratePerMin: c.buy.ratePerMin.toString(),
    connectFee: c.buy.connectFee.toString(),
    initialIncrement: c.buy.initialIncrement,
    subsequentIncrement: c.buy.subsequentIncrement,
  };
}

/**
 * Reserves a call through the card's routing plan: rates it (sell), asks the plan for its carriers in order (buy
 * rates from the same index, never at a loss, tried and cooling carriers left out), takes a slot on the first
 * carrier that has one free, then reserves the funds exactly as an unrouted call does (reserveCall) and records the
 * carrier and its buy rate with the call (call_routes: the CDR's buy cost is computed from it at debit). No plan,
 * or no entry for the number: reserveCall alone (the access number's gateway).
 */
export async function reserveRouted(
  deps: RoutingDeps,
  cardId: string,
  number: string,
  ctx: CallContextInfo,
  now: Date = new Date(),
  hint: ReserveHint = {},
): Promise<ReserveResult> {
  const pricing = hint.card?.pricing && hint.card.id === cardId ? hint.card.pricing : await getCard(deps.pool, cardId);
  const planId = pricing?.routingPlanId;
  if (!pricing || !planId) return reserveCall(deps, cardId, number, ctx, now, hint);
  const index = deps.index();
  const tried = new Set(hint.triedCarriers ?? []);
  // Sell rate and plan decision in one: the pair's joined index (one trie walk) once built, else one walk per table.
  const routed = index.route(String(pricing.rateTableId), String(planId), number, pricing.taxPpm, now, {
    skip: (id) => tried.has(id) || deps.health.cooling(id),
    ...(deps.random && { random: deps.random }),
  });
  if (!routed) return { ok: false, reason: 'no_rate' };
  const { decision } = routed;
  switch (decision.kind) {
    case 'default':
      return reserveCall(deps, cardId, number, ctx, now, hint);
    case 'blocked':
      return { ok: false, reason: 'no_rate' };
    case 'loss':
      return { ok: false, reason: 'loss', prompt: asPrompt(decision.prompt) };
    case 'unavailable':
      return { ok: false, reason: 'no_carrier' };
  }
  const { candidates } = decision;
  // Taken before the funds (a full carrier costs no reservation) for as long as the longest hold could live, then
  // renewed to the call's own hold deadline: a slot whose settle never comes (a crash) frees itself with the hold.
  const slotTtlMs = (deps.config.maxCallSeconds + deps.config.originateTimeoutSec + deps.config.holdMarginSec) * 1000;
  for (let k = 0; k < candidates.length; k++) {
    const cand = candidates[k]!;
    const token = randomUUID();
    if (cand.carrier.maxCalls !== null && !(await deps.slots.acquire(cand.carrier.id, token, cand.carrier.maxCalls, slotTtlMs))) continue;
    const release = () => (cand.carrier.maxCalls !== null ? deps.slots.release(cand.carrier.id, token) : Promise.resolve());
    let r: ReserveResult;
    try {
      r = await reserveCall(deps, cardId, number, ctx, now, hint);
    } catch (err) {
      await release().catch(() => {});
      throw err;
    }
    if (!r.ok) {
      await release().catch(() => {});
      return r;
    }
    const res = r.reservation;
    const holdMs = (res.maxSeconds + deps.config.originateTimeoutSec + deps.config.holdMarginSec) * 1000;
    try {
      await Promise.all([
        deps.pool.query('INSERT INTO call_routes (call_id, carrier_id, buy_rate) VALUES ($1, $2, $3)', [
          res.callId,
          cand.carrier.id,
          JSON.stringify(buyRateJson(cand)),
        ]),
        cand.carrier.maxCalls !== null ? deps.slots.renew(cand.carrier.id, token, holdMs) : undefined,
      ]);
    } catch (err) {
      // Not bridged: give the hold and the slot back, then fail (the flow fails closed or reports the error).
      await settleReservation(deps, res, { disposition: 'NOT_BRIDGED', hangupCause: undefined, answered: false, carrierCdr: undefined, callerHungUp: false }).catch(() => {});
      await release().catch(() => {});
      throw err;
    }
    if (cand.carrier.maxCalls !== null) slotOf.set(res.callId, { carrierId: cand.carrier.id, token });
    const reservation: Reservation = {
      ...res,
      route: {
        carrierId: cand.carrier.id,
        carrier: cand.carrier.name,
        gateway: cand.carrier.gateway,
        dialNumber: cand.dialNumber,
        more: k < candidates.length - 1,
      },
    };
    return { ok: true, reservation };
  }
  return { ok: false, reason: 'no_carrier' };
}

/** Settles (settleReservation), then frees the carrier's slot and tells its health what the attempt showed. */
export async function settleRouted(deps: RoutingDeps, reservation: Reservation, bridge: BridgeResult | undefined): Promise<SettleResult> {
  try {
    return await settleReservation(deps, reservation, bridge);
  } finally {
    const route = reservation.route;
    if (route) {
      const slot = slotOf.get(reservation.callId);
      slotOf.delete(reservation.callId);
      if (slot) await deps.slots.release(slot.carrierId, slot.token).catch(() => {});
      if (bridge && bridge.disposition !== 'NOT_BRIDGED') {
        const outcome = classifyBridge(bridge);
        if (outcome === 'congestion') deps.health.failure(route.carrierId, route.carrier);
        else if (outcome === 'answered') deps.health.success(route.carrierId);
      }
    }
  }
}
