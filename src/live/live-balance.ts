import type { Micros } from '../money/money.ts';

/**
 * Live balances: the funds held by calls in progress. Two implementations with one contract
 * (test/live/contract.ts runs against both): Redis (one Lua script per operation, atomic) and in-process.
 *
 * Model per card: a cached `spendable` (= PostgreSQL balance + credit limit) with its `version`
 * (cards.balance_version), and a set of reservations {callId -> amount, deadline}.
 * available = spendable - sum(unexpired reservations). Writes of spendable carry a version; an older version
 * never overwrites a newer one. When an expired reservation is purged, the cached spendable is dropped too
 * (its debit may have committed without the settle reaching us), forcing a reload from PostgreSQL.
 */
export interface CardSnapshot {
  spendable: Micros;
  version: bigint;
}

export type ReserveOutcome =
  | { ok: true; available: Micros }
  | { ok: false; reason: 'needs_load' }
  | { ok: false; reason: 'insufficient'; available: Micros }
  | { ok: false; reason: 'too_many_calls'; active: number };

/**
 * Growing a running call's hold (reservations in slices): 'gone' when the call holds nothing any more (settled,
 * released or expired), 'insufficient' with what the call could hold in all (spendable minus every other hold).
 */
export type ExtendOutcome =
  | { ok: true; available: Micros }
  | { ok: false; reason: 'gone' }
  | { ok: false; reason: 'needs_load' }
  | { ok: false; reason: 'insufficient'; available: Micros };

export interface LiveBalanceStore {
  /** Available funds and live call count, or 'needs_load' when the card is not cached. */
  peek(cardId: string): Promise<{ available: Micros; active: number } | 'needs_load'>;
  /** Caches the card's spendable balance unless a newer version is already there; returns what peek would then. */
  load(cardId: string, snap: CardSnapshot): Promise<{ available: Micros; active: number }>;
  /**
   * Atomically: purge expired reservations; refuse when active calls >= maxConcurrent ('too_many_calls'),
   * when uncached ('needs_load'), or when available < amount ('insufficient', with the available amount);
   * otherwise hold `amount` for callId until now + ttlMs. Re-reserving an existing callId replaces it.
   */
  reserve(cardId: string, callId: string, amount: Micros, ttlMs: number, maxConcurrent: number): Promise<ReserveOutcome>;
  /**
   * Atomically: purge expired holds; when callId still holds something, raise its hold to `amount` (the call's
   * whole hold, not an increment; never lowered) and push its deadline to now + ttlMs, if the card's spendable
   * minus every other hold covers it. Refuses with 'gone' when callId holds nothing (it is never re-created), with
   * 'needs_load' when the spendable is not cached, with 'insufficient' (and what callId could hold in all)
   * otherwise. The concurrency limit does not apply: the call already counts.
   */
  extend(cardId: string, callId: string, amount: Micros, ttlMs: number): Promise<ExtendOutcome>;
  /** Drops callId's reservation and, when given, caches the newer snapshot, in one atomic step. Idempotent. */
  settle(cardId: string, callId: string, snap?: CardSnapshot): Promise<void>;
  /** Reservations currently held for the card (for tests and the operator view). */
  reservations(cardId: string): Promise<Array<{ callId: string; amount: Micros; expiresAt: number }>>;
  close(): Promise<void>;
}
