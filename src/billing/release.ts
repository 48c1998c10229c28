import { releaseCallRow } from '../store/calls.ts';
import type { SettleDeps } from './billing-deps.ts';
import type { FinishOutcome } from './debit.ts';
import { rememberFinished } from './finished-calls.ts';
import { pushSettle } from './live-settle.ts';
import { forgetPricing } from './pricing-cache.ts';

/** Gives back the hold of a call that never answered, in ONE statement. Idempotent; a settled call stays settled. */
export async function releaseCall(deps: SettleDeps, callId: string): Promise<FinishOutcome> {
  const row = await releaseCallRow(deps.pool, callId);
  if (!row) return { status: 'unknown_call', callId };
  const id = callId.toLowerCase();
  forgetPricing(id);
  if (await pushSettle(deps, row.cardId, id, { spendable: row.spendable, version: row.version })) {
    rememberFinished(deps.pool, id, row.cardId, 'released');
  }
  return { status: 'released', callId: id, cardId: row.cardId, balance: row.balance };
}
