/**
 * Money in ccard is always an integer number of micro-units of the currency (1 unit = 1_000_000 micros),
 * held as a `bigint` in TypeScript and as BIGINT in PostgreSQL. No float ever touches an amount.
 */
export type Micros = bigint;

export const MICROS_PER_UNIT = 1_000_000n;

export class MoneyFormatError extends Error {
  readonly code = 'MONEY_FORMAT';
  constructor(input: string, why: string) {
    super(`invalid amount "${input}": ${why}`);
  }
}

const AMOUNT_RE = /^([+-])?(\d{1,15})(?:\.(\d{1,6}))?$/;

/**
 * The largest amount ccard accepts anywhere (a balance, a top-up, a fee, a rate, a credit limit), and the largest
 * balance a card may reach: one billion units of the currency. Checked at the edge (parseMoney, so every CLI option,
 * API field and CSV cell) and on the resulting balance. Why this bound: the live store keeps amounts in Lua doubles,
 * exact up to 2^53 micros (~9.007 billion units); a card's spendable (balance + credit limit, each within the bound)
 * and the holds on it stay below 2 billion units, far inside that range, and so do BIGINT sums of it in PostgreSQL.
 */
export const MAX_AMOUNT_UNITS = 1_000_000_000n;
export const MAX_AMOUNT_MICROS = MAX_AMOUNT_UNITS * MICROS_PER_UNIT;

/**
 * Parses a decimal string such as "4.37", "-0.5" or "12" into micros. At most 6 decimals, at most
 * MAX_AMOUNT_UNITS either way; no exponent, no commas.
 */
export function parseMoney(input: string): Micros {
  const text = input.trim();
  const m = AMOUNT_RE.exec(text);
  if (!m) {
    throw new MoneyFormatError(input, 'expected a decimal number with at most 6 decimals, e.g. 10 or 4.37');
  }
  const [, sign, whole, frac = ''] = m;
  const micros = BigInt(whole!) * MICROS_PER_UNIT + BigInt(frac.padEnd(6, '0'));
  if (micros > MAX_AMOUNT_MICROS) throw new MoneyFormatError(input, `must be at most ${MAX_AMOUNT_UNITS} in absolute value`);
  return sign === '-' ? -micros : micros;
}

/** Like parseMoney but refuses zero and negative amounts. */
export function parsePositiveMoney(input: string): Micros {
  const v = parseMoney(input);
  if (v <= 0n) throw new MoneyFormatError(input, 'must be greater than zero');
  return v;
}

/** Like parseMoney but refuses negative amounts. */
export function parseNonNegativeMoney(input: string): Micros {
  const v = parseMoney(input);
  if (v < 0n) throw new MoneyFormatError(input, 'must not be negative');
  return v;
}

/**
 * Formats micros with exactly `decimals` decimals (default 2), truncating toward zero beyond them
 * (amounts stored by ccard are already rounded to their table's decimals). "4.37", "-0.50", "12.00".
 */
export function formatMoney(micros: Micros, decimals = 2): string {
  if (decimals < 0 || decimals > 6) throw new RangeError('decimals must be 0..6');
  const neg = micros < 0n;
  const abs = neg ? -micros : micros;
  const whole = abs / MICROS_PER_UNIT;
  const frac = (abs % MICROS_PER_UNIT).toString().padStart(6, '0').slice(0, decimals);
  const body = decimals > 0 ? `${whole}.${frac}` : `${whole}`;
  return neg ? `-${body}` : body;
}

/** Splits an amount into whole units and cents (truncated), for prompts such as "4 dollars and 37 cents". */
export function unitsAndCents(micros: Micros): { units: bigint; cents: bigint } {
  const abs = micros < 0n ? -micros : micros;
  return { units: abs / MICROS_PER_UNIT, cents: (abs % MICROS_PER_UNIT) / 10_000n };
}

export type Rounding = 'up' | 'half_up' | 'down';

/** Divides num/den (den > 0, num >= 0) to an integer with the given rounding rule. */
export function divRound(num: bigint, den: bigint, rule: Rounding): bigint {
  if (den <= 0n) throw new RangeError('denominator must be positive');
  if (num < 0n) throw new RangeError('numerator must not be negative');
  const q = num / den;
  const r = num % den;
  if (r === 0n) return q;
  switch (rule) {
    case 'down':
      return q;
    case 'up':
      return q + 1n;
    case 'half_up':
      return r * 2n >= den ? q + 1n : q;
  }
}

export const minMicros = (a: Micros, b: Micros): Micros => (a < b ? a : b);
export const maxMicros = (a: Micros, b: Micros): Micros => (a > b ? a : b);
