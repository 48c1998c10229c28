import { releaseCallRow } from '../store/calls.ts';
import type { SettleDeps } from './billing-deps.ts';
import { balanceNow, type FinishOutcome } from './debit.ts';
import { finishedCall, finishing, rememberFinished } from './finished-calls.ts';
import { pushSettle } from './live-settle.ts';
import { forgetPricing } from './pricing-cache.ts';

/** Gives back the hold of a call that never answered, in ONE statement. Idempotent; a settled call stays settled. */
export async function releaseCall(deps: SettleDeps, callId: string): Promise<FinishOutcome> {
  const id = callId.toLowerCase();
  // Finished here moments ago (debited or released): releasing again would change nothing.
  const known = await finishedCall(deps.pool, id);
  if (known) return { status: 'released', callId: id, cardId: known.cardId, balance: await balanceNow(deps, known) };
  return finishing(deps.pool, id, async () => {
    const row = await releaseCallRow(deps.pool, callId);
    if (!row) return { status: 'unknown_call', callId };
    forgetPricing(id);
    if (await pushSettle(deps, row.cardId, id, { spendable: row.spendable, version: row.version })) {
      rememberFinished(deps.pool, id, { how: 'released', cardId: row.cardId, balance: row.balance });
    }
    return { status: 'released', callId: id, cardId: row.cardId, balance: row.balance };
  });
}
