import type { Micros } from '../money/money.ts';
import { silentLog, type SettleDeps } from './billing-deps.ts';

/**
 * After PostgreSQL committed a debit or release: drops the call's hold and caches the card's new spendable. True when
 * the live store took it.
 */
export async function pushSettle(deps: SettleDeps, cardId: string, callId: string, snap?: { spendable: Micros; version: bigint }): Promise<boolean> {
  try {
    await deps.live.settle(cardId, callId, snap);
    return true;
  } catch (err) {
    // PostgreSQL is the truth and already committed: the hold expires by itself and the purge forces a reload.
    (deps.logger ?? silentLog).warn({ err, cardId, callId }, 'live store settle failed; the hold will expire');
    return false;
  }
}
