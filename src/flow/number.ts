/**
 * Turns what a caller keyed as a destination into E.164 digits (no '+') for rating and the dial string.
 * Pure: no IO, no logging. The rules, in order:
 *
 * 1. The entry must be digits, optionally after one leading '+' (a keypad sends no '+', but the API and
 *    tests may). '+<digits>' is already international.
 * 2. International prefix: '00' always (ITU-T default, used by most of the world); '011' only when the access
 *    number's country code is '1' (NANP). Elsewhere '011…' is a national number (e.g. UK 0113 = Leeds).
 * 3. National (trunk) prefix: when the access number has one ('0' in most of Europe, '1' in NANP) and the
 *    entry starts with it, E.164 = countryCode + the rest.
 * 4. Anything else is taken as a full international number as keyed (country code first), which is how
 *    calling-card callers dial (hence the 11-14 digit default). Exception: an entry too short for minDigits that
 *    fits once the access number's country code is put in front is a bare national number (a NANP caller keying
 *    ten digits): E.164 = countryCode + entry.
 * 5. The E.164 result must not start with 0 (no country code does), must have between minDigits and maxDigits
 *    digits (inclusive), must not start with a denied prefix, and must start with an allowed prefix when the
 *    allow list is not empty.
 */
export interface NumberPlan {
  countryCode: string;
  nationalPrefix: string;
  minDigits: number;
  maxDigits: number;
  allowedPrefixes: readonly string[];
  deniedPrefixes: readonly string[];
}

export type NormaliseResult =
  | { ok: true; number: string }
  | { ok: false; reason: 'invalid' | 'not_allowed' };

const ENTRY_RE = /^\+?\d+$/;
const DIGITS_RE = /^\d+$/;

/** Longest prefix a caller may key in front of an E.164 number (011); sizes the digit collection. */
export const MAX_DIALLING_PREFIX_LENGTH = 3;

export function toE164(
  entry: string,
  plan: Pick<NumberPlan, 'countryCode' | 'nationalPrefix'> & Partial<Pick<NumberPlan, 'minDigits' | 'maxDigits'>>,
): string | undefined {
  if (!ENTRY_RE.test(entry)) return undefined;
  if (!DIGITS_RE.test(plan.countryCode) || (plan.nationalPrefix !== '' && !DIGITS_RE.test(plan.nationalPrefix))) {
    return undefined;
  }
  if (entry.startsWith('+')) return entry.slice(1);
  if (entry.startsWith('00')) return entry.slice(2);
  if (plan.countryCode === '1' && entry.startsWith('011')) return entry.slice(3);
  if (plan.nationalPrefix !== '' && entry.startsWith(plan.nationalPrefix)) {
    return plan.countryCode + entry.slice(plan.nationalPrefix.length);
  }
  const national = plan.countryCode + entry;
  if (plan.minDigits !== undefined && entry.length < plan.minDigits && national.length >= plan.minDigits && national.length <= (plan.maxDigits ?? Infinity)) {
    return national;
  }
  return entry;
}

export function normaliseDestination(entry: string, plan: NumberPlan): NormaliseResult {
  const number = toE164(entry, plan);
  if (number === undefined || number === '' || number.startsWith('0')) return { ok: false, reason: 'invalid' };
  if (number.length < plan.minDigits || number.length > plan.maxDigits) return { ok: false, reason: 'invalid' };
  if (plan.deniedPrefixes.some((p) => p !== '' && number.startsWith(p))) return { ok: false, reason: 'not_allowed' };
  if (plan.allowedPrefixes.length > 0 && !plan.allowedPrefixes.some((p) => number.startsWith(p))) {
    return { ok: false, reason: 'not_allowed' };
  }
  return { ok: true, number };
}
