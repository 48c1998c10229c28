import { describe, expect, it } from 'vitest';
import { parseMoney } from '../../src/money/money.ts';
import { assertRateRule, billableSeconds, billedSecondsFor, cost, maxSeconds, type RateRule } from '../../src/billing/rating.ts';

const rule = (over: Partial<RateRule> = {}): RateRule => ({
  ratePerMin: parseMoney('0.10'),
  connectFee: 0n,
  initialIncrement: 60,
  subsequentIncrement: 60,
  decimals: 2,
  rounding: 'up',
  minBillableSeconds: 0,
  taxPpm: 0,
  ...over,
});

describe('cost', () => {
  it('bills whole minutes with 60/60', () => {
    const r = rule();
    expect(cost(r, 0)).toBe(0n);
    expect(cost(r, 1)).toBe(parseMoney('0.10'));
    expect(cost(r, 60)).toBe(parseMoney('0.10'));
    expect(cost(r, 61)).toBe(parseMoney('0.20'));
    expect(cost(r, 3600)).toBe(parseMoney('6.00'));
  });

  it('bills the first block in full, then subsequent blocks (30/6)', () => {
    const r = rule({ ratePerMin: parseMoney('0.60'), initialIncrement: 30, subsequentIncrement: 6, decimals: 6 });
    expect(billableSeconds(r, 1)).toBe(30);
    expect(billableSeconds(r, 30)).toBe(30);
    expect(billableSeconds(r, 31)).toBe(36);
    expect(billableSeconds(r, 36)).toBe(36);
    expect(billableSeconds(r, 37)).toBe(42);
    expect(cost(r, 31)).toBe(parseMoney('0.36')); // 36 s at 0.01 per second
  });

  it('adds the connect fee and tax, then rounds ONCE to the table decimals', () => {
    // 0.015 fee + 1 s at 0.013/min = 0.015216666...; with 20% tax exactly 0.01826
    const r = rule({ ratePerMin: parseMoney('0.013'), connectFee: parseMoney('0.015'), initialIncrement: 1, subsequentIncrement: 1 });
    expect(cost({ ...r, decimals: 6, rounding: 'up' }, 1)).toBe(parseMoney('0.015217'));
    expect(cost({ ...r, decimals: 6, rounding: 'half_up' }, 1)).toBe(parseMoney('0.015217'));
    expect(cost({ ...r, decimals: 6, rounding: 'down' }, 1)).toBe(parseMoney('0.015216'));
    const taxed = { ...r, taxPpm: 200_000 };
    expect(cost({ ...taxed, decimals: 6, rounding: 'up' }, 1)).toBe(parseMoney('0.01826'));
    expect(cost({ ...taxed, decimals: 6, rounding: 'down' }, 1)).toBe(parseMoney('0.01826'));
    expect(cost({ ...taxed, decimals: 2, rounding: 'up' }, 1)).toBe(parseMoney('0.02'));
    expect(cost({ ...taxed, decimals: 2, rounding: 'half_up' }, 1)).toBe(parseMoney('0.02'));
    expect(cost({ ...taxed, decimals: 2, rounding: 'down' }, 1)).toBe(parseMoney('0.01'));
    expect(cost({ ...taxed, decimals: 0, rounding: 'up' }, 1)).toBe(parseMoney('1'));
    expect(cost({ ...taxed, decimals: 0, rounding: 'half_up' }, 1)).toBe(0n);
  });

  it('rounding each component separately would differ: 3 x 0.004 rounds to 0.02, not 3 x 0.01', () => {
    const r = rule({ ratePerMin: parseMoney('0.24'), initialIncrement: 1, subsequentIncrement: 1 }); // 0.004 per s
    expect(cost(r, 3)).toBe(parseMoney('0.02'));
  });

  it('calls shorter than the minimum billable seconds cost nothing, not even the connect fee', () => {
    const r = rule({ connectFee: parseMoney('0.50'), minBillableSeconds: 5 });
    expect(cost(r, 4)).toBe(0n);
    expect(cost(r, 5)).toBe(parseMoney('0.60'));
  });

  it('a free rate with no fee costs zero and maxSeconds gives the whole cap', () => {
    const r = rule({ ratePerMin: 0n });
    expect(cost(r, 10_000)).toBe(0n);
    expect(maxSeconds(r, 0n, 7200)).toBe(7200);
  });

  it('refuses impossible seconds', () => {
    expect(() => cost(rule(), -1)).toThrow(RangeError);
    expect(() => cost(rule(), 1.5)).toThrow(RangeError);
  });
});

describe('maxSeconds', () => {
  it('finds the longest affordable call', () => {
    const r = rule({ ratePerMin: parseMoney('0.60'), initialIncrement: 1, subsequentIncrement: 1 });
    expect(maxSeconds(r, parseMoney('1.00'), 7200)).toBe(100);
    expect(maxSeconds(r, parseMoney('0.009999'), 7200)).toBe(0);
    expect(maxSeconds(r, parseMoney('1000'), 7200)).toBe(7200);
    expect(maxSeconds(r, -1n, 7200)).toBe(0);
  });

  it('with 60/60 a balance for 2.5 minutes buys 120 s', () => {
    expect(maxSeconds(rule(), parseMoney('0.25'), 7200)).toBe(120);
  });

  it('cannot afford the connect fee: zero seconds', () => {
    expect(maxSeconds(rule({ connectFee: parseMoney('0.30') }), parseMoney('0.35'), 7200)).toBe(0);
  });
});

describe('assertRateRule', () => {
  it('accepts a normal rule and refuses broken ones', () => {
    expect(() => assertRateRule(rule())).not.toThrow();
    expect(() => assertRateRule(rule({ subsequentIncrement: 0 }))).toThrow(/increments/);
    expect(() => assertRateRule(rule({ decimals: 7 }))).toThrow(/decimals/);
    expect(() => assertRateRule(rule({ ratePerMin: -1n }))).toThrow(/negative/);
    expect(() => assertRateRule(rule({ taxPpm: 0.5 }))).toThrow(/taxPpm/);
  });
});

/**
 * Real FreeSWITCH numbers (test/fixtures/freeswitch/README.md, observation 11 and the h_* scenarios): the cap is a
 * sched_hangup with 1 s granularity, billsec counts whole epoch seconds, billmsec can pass the cap.
 */
describe('billing what FreeSWITCH reports, against the reservation', () => {
  const perSecond = rule({ ratePerMin: parseMoney('0.06'), initialIncrement: 1, subsequentIncrement: 1, decimals: 6 });
  const sixBySix = rule({ ratePerMin: parseMoney('0.06'), initialIncrement: 6, subsequentIncrement: 6, decimals: 6 });
  const fsCases = [
    { name: 'd_cap (cap 5)', cap: 5, billsec: 5, billmsec: 4520 },
    { name: 'h_sched_broadcast_warning (cap 12)', cap: 12, billsec: 12, billmsec: 12020 },
  ];

  for (const c of fsCases) {
    it(`${c.name}: billsec ${c.billsec} (billmsec ${c.billmsec}) is billed as the cap and costs exactly the reservation`, () => {
      for (const r of [perSecond, sixBySix, rule()]) {
        const reserved = cost(r, c.cap);
        const billed = billedSecondsFor(c.billsec, c.cap);
        expect(billed).toBe(c.cap);
        expect(cost(r, billed)).toBe(reserved);
      }
    });
  }

  it('h_*: billmsec 12020 rounded up to the 1 s increment is 13 s and would cost more than the cap-12 reservation', () => {
    const cap = 12;
    const fromMsec = billableSeconds(perSecond, Math.ceil(12020 / 1000));
    expect(fromMsec).toBe(13);
    expect(cost(perSecond, fromMsec)).toBeGreaterThan(cost(perSecond, cap));
    // What ccard bills instead:
    expect(cost(perSecond, billedSecondsFor(12, cap))).toBe(cost(perSecond, cap));
    // Even a late report of billsec 13 is clamped to the cap.
    expect(billedSecondsFor(13, cap)).toBe(12);
  });

  it('a2: billmsec 10300 is reported as billsec 11 (whole epoch seconds); under a larger cap 11 s is billed', () => {
    expect(billedSecondsFor(11, 3600)).toBe(11);
    expect(cost(perSecond, billedSecondsFor(11, 3600))).toBe(parseMoney('0.011'));
    // and never more than a 10 s reservation would allow
    expect(cost(perSecond, billedSecondsFor(11, 10))).toBe(cost(perSecond, 10));
  });

  it('the reservation made by maxSeconds always covers the billed call', () => {
    const balance = parseMoney('0.012'); // 12 s at 0.001/s
    const cap = maxSeconds(perSecond, balance, 3600);
    expect(cap).toBe(12);
    const reserved = cost(perSecond, cap);
    for (const billsec of [0, 1, 11, 12, 13, 60]) {
      expect(cost(perSecond, billedSecondsFor(billsec, cap))).toBeLessThanOrEqual(reserved);
    }
  });

  it('billedSecondsFor ignores junk and truncates fractions', () => {
    expect(billedSecondsFor(Number.NaN, 10)).toBe(0);
    expect(billedSecondsFor(-3, 10)).toBe(0);
    expect(billedSecondsFor(4.9, 10)).toBe(4);
    expect(billedSecondsFor(Number.POSITIVE_INFINITY, 10)).toBe(0);
  });
});
