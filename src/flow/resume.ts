/**
 * A call that comes back after its ccard process died (issue 15 §3; README-resume.md). ccard asks FreeSWITCH for
 * `resume` in its handshake and the dialplan has a second `socket` action, so when the socket dies the same channel
 * (same uuid, answered, with every variable set on it) connects again, to another process.
 *
 * What the flow had reached is kept on the channel in ONE variable that only ccard writes, `ccard_resume`, sealed
 * with an HMAC over the IVR leg's uuid and the state (key derived from CCARD_SECRET): nothing a caller controls (SIP
 * headers, caller ID, digits) can make a call look resumed, and a state copied from another channel does not verify.
 *
 *   stage a: authorized (the card is known; no PIN again)        -> balance, then the destination prompt
 *   stage r: reserved callId (a hold exists, maybe bridged)     -> settled from the carrier CDR, or its hold released
 *   stage m: a call is done, the "another call" offer is next    -> remaining balance and the offer
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { parseCarrierCdr } from '../esl/call-session.ts';
import type { BridgeResult, Call, CarrierCdr } from './call.ts';
import { CARD_ID_RE, UUID_RE } from './dial-string.ts';
import type { CallServices, Reservation, SettleResult } from './services.ts';

export const RESUME_VARIABLE = 'ccard_resume';

export type ResumeStage = 'a' | 'r' | 'm';

export interface ResumeState {
  stage: ResumeStage;
  cardId: string;
  /** Stage r: the reservation (the carrier leg's uuid). */
  callId?: string;
  /** Calls completed in this session before this point. */
  sessionCalls: number;
}

/** The key of the seal, from the service secret (a separate derivation: it never equals any other key). */
export function resumeKey(secret: string): string {
  return createHash('sha256').update(`ccard resume seal\0${secret}`).digest('base64url');
}

function mac(key: string, ivrUuid: string, body: string): string {
  return createHmac('sha256', key).update(`${ivrUuid.toLowerCase()}\0${body}`).digest('base64url').slice(0, 32);
}

/** The variable's value: `1.<stage>.<cardId>.<callId|->.<n>.<mac>` (characters safe in multiset and app args). */
export function sealResume(key: string, ivrUuid: string, s: ResumeState): string {
  const body = `1.${s.stage}.${s.cardId}.${s.callId ?? '-'}.${s.sessionCalls}`;
  return `${body}.${mac(key, ivrUuid, body)}`;
}

/** The state sealed on this channel, or undefined when absent, malformed or not sealed by this key for this uuid. */
export function openResume(key: string, ivrUuid: string, value: string | undefined): ResumeState | undefined {
  if (!key || !value || value.length > 200) return undefined;
  const parts = value.split('.');
  if (parts.length !== 6 || parts[0] !== '1') return undefined;
  const [, stage, cardId, callId, n, got] = parts as [string, string, string, string, string, string];
  const body = parts.slice(0, 5).join('.');
  const want = Buffer.from(mac(key, ivrUuid, body));
  const seen = Buffer.from(got);
  if (want.length !== seen.length || !timingSafeEqual(want, seen)) return undefined;
  if (stage !== 'a' && stage !== 'r' && stage !== 'm') return undefined;
  if (!CARD_ID_RE.test(cardId) || !/^\d{1,4}$/.test(n)) return undefined;
  if (stage === 'r' && !UUID_RE.test(callId)) return undefined;
  return { stage, cardId, callId: stage === 'r' ? callId.toLowerCase() : undefined, sessionCalls: Number(n) };
}

/** Writes the state with the flow's next command (no write of its own; FreeSWITCH runs it first). */
export function markResume(call: Call, key: string, s: ResumeState): void {
  if (!key) return;
  call.prepare({ answer: false, variables: [[RESUME_VARIABLE, sealResume(key, call.info.uuid, s)]] });
}

/**
 * What became of a reservation whose process died: the carrier leg's own CDR (copy_json_cdr leaves it on the IVR
 * leg as b_leg_cdr_<uuid>, read exactly with uuid_getvar) when it was bridged; else originate_causes says whether it
 * was dialled at all. A reservation never dialled (or whose originate failed) has its hold released; one that was
 * answered but whose CDR is not here is left for the json_cdr POST, as any call with an unknown outcome.
 */
export async function recoverBridge(call: Call, callId: string, signal?: AbortSignal): Promise<BridgeResult> {
  const read = call.readVariable?.bind(call);
  let cdr: CarrierCdr | undefined;
  if (read) {
    const text = (await read(`b_leg_cdr_${callId}`, signal)) ?? (await read('b_leg_cdr', signal));
    const parsed = text ? parseCarrierCdr(text) : undefined;
    if (parsed && (parsed.uuid.toLowerCase() === callId || parsed.variables['cc_call_id']?.toLowerCase() === callId)) cdr = parsed;
  }
  const causes = call.channelVariable?.('originate_causes') ?? '';
  const dialled = causes.toLowerCase().includes(callId);
  const answeredNoCdr = !cdr && dialled && /;(NONE|SUCCESS)\b/.test(causes);
  return {
    disposition: dialled ? call.channelVariable?.('originate_disposition') : 'NOT_BRIDGED',
    hangupCause: cdr?.hangupCause ?? (dialled ? call.channelVariable?.('last_bridge_hangup_cause') : undefined),
    answered: cdr ? cdr.billsec > 0 || (cdr.answerUepoch ?? 0n) > 0n : answeredNoCdr,
    carrierCdr: cdr,
    callerHungUp: call.hungUp,
  };
}

export interface ResumeSettleOutput {
  bridge: BridgeResult;
  settle: SettleResult;
}

export const resumeEffects = {
  /** Settles the reservation the dead process left (never aborted: it runs outside the session state). */
  resumeSettle: async ({ input }: { input: { call: Call; services: CallServices; reservation: Reservation } }): Promise<ResumeSettleOutput> => {
    let bridge: BridgeResult;
    try {
      bridge = await recoverBridge(input.call, input.reservation.callId);
    } catch {
      // Unreadable: nothing is guessed (an answered call is billed by its json_cdr POST, else its hold expires).
      bridge = { disposition: undefined, hangupCause: undefined, answered: true, carrierCdr: undefined, callerHungUp: input.call.hungUp };
    }
    const settle = await input.services.settle(input.reservation, bridge);
    return { bridge, settle };
  },
};
