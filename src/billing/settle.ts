import type { Reservation, SettleResult } from '../flow/services.ts';
import type { BridgeResult, CarrierCdr } from '../flow/call.ts';
import { readSnapshot } from '../store/cards.ts';
import { observeFinish } from '../metrics/index.ts';
import { silentLog, type SettleDeps } from './billing-deps.ts';
import { debitCall, type CallFacts, type FinishOutcome } from './debit.ts';
import { releaseCall } from './release.ts';

// Ending a call's reservation: from a CDR's facts (finishCall) or from what the flow's bridge returned
// (settleReservation).

/** Ends a call from its CDR: debits it when answered, otherwise releases its hold. Idempotent on callId. */
export async function finishCall(deps: SettleDeps, facts: CallFacts): Promise<FinishOutcome> {
  return observeFinish(facts, () => (facts.answered ? debitCall(deps, facts) : releaseCall(deps, facts.callId)));
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
 * settles it or closeOverdueCalls ends its hold.
 */
export async function settleReservation(deps: SettleDeps, reservation: Reservation, bridge: BridgeResult | undefined): Promise<SettleResult> {
  const cdr = bridge?.carrierCdr;
  if (cdr && !cdrMatches(cdr, reservation.callId)) {
    (deps.logger ?? silentLog).warn({ callId: reservation.callId, cdrUuid: cdr.uuid }, 'carrier CDR names another call; ignored');
  }
  const facts = settleFacts(reservation, bridge);
  const outcome = facts ? await finishCall(deps, facts) : undefined;
  if (outcome?.status === 'debited' || outcome?.status === 'duplicate') {
    return { billedSeconds: outcome.billedSeconds, cost: outcome.cost, balance: outcome.balance };
  }
  if (outcome?.status === 'released') return { billedSeconds: 0, cost: 0n, balance: outcome.balance };
  if (!outcome) (deps.logger ?? silentLog).info({ callId: reservation.callId }, 'call outcome unknown: left reserved for its CDR');
  const snap = await readSnapshot(deps.pool, reservation.cardId);
  return { billedSeconds: 0, cost: 0n, balance: snap?.balance ?? 0n };
}
