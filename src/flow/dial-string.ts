/**
 * The bridge dial string, built only from parts that match a whitelist: nothing a caller keyed (or a
 * misconfigured gateway name) can add a channel variable, a second endpoint or an application argument.
 * The call cap and the warning ride on the carrier leg (execute_on_answer_N, recording h2): the caller leg is
 * already answered, so its own execute_on_answer would never fire.
 */
export class DialStringError extends Error {
  readonly code = 'DIAL_STRING_REFUSED';
  constructor(part: string, value: unknown) {
    super(`dial string refused: ${part} ${JSON.stringify(String(value))} is not allowed`);
    this.name = 'DialStringError';
  }
}

export const GATEWAY_RE = /^[A-Za-z0-9_.-]+$/;
export const NUMBER_RE = /^\d{1,20}$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const CARD_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** An absolute sound path without spaces, quotes, commas or braces. */
export const SOUND_PATH_RE = /^\/[A-Za-z0-9_./-]+$/;

export interface DialParts {
  gateway: string;
  number: string;
  callId: string;
  cardId: string;
  originateTimeoutSec: number;
  /** Hard cap of the carrier leg, from its answer. */
  maxSeconds: number;
  /** Absolute path of the warning played on both legs `warning.secondsBeforeEnd` before the cap, if any. */
  warning?: { file: string; secondsBeforeEnd: number };
}

function check(ok: boolean, part: string, value: unknown): void {
  if (!ok) throw new DialStringError(part, value);
}

const positiveInt = (n: number): boolean => Number.isSafeInteger(n) && n > 0;

export function buildDialString(p: DialParts): string {
  check(GATEWAY_RE.test(p.gateway), 'gateway', p.gateway);
  check(NUMBER_RE.test(p.number), 'number', p.number);
  check(UUID_RE.test(p.callId), 'call id', p.callId);
  check(CARD_ID_RE.test(p.cardId), 'card id', p.cardId);
  check(positiveInt(p.originateTimeoutSec), 'originate timeout', p.originateTimeoutSec);
  check(positiveInt(p.maxSeconds), 'max seconds', p.maxSeconds);
  const vars = [
    `origination_uuid=${p.callId}`,
    `cc_call_id=${p.callId}`,
    `cc_card_id=${p.cardId}`,
    'copy_json_cdr=true',
    `originate_timeout=${p.originateTimeoutSec}`,
    `execute_on_answer_1='sched_hangup +${p.maxSeconds} allotted_timeout'`,
  ];
  if (p.warning) {
    const at = p.maxSeconds - p.warning.secondsBeforeEnd;
    check(positiveInt(p.warning.secondsBeforeEnd) && positiveInt(at), 'warning time', at);
    check(SOUND_PATH_RE.test(p.warning.file) && !p.warning.file.includes('..'), 'warning file', p.warning.file);
    vars.push(`execute_on_answer_2='sched_broadcast +${at} ${p.warning.file} both'`);
  }
  return `{${vars.join(',')}}sofia/gateway/${p.gateway}/${p.number}`;
}
