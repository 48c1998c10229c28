import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { Micros } from '../money/money.ts';
import type { CallContextInfo, CardView, Reservation, ReserveHint, ReserveResult, SettleResult } from '../flow/services.ts';
import type { BridgeResult, CarrierCdr } from '../flow/call.ts';
import { getCard, readSnapshot, type CardRecord } from '../store/cards.ts';
import { reserveRefusal } from './lifecycle.ts';
import {
  DebitBatcher,
  deleteUnheldCall,
  getCall,
  insertCall,
  markUnbilled,
  openCalls,
  releaseCallRow,
  ruleFromSnapshot,
  toRateSnapshot,
  type CdrSource,
  type RateSnapshot,
} from '../store/calls.ts';
import { billedSecondsFor, cost, costUnder, maxSeconds, COST_ALGORITHM, type RateRule } from './rating.ts';
import { observeFinish } from '../metrics/index.ts';

/** Finds the rate for a number in a table (src/store/rates.ts implements it over an in-memory prefix index). */
export interface RateLookup {
  ruleFor(
    rateTableId: string,
    number: string,
    taxPpm: number,
    now: Date,
  ): { rate: { id: string; prefix: string; destination: string }; rule: RateRule } | undefined;
}

export interface BillingConfig {
  /** A call that could not last this long is refused ('insufficient'). */
  minCallSeconds: number;
  /** The longest call ever allowed (the cap when the balance is large). */
  maxCallSeconds: number;
  /** How long the carrier may ring: part of how long a hold lives. */
  originateTimeoutSec: number;
  /** Extra time a hold lives after the cap, for the CDR to arrive. */
  holdMarginSec: number;
  /**
   * Reservations in slices (src/billing/slices.ts): a call holds what this many seconds cost (never less than
   * minCallSeconds) and grows its hold while it runs. 0 or unset: one hold for the longest affordable call.
   */
  sliceSeconds?: number;
}

type LogFn = (obj: object, msg?: string) => void;
export interface Log {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
const silent: Log = { info: () => {}, warn: () => {}, error: () => {} };

export interface SettleDeps {
  pool: Pool;
  live: LiveBalanceStore;
  logger?: Log;
}

export interface BillingDeps extends SettleDeps {
  rates: RateLookup;
  config: BillingConfig;
}

const RESERVE_TRIES = 5;

/** What pricing a call's CDR needs from its reservation. Written once with the calls row and never changed. */
export interface CallPricing {
  rate: RateSnapshot;
  maxSeconds: number;
  /** The cost algorithm of the reservation (calls.cost_algorithm): the debit uses it, not today's. */
  costAlgorithm: string;
}

/*
 * The pricing of calls this process reserved, so that their debit is ONE statement with no read of the calls row
 * first. Safe to cache: calls.rate and calls.max_seconds never change after the insert. Only a hint: a miss (a
 * CDR for a call reserved by another process, or after a restart) reads the row. Bounded (oldest dropped first);
 * an entry goes when its call is debited or released.
 */
const PRICING_CACHE_MAX = 20_000;
const pricingCache = new Map<string, CallPricing>();
/** What this process knows of a call's pricing (undefined: read the calls row). */
export function cachedPricing(callId: string): CallPricing | undefined {
  return pricingCache.get(callId.toLowerCase());
}
export function rememberPricing(callId: string, p: CallPricing): void {
  if (pricingCache.size >= PRICING_CACHE_MAX) {
    const oldest = pricingCache.keys().next();
    if (!oldest.done) pricingCache.delete(oldest.value);
  }
  pricingCache.set(callId.toLowerCase(), p);
}

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

/** Ends a call from its CDR: debits it when answered, otherwise releases its hold. Idempotent on callId. */
export async function finishCall(deps: SettleDeps, facts: CallFacts): Promise<FinishOutcome> {
  return observeFinish(facts, () => (facts.answered ? debitCall(deps, facts) : releaseCall(deps, facts.callId)));
}

async function pushSettle(deps: SettleDeps, cardId: string, callId: string, snap?: { spendable: Micros; version: bigint }) {
  try {
    await deps.live.settle(cardId, callId, snap);
  } catch (err) {
    // PostgreSQL is the truth and already committed: the hold expires by itself and the purge forces a reload.
    (deps.logger ?? silent).warn({ err, cardId, callId }, 'live store settle failed; the hold will expire');
  }
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
  let pricing = facts.pricing ?? pricingCache.get(key);
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
  pricingCache.delete(key);
  const callId = key;
  await pushSettle(deps, r.cardId, callId, { spendable: r.balance + r.creditLimit, version: r.version });
  if (r.outcome === 'duplicate') {
    return {
      status: 'duplicate',
      callId,
      cardId: r.cardId,
      billedSeconds: r.prior?.billedSeconds ?? 0,
      cost: r.prior?.cost ?? 0n,
      balance: r.balance,
    };
  }
  if (r.uncollected > 0n) {
    (deps.logger ?? silent).warn(
      { callId, cardId: r.cardId, uncollected: r.uncollected.toString() },
      'call debit clamped at the card floor',
    );
  }
  return { status: 'debited', callId, cardId: r.cardId, billedSeconds: billed, cost: price, uncollected: r.uncollected, balance: r.balance };
}

/** Gives back the hold of a call that never answered, in ONE statement. Idempotent; a settled call stays settled. */
export async function releaseCall(deps: SettleDeps, callId: string): Promise<FinishOutcome> {
  const row = await releaseCallRow(deps.pool, callId);
  if (!row) return { status: 'unknown_call', callId };
  const id = callId.toLowerCase();
  pricingCache.delete(id);
  await pushSettle(deps, row.cardId, id, { spendable: row.spendable, version: row.version });
  return { status: 'released', callId: id, cardId: row.cardId, balance: row.balance };
}

const uepochToDate = (u: bigint | undefined): Date | undefined => (u !== undefined && u > 0n ? new Date(Number(u / 1000n)) : undefined);

export function carrierCdrAnswered(cdr: Pick<CarrierCdr, 'answerUepoch' | 'billsec' | 'billmsec'>): boolean {
  return (cdr.answerUepoch !== undefined && cdr.answerUepoch > 0n) || cdr.billsec > 0 || (cdr.billmsec ?? 0) > 0;
}

function cdrMatches(cdr: CarrierCdr, callId: string): boolean {
  const id = callId.toLowerCase();
  return cdr.uuid.toLowerCase() === id || cdr.variables['cc_call_id']?.toLowerCase() === id;
}

/**
 * What a bridge result says about its reservation: the carrier CDR's facts (debit, or release when it never
 * answered), a release when the bridge never answered, or undefined when the outcome is unknown (answered without a
 * CDR, or no bridge result): nothing is guessed then. The same facts go to the debit journal when the database
 * cannot take them now.
 */
export function settleFacts(reservation: Reservation, bridge: BridgeResult | undefined): CallFacts | undefined {
  const cdr = bridge?.carrierCdr;
  if (cdr && cdrMatches(cdr, reservation.callId)) {
    return {
      callId: reservation.callId,
      answered: carrierCdrAnswered(cdr),
      billsec: cdr.billsec,
      billmsec: cdr.billmsec,
      answeredAt: uepochToDate(cdr.answerUepoch),
      endedAt: uepochToDate(cdr.endUepoch),
      hangupCause: cdr.hangupCause,
      source: 'socket',
    };
  }
  if (bridge && !bridge.answered) return { callId: reservation.callId, answered: false, billsec: 0, source: 'socket' };
  return undefined;
}

/**
 * The flow's end of a reservation. With the carrier leg's CDR: debit (or release when it never answered).
 * A bridge that never answered: release. Answered but no CDR (socket lost, plain events) or no bridge result at
 * all: the outcome is unknown, so nothing is guessed; the call stays 'reserved' until the mod_json_cdr POST
 * settles it or the expiry sweep ends its hold.
 */
export async function settleReservation(deps: SettleDeps, reservation: Reservation, bridge: BridgeResult | undefined): Promise<SettleResult> {
  const cdr = bridge?.carrierCdr;
  if (cdr && !cdrMatches(cdr, reservation.callId)) {
    (deps.logger ?? silent).warn({ callId: reservation.callId, cdrUuid: cdr.uuid }, 'carrier CDR names another call; ignored');
  }
  const facts = settleFacts(reservation, bridge);
  const outcome = facts ? await finishCall(deps, facts) : undefined;
  if (outcome?.status === 'debited' || outcome?.status === 'duplicate') {
    return { billedSeconds: outcome.billedSeconds, cost: outcome.cost, balance: outcome.balance };
  }
  if (outcome?.status === 'released') return { billedSeconds: 0, cost: 0n, balance: outcome.balance };
  if (!outcome) (deps.logger ?? silent).info({ callId: reservation.callId }, 'call outcome unknown: left reserved for its CDR');
  const snap = await readSnapshot(deps.pool, reservation.cardId);
  return { billedSeconds: 0, cost: 0n, balance: snap?.balance ?? 0n };
}

/**
 * Ends the holds of calls whose deadline passed without a CDR: marks them 'unbilled' (listed by `ccard calls
 * unbilled`, counted by unbilledCalls) and drops their hold. A CDR arriving later is still debited (clamped at the
 * floor, shortfall in cdrs.uncollected_micros).
 */
export async function expireOverdueCalls(pool: Pool, live: LiveBalanceStore, now: Date = new Date(), logger: Log = silent): Promise<number> {
  let n = 0;
  for (const call of await openCalls(pool, now)) {
    if (await markUnbilled(pool, call.callId)) {
      logger.warn({ callId: call.callId, cardId: call.cardId }, 'hold ran out with no CDR: call marked unbilled (ccard calls unbilled)');
      await live.settle(call.cardId, call.callId);
      n++;
    }
  }
  return n;
}

export interface RecoverySummary {
  reasserted: number;
  expired: number;
  /** Holds that no longer fit in full (the balance changed meanwhile) and were re-asserted for what was left. */
  partial: number;
}

/**
 * At startup, before any call is accepted: every call still 'reserved' in PostgreSQL gets its hold back in the
 * live store for the rest of its time (the in-process store lost it; in Redis this just refreshes it), ignoring
 * the concurrency limit; calls past their deadline are expired.
 */
export async function recoverOpenCalls(pool: Pool, live: LiveBalanceStore, now: Date = new Date(), logger: Log = silent): Promise<RecoverySummary> {
  const summary: RecoverySummary = { reasserted: 0, expired: 0, partial: 0 };
  summary.expired = await expireOverdueCalls(pool, live, now, logger);
  const deps: SettleDeps = { pool, live, logger };
  for (const call of await openCalls(pool)) {
    const ttlMs = call.holdUntil.getTime() - now.getTime();
    if (ttlMs <= 0) continue;
    let amount = call.reserved;
    for (let i = 0; i < RESERVE_TRIES; i++) {
      const r = await live.reserve(call.cardId, call.callId, amount, ttlMs, Number.MAX_SAFE_INTEGER);
      if (r.ok) {
        summary.reasserted++;
        if (amount < call.reserved) summary.partial++;
        break;
      }
      if (r.reason === 'needs_load') await loadLive(deps, call.cardId);
      else if (r.reason === 'insufficient') {
        logger.warn({ callId: call.callId, cardId: call.cardId, available: r.available.toString() }, 'recovered hold no longer fits in full');
        amount = r.available > 0n ? r.available : 0n;
      }
    }
  }
  return summary;
}
