import type { BridgeResult } from './call.ts';
import type { PromptName } from './prompts.ts';

/** What became of one bridge attempt, from the caller's point of view. */
export type BridgeOutcome = 'answered' | 'busy' | 'no_answer' | 'invalid_number' | 'congestion' | 'failed';

const BY_CAUSE: Record<string, Exclude<BridgeOutcome, 'answered'>> = {
  USER_BUSY: 'busy',
  NO_ANSWER: 'no_answer',
  NO_USER_RESPONSE: 'no_answer',
  // leg_timeout expires as ALLOTTED_TIMEOUT (observation 10); an answered leg never reaches this table.
  ALLOTTED_TIMEOUT: 'no_answer',
  UNALLOCATED_NUMBER: 'invalid_number',
  INVALID_NUMBER_FORMAT: 'invalid_number',
  NO_ROUTE_DESTINATION: 'invalid_number',
  NORMAL_TEMPORARY_FAILURE: 'congestion',
  SWITCH_CONGESTION: 'congestion',
  GATEWAY_DOWN: 'congestion',
  NORMAL_CIRCUIT_CONGESTION: 'congestion',
  DESTINATION_OUT_OF_ORDER: 'congestion',
};

/**
 * Classifies a bridge result. The originate disposition is looked at first (it names why the originate
 * failed), then the last bridge hangup cause; SUCCESS or an unknown cause on an unanswered leg is 'failed'.
 */
export function classifyBridge(result: BridgeResult): BridgeOutcome {
  if (result.answered) return 'answered';
  for (const cause of [result.disposition, result.hangupCause, result.carrierCdr?.hangupCause]) {
    const key = cause?.toUpperCase();
    if (key !== undefined && Object.hasOwn(BY_CAUSE, key)) return BY_CAUSE[key]!;
  }
  return 'failed';
}

export const OUTCOME_PROMPT: Record<Exclude<BridgeOutcome, 'answered'>, PromptName> = {
  busy: 'busy',
  no_answer: 'no_answer',
  invalid_number: 'invalid_number',
  congestion: 'congestion',
  failed: 'call_failed',
};
