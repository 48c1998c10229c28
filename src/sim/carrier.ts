/** What the far end does with a bridged call. Times are virtual milliseconds. */
export type CarrierScript =
  /** 180 at once, 200 after answerAfterMs, carrier hangs up after talkMs (Infinity = never). */
  | { kind: 'answer'; answerAfterMs?: number; talkMs?: number }
  /** Rejects the INVITE after afterMs (default 20 ms) with a final SIP failure. */
  | { kind: 'reject'; cause: RejectCause; afterMs?: number }
  /** 180 and never answers: ends with leg_timeout (ALLOTTED_TIMEOUT) or originate_timeout (NO_ANSWER). */
  | { kind: 'ring' };

export type RejectCause = 'USER_BUSY' | 'UNALLOCATED_NUMBER' | 'NORMAL_TEMPORARY_FAILURE' | 'CALL_REJECTED';

/** SIP status, reason phrase, Q.850 code and DIALSTATUS per cause, as recorded (c_busy, c2, c3). */
export const REJECTS: Record<RejectCause, { sip: number; phrase: string; q850: number; dialstatus: string }> = {
  USER_BUSY: { sip: 486, phrase: 'Busy Here', q850: 17, dialstatus: 'BUSY' },
  UNALLOCATED_NUMBER: { sip: 404, phrase: 'Not Found', q850: 1, dialstatus: 'UNALLOCATED_NUMBER' },
  NORMAL_TEMPORARY_FAILURE: { sip: 503, phrase: 'Service Unavailable', q850: 41, dialstatus: 'NORMAL_TEMPORARY_FAILURE' },
  CALL_REJECTED: { sip: 603, phrase: 'Decline', q850: 21, dialstatus: 'CALL_REJECTED' },
};

export const carrier = {
  answer: (answerAfterMs = 500, talkMs = 3000): CarrierScript => ({ kind: 'answer', answerAfterMs, talkMs }),
  busy: (): CarrierScript => ({ kind: 'reject', cause: 'USER_BUSY' }),
  unallocated: (): CarrierScript => ({ kind: 'reject', cause: 'UNALLOCATED_NUMBER' }),
  congestion: (): CarrierScript => ({ kind: 'reject', cause: 'NORMAL_TEMPORARY_FAILURE' }),
  noAnswer: (): CarrierScript => ({ kind: 'ring' }),
};

/** The recorded test carrier's behaviour by dialled number (README "Carrier"). */
export function defaultCarrier(number: string): CarrierScript {
  const n = number.replace(/^\+/, '');
  if (n.startsWith('1555486')) return carrier.busy();
  if (n.startsWith('1555404')) return carrier.unallocated();
  if (n.startsWith('1555503')) return carrier.congestion();
  if (n.startsWith('1555408')) return carrier.noAnswer();
  if (n.startsWith('1555999')) return carrier.answer(500, 60_000);
  return carrier.answer(500, 3000);
}
