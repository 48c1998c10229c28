import type { Micros } from '../money/money.ts';
import type { CardSnapshot, ExtendOutcome, LiveBalanceStore, ReserveOutcome } from './live-balance.ts';

/**
 * LiveBalanceStore in this process, for the embedded mode without Redis (one ccard process only).
 * Same contract as RedisLiveBalance: each method runs to completion without awaiting, so it is atomic in
 * Node's single thread. Holds are lost when the process exits; recoverOpenCalls re-asserts them from
 * PostgreSQL at startup, before calls are accepted.
 */
interface CardEntry {
  snap: CardSnapshot | undefined;
  /** When the cached snapshot was last used (idle TTL). */
  touchedAt: number;
  holds: Map<string, { amount: Micros; expiresAt: number }>;
}

export interface MemoryLiveBalanceOptions {
  /** A cached spendable not used for this long is dropped (default 1 h). */
  idleTtlMs?: number;
  /** Clock in ms since the epoch (default Date.now). */
  now?: () => number;
}

export class MemoryLiveBalance implements LiveBalanceStore {
  private readonly cards = new Map<string, CardEntry>();
  private readonly idleTtlMs: number;
  private readonly now: () => number;

  constructor(opts: MemoryLiveBalanceOptions = {}) {
    this.idleTtlMs = opts.idleTtlMs ?? 3_600_000;
    this.now = opts.now ?? Date.now;
  }

  /** The card's entry after dropping expired holds (and then the cached spendable) and an idle snapshot. */
  private entry(cardId: string, now: number): CardEntry {
    let e = this.cards.get(cardId);
    if (!e) {
      e = { snap: undefined, touchedAt: now, holds: new Map() };
      this.cards.set(cardId, e);
    }
    let purged = false;
    for (const [callId, h] of e.holds) {
      if (h.expiresAt <= now) {
        e.holds.delete(callId);
        purged = true;
      }
    }
    if (purged || now - e.touchedAt >= this.idleTtlMs) e.snap = undefined;
    return e;
  }

  private held(e: CardEntry, skip?: string): { sum: Micros; n: number } {
    let sum = 0n;
    let n = 0;
    for (const [callId, h] of e.holds) {
      if (callId === skip) continue;
      sum += h.amount;
      n++;
    }
    return { sum, n };
  }

  private writeSnap(e: CardEntry, snap: CardSnapshot, now: number): void {
    if (!e.snap || snap.version > e.snap.version) e.snap = { ...snap };
    e.touchedAt = now;
  }

  private gc(cardId: string, e: CardEntry): void {
    if (!e.snap && e.holds.size === 0) this.cards.delete(cardId);
  }

  async peek(cardId: string): Promise<{ available: Micros; active: number } | 'needs_load'> {
    const now = this.now();
    const e = this.entry(cardId, now);
    if (!e.snap) {
      this.gc(cardId, e);
      return 'needs_load';
    }
    e.touchedAt = now;
    const { sum, n } = this.held(e);
    return { available: e.snap.spendable - sum, active: n };
  }

  async load(cardId: string, snap: CardSnapshot): Promise<{ available: Micros; active: number }> {
    const now = this.now();
    const e = this.entry(cardId, now);
    this.writeSnap(e, snap, now);
    const { sum, n } = this.held(e);
    return { available: e.snap!.spendable - sum, active: n };
  }

  async reserve(cardId: string, callId: string, amount: Micros, ttlMs: number, maxConcurrent: number): Promise<ReserveOutcome> {
    if (amount < 0n) throw new RangeError('amount must not be negative');
    if (!Number.isFinite(ttlMs) || ttlMs < 1) throw new RangeError('ttlMs must be >= 1');
    const now = this.now();
    const e = this.entry(cardId, now);
    const { sum, n } = this.held(e, callId);
    if (n >= maxConcurrent) return { ok: false, reason: 'too_many_calls', active: n };
    if (!e.snap) {
      this.gc(cardId, e);
      return { ok: false, reason: 'needs_load' };
    }
    const available = e.snap.spendable - sum;
    if (available < amount) return { ok: false, reason: 'insufficient', available };
    e.holds.set(callId, { amount, expiresAt: now + Math.ceil(ttlMs) });
    e.touchedAt = now;
    return { ok: true, available: available - amount };
  }

  async extend(cardId: string, callId: string, amount: Micros, ttlMs: number): Promise<ExtendOutcome> {
    if (amount < 0n) throw new RangeError('amount must not be negative');
    if (!Number.isFinite(ttlMs) || ttlMs < 1) throw new RangeError('ttlMs must be >= 1');
    const now = this.now();
    const e = this.entry(cardId, now);
    const mine = e.holds.get(callId);
    if (!mine) {
      this.gc(cardId, e);
      return { ok: false, reason: 'gone' };
    }
    if (!e.snap) return { ok: false, reason: 'needs_load' };
    const room = e.snap.spendable - this.held(e, callId).sum;
    const want = amount > mine.amount ? amount : mine.amount;
    if (room < want) return { ok: false, reason: 'insufficient', available: room };
    e.holds.set(callId, { amount: want, expiresAt: Math.max(mine.expiresAt, now + Math.ceil(ttlMs)) });
    e.touchedAt = now;
    return { ok: true, available: room - want };
  }

  async settle(cardId: string, callId: string, snap?: CardSnapshot): Promise<void> {
    const now = this.now();
    const e = this.entry(cardId, now);
    e.holds.delete(callId);
    if (snap) this.writeSnap(e, snap, now);
    this.gc(cardId, e);
  }

  async reservations(cardId: string): Promise<Array<{ callId: string; amount: Micros; expiresAt: number }>> {
    const now = this.now();
    const e = this.cards.get(cardId);
    if (!e) return [];
    return [...e.holds]
      .filter(([, h]) => h.expiresAt > now)
      .map(([callId, h]) => ({ callId, amount: h.amount, expiresAt: h.expiresAt }));
  }

  async close(): Promise<void> {
    this.cards.clear();
  }
}
