import type { Pool } from 'pg';
import type { Micros } from '../money/money.ts';
import { DebitBatcher, getCall, ruleFromSnapshot, type CdrSource } from '../store/calls.ts';
import { readSnapshot } from '../store/cards.ts';
import { silentLog, type SettleDeps } from './billing-deps.ts';
import { finishedCall, finishing, rememberFinished } from './finished-calls.ts';
import { pushSettle } from './live-settle.ts';
import { cachedPricing, forgetPricing, type CallPricing } from './pricing-cache.ts';
import { billedSecondsFor, costUnder } from './rating.ts';

/** The facts a CDR gives about one carrier leg, whatever its source. */
export interface CallFacts {
  callId: string;
  answered: boolean;
  billsec: number;
  billmsec?: number | undefined;
  answeredAt?: Date | undefined;
  endedAt?: Date | undefined;
  hangupCause?: string | undefined;
  source: CdrSource;
  /**
   * The call's rate snapshot and cap when the caller already has them (as stored in calls.rate/max_seconds):
   * the debit then needs no read. Otherwise this process's reservation cache, else one read of the calls row.
   */
  pricing?: CallPricing | undefined;
}

export type FinishOutcome =
  | {
      status: 'debited';
      callId: string;
      cardId: string;
      billedSeconds: number;
      /** What the call cost at the reserved rate. */
      cost: Micros;
      /** The part of cost the card could not pay (only when a hold had expired): never below the floor. */
      uncollected: Micros;
      balance: Micros;
    }
  | { status: 'duplicate'; callId: string; cardId: string; billedSeconds: number; cost: Micros; balance: Micros }
  | { status: 'released'; callId: string; cardId: string; balance: Micros }
  | { status: 'unknown_call'; callId: string };

/** One debit batcher per pool: concurrent debits share statements and commits (see DebitBatcher). */
const batchers = new WeakMap<Pool, DebitBatcher>();
function batcherFor(pool: Pool): DebitBatcher {
  let b = batchers.get(pool);
  if (!b) batchers.set(pool, (b = new DebitBatcher(pool)));
  return b;
}

/**
 * Debits an answered call exactly once, in ONE statement (debitCdr in src/store/calls.ts; shared with the other
 * debits arriving meanwhile under load, see DebitBatcher): the card locked, the
 * CDR inserted (UNIQUE call_id: a second CDR for the same call inserts nothing and debits nothing), the ledger
 * debit at the rate stored with the reservation (clamped at the floor, the shortfall kept in
 * cdrs.uncollected_micros), the balance and its version, and the call marked settled. The cost is computed here
 * first, from the reservation's rate snapshot (carried, cached, or read once). Only after the commit is the hold
 * dropped and the new balance cached, in one atomic live-store step.
 */
export async function debitCall(deps: SettleDeps, facts: CallFacts): Promise<FinishOutcome> {
  const key = facts.callId.toLowerCase();
  // The other CDR of this call (socket or POST) was debited here moments ago, or is being debited now: a duplicate,
  // with the card's balance as it is now (one read of the card row instead of the debit statement and a settle).
  const known = await finishedCall(deps.pool, key);
  if (known?.how === 'debited') {
    const { cardId, billedSeconds, cost } = known;
    return { status: 'duplicate', callId: key, cardId, billedSeconds, cost, balance: await balanceNow(deps, known) };
  }
  return finishing(deps.pool, key, () => debitInDatabase(deps, facts, key));
}

/** The card's balance now (the one a duplicate reports), for a call finished here. */
export async function balanceNow(deps: SettleDeps, known: { cardId: string; balance: Micros }): Promise<Micros> {
  return (await readSnapshot(deps.pool, known.cardId))?.balance ?? known.balance;
}

async function debitInDatabase(deps: SettleDeps, facts: CallFacts, key: string): Promise<FinishOutcome> {
  let pricing = facts.pricing ?? cachedPricing(key);
  if (!pricing) {
    const call = await getCall(deps.pool, facts.callId);
    if (!call) return { status: 'unknown_call', callId: facts.callId };
    pricing = { rate: call.rate, maxSeconds: call.maxSeconds, costAlgorithm: call.costAlgorithm };
  }
  const rule = ruleFromSnapshot(pricing.rate);
  const billed = billedSecondsFor(facts.billsec, pricing.maxSeconds);
  const price = costUnder(pricing.costAlgorithm, rule, billed);
  const r = await batcherFor(deps.pool).debit(
    {
      callId: facts.callId,
      billsec: Math.max(0, Math.floor(facts.billsec)),
      billmsec: facts.billmsec === undefined ? null : Math.max(0, Math.floor(facts.billmsec)),
      billedSeconds: billed,
      cost: price,
      hangupCause: facts.hangupCause ?? null,
      answeredAt: facts.answeredAt ?? null,
      endedAt: facts.endedAt ?? null,
      source: facts.source,
    },
    pricing.rate.destination,
  );
  if (r.outcome === 'unknown_call') return { status: 'unknown_call', callId: facts.callId };
  forgetPricing(key);
  const callId = key;
  const settled = await pushSettle(deps, r.cardId, callId, { spendable: r.balance + r.creditLimit, version: r.version });
  if (r.outcome === 'duplicate') {
    if (settled && r.prior) rememberFinished(deps.pool, callId, { how: 'debited', cardId: r.cardId, ...r.prior, balance: r.balance });
    return {
      status: 'duplicate',
      callId,
      cardId: r.cardId,
      billedSeconds: r.prior?.billedSeconds ?? 0,
      cost: r.prior?.cost ?? 0n,
      balance: r.balance,
    };
  }
  if (settled) rememberFinished(deps.pool, callId, { how: 'debited', cardId: r.cardId, billedSeconds: billed, cost: price, balance: r.balance });
  if (r.uncollected > 0n) {
    (deps.logger ?? silentLog).warn(
      { callId, cardId: r.cardId, uncollected: r.uncollected.toString() },
      'call debit clamped at the card floor',
    );
  }
  return { status: 'debited', callId, cardId: r.cardId, billedSeconds: billed, cost: price, uncollected: r.uncollected, balance: r.balance };
}
