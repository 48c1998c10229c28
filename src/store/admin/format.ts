import { formatMoney, type Micros } from '../../money/money.ts';

/**
 * An amount for people and scripts: 2 decimals, or more when the amount has sub-cent digits (a call on a
 * 4-decimal rate table leaves such balances), so what is printed is always exact.
 */
export function formatAmount(m: Micros): string {
  if (m % 10_000n === 0n) return formatMoney(m, 2);
  return formatMoney(m, 6).replace(/0+$/, '');
}

/** The JSON form of an amount: the exact decimal string and the integer micros, both as strings. */
export function amountJson(m: Micros): { value: string; micros: string } {
  return { value: formatAmount(m), micros: m.toString() };
}

export const isoOrNull = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** At least `decimals` decimals, more when the amount needs them to stay exact (rates finer than their table). */
export function formatAtLeast(m: Micros, decimals: number): string {
  let d = 6;
  while (d > decimals && m % 10n ** BigInt(7 - d) === 0n) d--;
  return formatMoney(m, d);
}
