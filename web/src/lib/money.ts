/**
 * Money in the browser is the API's decimal string, shown and sent as typed. It is never parsed into a JS number:
 * checks and sums use BigInt micro-units (1 unit = 1,000,000 micros), the same as the server.
 */
const MONEY = /^(-)?(\d{1,12})(?:\.(\d{1,6}))?$/;

/** The micro-units of a decimal string, or null when it is not one ("4.37" -> 4370000n). */
export function toMicros(s: string): bigint | null {
  const m = MONEY.exec(s.trim());
  if (!m) return null;
  const micros = BigInt(m[2]!) * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0'));
  return m[1] ? -micros : micros;
}

/** A message for a bad amount, or null when it is fine. */
export function moneyProblem(s: string, opts: { allowNegative?: boolean; allowZero?: boolean; required?: boolean } = {}): string | null {
  const t = s.trim();
  if (!t) return opts.required ? 'is required' : null;
  const m = toMicros(t);
  if (m === null) return 'must be an amount such as 10 or 4.37 (at most 6 decimals)';
  if (m < 0n && !opts.allowNegative) return 'must not be negative';
  if (m === 0n && !opts.allowZero) return 'must not be zero';
  return null;
}

/** Sums decimal strings exactly; the result is formatted with at least two decimals. */
export function sumMoney(values: string[]): string {
  let total = 0n;
  for (const v of values) total += toMicros(v) ?? 0n;
  return formatMicros(total);
}

export function formatMicros(m: bigint): string {
  const neg = m < 0n;
  const a = neg ? -m : m;
  const whole = a / 1_000_000n;
  let frac = (a % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

export function isNegative(s: string): boolean {
  return s.trim().startsWith('-');
}
