import type { Pool } from 'pg';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import { markUnbilled, openCalls } from '../store/calls.ts';
import { silentLog, type Log } from './billing-deps.ts';

/**
 * Ends the holds of calls whose deadline passed without a CDR: marks them 'unbilled' (listed by `ccard calls
 * unbilled`, counted by unbilledCalls) and drops their hold. A CDR arriving later is still debited (clamped at the
 * floor, shortfall in cdrs.uncollected_micros).
 */
export async function closeOverdueCalls(pool: Pool, live: LiveBalanceStore, now: Date = new Date(), logger: Log = silentLog): Promise<number> {
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
