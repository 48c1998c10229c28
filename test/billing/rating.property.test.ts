import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertRateRule, billableSeconds, billedSecondsFor, cost, maxSeconds, type RateRule } from '../../src/billing/rating.ts';

const micros = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 100_000n }),
  fc.bigInt({ min: 0n, max: 10_000_000n }),
  fc.bigInt({ min: 0n, max: 10n ** 13n }),
);

const ruleArb: fc.Arbitrary<RateRule> = fc.record({
  ratePerMin: micros,
  connectFee: micros,
  initialIncrement: fc.integer({ min: 1, max: 120 }),
  subsequentIncrement: fc.integer({ min: 1, max: 120 }),
  decimals: fc.integer({ min: 0, max: 6 }),
  rounding: fc.constantFrom('up' as const, 'half_up' as const, 'down' as const),
  minBillableSeconds: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 180 })),
  taxPpm: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 5_000_000 })),
});

const balanceArb = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 1_000n }),
  fc.bigInt({ min: 0n, max: 100_000_000n }),
  fc.bigInt({ min: 0n, max: 10n ** 18n }),
);

const capArb = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 7_200 }), fc.integer({ min: 0, max: 10_000_000 }));
const secondsArb = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 1_000_000 }));

const quantum = (rule: RateRule) => 10n ** BigInt(6 - rule.decimals);
const RUNS = { numRuns: 2_000 };

describe('rating properties', () => {
  it('every generated rule is valid', () => {
    fc.assert(fc.property(ruleArb, (rule) => assertRateRule(rule)), { numRuns: 200 });
  });

  it('cost is monotonic non-decreasing in seconds', () => {
    fc.assert(
      fc.property(ruleArb, secondsArb, fc.integer({ min: 0, max: 5_000 }), (rule, s, extra) => {
        expect(cost(rule, s)).toBeLessThanOrEqual(cost(rule, s + extra));
        expect(cost(rule, s)).toBeLessThanOrEqual(cost(rule, s + 1));
      }),
      RUNS,
    );
  });

  it('cost is never negative and always a multiple of the table quantum', () => {
    fc.assert(
      fc.property(ruleArb, secondsArb, (rule, s) => {
        const c = cost(rule, s);
        expect(c >= 0n).toBe(true);
        expect(c % quantum(rule)).toBe(0n);
      }),
      RUNS,
    );
  });

  it('cost is the exact amount rounded once by the table rule, off by less than one quantum', () => {
    fc.assert(
      fc.property(ruleArb, secondsArb, (rule, s) => {
        const billable = BigInt(billableSeconds(rule, s));
        const c = cost(rule, s);
        if (billable === 0n) {
          expect(c).toBe(0n);
          return;
        }
        // exact = (fee + rate * billable / 60) * (1 + tax/1e6), scaled by D to stay integral
        const D = 60n * 1_000_000n;
        const exactScaled = (rule.connectFee * 60n + rule.ratePerMin * billable) * (1_000_000n + BigInt(rule.taxPpm));
        const q = quantum(rule);
        const diff = c * D - exactScaled; // how far the charge is from the exact amount, scaled
        expect(diff < q * D && -diff < q * D).toBe(true);
        if (rule.rounding === 'up') expect(diff >= 0n).toBe(true);
        if (rule.rounding === 'down') expect(diff <= 0n).toBe(true);
        if (rule.rounding === 'half_up') expect(2n * diff <= q * D && -2n * diff < q * D).toBe(true);
      }),
      RUNS,
    );
  });

  it('calls shorter than the minimum billable cost nothing; a billed call pays at least the first block', () => {
    fc.assert(
      fc.property(ruleArb, secondsArb, (rule, s) => {
        const b = billableSeconds(rule, s);
        if (s === 0 || s < rule.minBillableSeconds) {
          expect(b).toBe(0);
          return;
        }
        expect(b).toBeGreaterThanOrEqual(Math.max(s, rule.initialIncrement));
        expect((b - rule.initialIncrement) % rule.subsequentIncrement).toBe(0);
        expect(b - s).toBeLessThan(Math.max(rule.initialIncrement, rule.subsequentIncrement));
      }),
      RUNS,
    );
  });

  it('maxSeconds: affordable, maximal (unless capped), never negative, never above the cap', () => {
    fc.assert(
      fc.property(ruleArb, balanceArb, capArb, (rule, balance, cap) => {
        const m = maxSeconds(rule, balance, cap);
        expect(Number.isInteger(m)).toBe(true);
        expect(m).toBeGreaterThanOrEqual(0);
        expect(m).toBeLessThanOrEqual(cap);
        expect(cost(rule, m)).toBeLessThanOrEqual(balance);
        if (m < cap) expect(cost(rule, m + 1)).toBeGreaterThan(balance);
      }),
      RUNS,
    );
  });

  it('a negative balance allows nothing', () => {
    fc.assert(
      fc.property(ruleArb, fc.bigInt({ min: -(10n ** 15n), max: -1n }), capArb, (rule, balance, cap) => {
        expect(maxSeconds(rule, balance, cap)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('billing billsec clamped by billedSecondsFor never costs more than the reservation cost(cap)', () => {
    const billsecArb = fc.oneof(
      fc.integer({ min: 0, max: 20_000 }),
      fc.double({ min: -10, max: 20_000, noNaN: false }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1),
    );
    fc.assert(
      fc.property(ruleArb, balanceArb, fc.integer({ min: 0, max: 14_400 }), billsecArb, (rule, balance, cap, billsec) => {
        const allowed = maxSeconds(rule, balance, cap);
        const reserved = cost(rule, allowed);
        const billed = billedSecondsFor(billsec, allowed);
        expect(Number.isInteger(billed)).toBe(true);
        expect(billed).toBeGreaterThanOrEqual(0);
        expect(billed).toBeLessThanOrEqual(allowed);
        expect(cost(rule, billed)).toBeLessThanOrEqual(reserved);
        expect(reserved).toBeLessThanOrEqual(balance);
      }),
      RUNS,
    );
  });
});
