import type { Call, DigitsRequest, DigitsResult } from './call.ts';
import type { FlowContext } from './context.ts';
import { MAX_DIALLING_PREFIX_LENGTH } from './number.ts';
import { promptPath, type PromptName } from './prompts.ts';
import { VOUCHER_MAX_DIGITS } from './voucher.ts';

/** The play_and_get_digits request for each kind of entry the flow asks for (tries=1: the flow counts tries). */
export function digitsRequest(
  c: FlowContext,
  kind: 'pin' | 'destination' | 'menu' | 'voucher',
  prompt: PromptName,
): DigitsRequest {
  const base = {
    tries: 1,
    terminators: '#',
    prompt: promptPath(prompt),
    invalidPrompt: c.opts.pagdInvalidPrompt,
    digitTimeoutMs: c.opts.digitTimeoutMs,
  };
  const a = c.access!;
  switch (kind) {
    case 'pin':
      return { ...base, min: a.pinLength, max: a.pinLength, timeoutMs: c.opts.pinTimeoutMs, variable: 'ccard_pin', regex: `^\\d{${a.pinLength}}$` };
    case 'destination':
      return {
        ...base,
        min: 1,
        max: a.maxDigits + MAX_DIALLING_PREFIX_LENGTH,
        timeoutMs: c.opts.destTimeoutMs,
        variable: 'ivr_destination',
        regex: '^(\\d+|\\*)$',
      };
    case 'voucher':
      return { ...base, min: VOUCHER_MAX_DIGITS, max: VOUCHER_MAX_DIGITS, timeoutMs: c.opts.pinTimeoutMs, variable: 'ccard_voucher', regex: `^\\d{${VOUCHER_MAX_DIGITS}}$` };
    case 'menu':
      return { ...base, min: 1, max: 1, timeoutMs: c.opts.menuTimeoutMs, variable: 'ccard_choice', regex: '^\\d$' };
  }
}

/** FreeSWITCH keeps partial digits on timeout or hangup (observation 5): check success, the digits and the call. */
export const cleanDigits = (call: Call, r: DigitsResult): string | undefined =>
  r.success && !call.hungUp && r.digits !== undefined && /^\d+$/.test(r.digits) ? r.digits : undefined;

export const validPin = (c: FlowContext, r: DigitsResult): boolean => cleanDigits(c.call, r)?.length === c.access!.pinLength;
