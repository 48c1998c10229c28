import type { Pool } from 'pg';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import { openCalls } from '../store/calls.ts';
import { silentLog, type Log, type SettleDeps } from './billing-deps.ts';
import { closeOverdueCalls } from './overdue.ts';
import { loadLive, RESERVE_TRIES } from './reserve.ts';

export interface RecoverySummary {
  reasserted: number;
  /** Calls past their hold deadline with no CDR, closed as unbilled (closeOverdueCalls). */
  overdue: number;
  /** Holds that no longer fit in full (the balance changed meanwhile) and were re-asserted for what was left. */
  partial: number;
}

/**
 * At startup, before any call is accepted: every call still 'reserved' in PostgreSQL gets its hold back in the
 * live store for the rest of its time (the in-process store lost it; in Redis this just refreshes it), ignoring
 * the concurrency limit; calls past their deadline are closed as overdue (closeOverdueCalls).
 */
export async function recoverOpenCalls(pool: Pool, live: LiveBalanceStore, now: Date = new Date(), logger: Log = silentLog): Promise<RecoverySummary> {
  const summary: RecoverySummary = { reasserted: 0, overdue: 0, partial: 0 };
  summary.overdue = await closeOverdueCalls(pool, live, now, logger);
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
