import type { Call, DigitsRequest, DigitsResult } from './call.ts';
import type { FlowContext } from './context.ts';
import { MAX_DIALLING_PREFIX_LENGTH } from './number.ts';
import type { ResolvedFlowOptions } from './options.ts';
import { promptPath, type PromptName } from './prompts.ts';
import { VOUCHER_MAX_DIGITS } from './voucher.ts';

/** The play_and_get_digits request for each kind of entry the flow asks for (tries=1: the flow counts tries). */
export function digitsRequest(
  c: FlowContext,
  kind: 'pin' | 'destination' | 'menu' | 'voucher',
  prompt: PromptName,
): DigitsRequest {
  // No `{ ...base, more }`: V8 builds a spread followed by new fields on a slow path (~10 µs), three times a call.
  const o = c.opts;
  const a = c.access!;
  const p = promptPath(prompt);
  switch (kind) {
    case 'pin':
      return req(p, o, a.pinLength, a.pinLength, o.pinTimeoutMs, 'ccard_pin', `^\\d{${a.pinLength}}$`);
    case 'destination':
      return req(p, o, 1, a.maxDigits + MAX_DIALLING_PREFIX_LENGTH, o.destTimeoutMs, 'ivr_destination', '^(\\d+|\\*)$');
    case 'voucher':
      return req(p, o, VOUCHER_MAX_DIGITS, VOUCHER_MAX_DIGITS, o.pinTimeoutMs, 'ccard_voucher', `^\\d{${VOUCHER_MAX_DIGITS}}$`);
    case 'menu':
      return req(p, o, 1, 1, o.menuTimeoutMs, 'ccard_choice', '^\\d$');
  }
}

function req(prompt: string, o: ResolvedFlowOptions, min: number, max: number, timeoutMs: number, variable: string, regex: string): DigitsRequest {
  return {
    tries: 1,
    terminators: '#',
    prompt,
    invalidPrompt: o.pagdInvalidPrompt,
    digitTimeoutMs: o.digitTimeoutMs,
    min,
    max,
    timeoutMs,
    variable,
    regex,
  };
}

/** FreeSWITCH keeps partial digits on timeout or hangup (observation 5): check success, the digits and the call. */
export const cleanDigits = (call: Call, r: DigitsResult): string | undefined =>
  r.success && !call.hungUp && r.digits !== undefined && /^\d+$/.test(r.digits) ? r.digits : undefined;

export const validPin = (c: FlowContext, r: DigitsResult): boolean => cleanDigits(c.call, r)?.length === c.access!.pinLength;
