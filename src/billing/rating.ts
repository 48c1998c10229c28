import { divRound, type Micros, type Rounding } from '../money/money.ts';

/** Everything needed to cost a call: the matched rate plus its table's rules and the card's tax. */
export interface RateRule {
  ratePerMin: Micros;
  connectFee: Micros;
  /** Minimum billed block in seconds (the first block is always charged in full). */
  initialIncrement: number;
  /** After the first block, seconds are billed in blocks of this size. */
  subsequentIncrement: number;
  /** The table's decimals (0..6) and rounding rule, applied once to the final amount. */
  decimals: number;
  rounding: Rounding;
  /** Calls shorter than this cost nothing (not even the connect fee). */
  minBillableSeconds: number;
  /** Tax on top, parts per million (20% = 200000). */
  taxPpm: number;
}

const PPM = 1_000_000n;

/** Seconds charged for a call that lasted `seconds` (whole seconds, as FreeSWITCH's billsec). */
export function billableSeconds(rule: RateRule, seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0) throw new RangeError(`seconds must be a whole number >= 0: ${seconds}`);
  if (seconds === 0 || seconds < rule.minBillableSeconds) return 0;
  if (seconds <= rule.initialIncrement) return rule.initialIncrement;
  const rest = seconds - rule.initialIncrement;
  return rule.initialIncrement + Math.ceil(rest / rule.subsequentIncrement) * rule.subsequentIncrement;
}

/**
 * 'round-once-v1': the cost of a call of `seconds`: (connect fee + billable seconds at the per-minute rate) plus
 * tax, rounded ONCE to the table's decimals with its rule. Exact: integer arithmetic on micros throughout.
 */
function costRoundOnce(rule: RateRule, seconds: number): Micros {
  const billable = billableSeconds(rule, seconds);
  if (billable === 0) return 0n;
  // micros * 60: the per-minute rate times seconds stays an integer.
  const pre = rule.connectFee * 60n + rule.ratePerMin * BigInt(billable);
  const num = pre * (PPM + BigInt(rule.taxPpm));
  const quantum = 10n ** BigInt(6 - rule.decimals);
  return divRound(num, 60n * PPM * quantum, rule.rounding) * quantum;
}

/**
 * Every cost algorithm by the name stored with each call (calls.cost_algorithm, migrations/008). A call is debited by
 * the algorithm it was reserved and capped under, so how costs are computed changes by adding an entry and pointing
 * COST_ALGORITHM at it, never by editing one: an edited algorithm would debit the calls reserved before the deploy
 * at a price nobody reserved (more than the hold, when it rounds up more). Entries are never removed either: a CDR
 * can arrive days later (mod_json_cdr's err-log-dir, `ccard cdr import`). A table's rounding rule and decimals are
 * parameters (in calls.rate), not algorithms: a table edited during a call does not change that call's debit.
 */
export const COST_ALGORITHMS: Readonly<Record<string, (rule: RateRule, seconds: number) => Micros>> = Object.freeze({
  'round-once-v1': costRoundOnce,
});

/** The algorithm new reservations are priced and capped with (stored with each call). */
export const COST_ALGORITHM = 'round-once-v1';

/** The cost of a call of `seconds` under the current algorithm (COST_ALGORITHM): what a reservation holds. */
export const cost = COST_ALGORITHMS[COST_ALGORITHM]!;

/**
 * The cost under the algorithm a call was reserved with. A name this code does not know (a call reserved by newer
 * code, then debited after a rollback) throws: the debit waits for code that knows it (the CDR is retried or stays
 * for `ccard cdr import`) rather than charge the call by a rule it was not reserved under.
 */
export function costUnder(algorithm: string, rule: RateRule, seconds: number): Micros {
  const f = Object.hasOwn(COST_ALGORITHMS, algorithm) ? COST_ALGORITHMS[algorithm] : undefined;
  if (!f) throw new Error(`unknown cost algorithm ${JSON.stringify(algorithm)}: this call was reserved by a newer ccard`);
  return f(rule, seconds);
}

/**
 * The longest call (whole seconds, <= capSeconds) whose cost fits in `available`, found through `cost` itself
 * so that a call capped at maxSeconds can never cost more than was reserved. cost is non-decreasing in seconds,
 * so a binary search finds the largest affordable duration.
 */
export function maxSeconds(rule: RateRule, available: Micros, capSeconds: number): number {
  if (available < 0n) return 0;
  if (cost(rule, capSeconds) <= available) return capSeconds;
  let lo = 0; // cost(0) = 0 <= available
  let hi = capSeconds; // cost(hi) > available
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (cost(rule, mid) <= available) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Seconds to bill from what FreeSWITCH reported. billsec is end minus answer in whole epoch seconds; the cap is
 * enforced by FreeSWITCH (sched_hangup on the carrier leg fires on whole-second ticks at answer-second + cap, so
 * billsec equals the cap when it fires). Never bill past the cap the reservation was made for.
 *
 * Why billsec and not billmsec (test/fixtures/freeswitch/README.md, observation 11 and the h_* scenarios):
 * - d_cap, cap 5: billsec=5, billmsec=4520. h_*, cap 12: billsec=12, billmsec=12020. a2: billmsec=10300, billsec=11.
 * - billsec can exceed the talk time (4.52 s billed as 5 s) but, clamped here to the cap, it never exceeds the cap,
 *   so the debit is at most cost(cap) = what maxSeconds reserved.
 * - billmsec rounded up to whole seconds can exceed the cap (12020 ms -> 13 s > 12) because sched_hangup fires up
 *   to a tick late; billing it would charge more than was reserved and could push a card below its floor.
 * So the debit always uses billsec, clamped to the reservation's cap. The clamp also absorbs clock skew.
 */
export function billedSecondsFor(billsec: number, capSeconds: number): number {
  if (!Number.isFinite(billsec) || billsec < 0) return 0;
  return Math.max(0, Math.min(Math.floor(billsec), capSeconds));
}

/** Throws a RangeError when a rule could not be costed (non-integer or out-of-range parts, negative amounts). */
export function assertRateRule(rule: RateRule): void {
  const int = (v: number, min: number, max: number) => Number.isInteger(v) && v >= min && v <= max;
  if (rule.ratePerMin < 0n || rule.connectFee < 0n) throw new RangeError('rate and connect fee must not be negative');
  if (!int(rule.initialIncrement, 1, 86_400) || !int(rule.subsequentIncrement, 1, 86_400)) {
    throw new RangeError('increments must be whole seconds in 1..86400');
  }
  if (!int(rule.decimals, 0, 6)) throw new RangeError('decimals must be 0..6');
  if (rule.rounding !== 'up' && rule.rounding !== 'half_up' && rule.rounding !== 'down') {
    throw new RangeError(`unknown rounding ${String(rule.rounding)}`);
  }
  if (!int(rule.minBillableSeconds, 0, 86_400)) throw new RangeError('minBillableSeconds must be 0..86400');
  if (!int(rule.taxPpm, 0, 100_000_000)) throw new RangeError('taxPpm must be a whole number >= 0');
}
