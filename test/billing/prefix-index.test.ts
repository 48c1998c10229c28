import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PrefixIndex, type RateEntry } from '../../src/billing/prefix-index.ts';

let nextId = 1;
function rate(prefix: string, over: Partial<RateEntry> = {}): RateEntry {
  return {
    id: String(nextId++),
    rateTableId: '1',
    prefix,
    destination: `dest ${prefix}`,
    ratePerMin: 100_000n,
    connectFee: 0n,
    initialIncrement: 60,
    subsequentIncrement: 60,
    effectiveFrom: null,
    effectiveTo: null,
    ...over,
  };
}

const d = (iso: string) => new Date(iso);

describe('PrefixIndex', () => {
  it('finds the longest matching prefix', () => {
    const idx = PrefixIndex.build([rate('1'), rate('44'), rate('447'), rate('4477'), rate('33')]);
    expect(idx.lookup('447700900123')?.prefix).toBe('4477');
    expect(idx.lookup('447800900123')?.prefix).toBe('447');
    expect(idx.lookup('442079460000')?.prefix).toBe('44');
    expect(idx.lookup('15551234567')?.prefix).toBe('1');
    expect(idx.lookup('44')?.prefix).toBe('44');
    expect(idx.lookup('4')).toBeUndefined();
    expect(idx.size).toBe(5);
    expect(idx.prefixCount).toBe(5);
  });

  it('returns undefined for no match, an empty index, and anything but digits', () => {
    const idx = PrefixIndex.build([rate('44')]);
    expect(idx.lookup('33123456')).toBeUndefined();
    expect(idx.lookup('')).toBeUndefined();
    expect(idx.lookup('+44123')).toBeUndefined();
    expect(idx.lookup('44 123')).toBeUndefined();
    expect(idx.lookup('4412a')).toBeUndefined();
    expect(idx.lookup('44:')).toBeUndefined(); // ':' is '9' + 1: no digit arithmetic leaks
    expect(idx.lookup('4'.repeat(33))).toBeUndefined();
    expect(PrefixIndex.build([]).lookup('123')).toBeUndefined();
  });

  it('chooses the rate effective at the given instant; windows are [from, to)', () => {
    const old = rate('44', { ratePerMin: 1n, effectiveTo: d('2025-01-01T00:00:00Z') });
    const cur = rate('44', { ratePerMin: 2n, effectiveFrom: d('2025-01-01T00:00:00Z'), effectiveTo: d('2025-07-01T00:00:00Z') });
    const next = rate('44', { ratePerMin: 3n, effectiveFrom: d('2025-07-01T00:00:00Z') });
    const idx = PrefixIndex.build([next, old, cur]);
    expect(idx.lookup('4420', d('2024-12-31T23:59:59.999Z'))?.ratePerMin).toBe(1n);
    expect(idx.lookup('4420', d('2025-01-01T00:00:00Z'))?.ratePerMin).toBe(2n);
    expect(idx.lookup('4420', d('2025-06-30T23:59:59Z').getTime())?.ratePerMin).toBe(2n);
    expect(idx.lookup('4420', d('2025-07-01T00:00:00Z'))?.ratePerMin).toBe(3n);
    expect(idx.lookup('4420', d('2099-01-01T00:00:00Z'))?.ratePerMin).toBe(3n);
  });

  it('falls back to a shorter prefix when the longest has no rate in effect', () => {
    const idx = PrefixIndex.build([
      rate('44', { ratePerMin: 10n }),
      rate('447', { ratePerMin: 20n, effectiveFrom: d('2025-03-01T00:00:00Z') }),
      rate('4477', { ratePerMin: 30n, effectiveTo: d('2025-02-01T00:00:00Z') }),
    ]);
    expect(idx.lookup('44770000', d('2025-01-15T00:00:00Z'))?.ratePerMin).toBe(30n);
    expect(idx.lookup('44770000', d('2025-02-15T00:00:00Z'))?.ratePerMin).toBe(10n); // 4477 expired, 447 not yet
    expect(idx.lookup('44770000', d('2025-03-15T00:00:00Z'))?.ratePerMin).toBe(20n);
  });

  it('no rate in effect anywhere: undefined (the caller refuses the call)', () => {
    const idx = PrefixIndex.build([rate('44', { effectiveFrom: d('2030-01-01T00:00:00Z') })]);
    expect(idx.lookup('44123', d('2025-01-01T00:00:00Z'))).toBeUndefined();
  });

  it('overlapping windows: the latest effective_from wins', () => {
    const idx = PrefixIndex.build([
      rate('33', { ratePerMin: 1n }),
      rate('33', { ratePerMin: 2n, effectiveFrom: d('2025-01-01T00:00:00Z') }),
    ]);
    expect(idx.lookup('331', d('2024-06-01T00:00:00Z'))?.ratePerMin).toBe(1n);
    expect(idx.lookup('331', d('2025-06-01T00:00:00Z'))?.ratePerMin).toBe(2n);
  });

  it('handles 20-digit prefixes and refuses invalid ones at build time', () => {
    const long = '12345678901234567890';
    const idx = PrefixIndex.build([rate(long), rate('1')]);
    expect(idx.lookup(long + '99')?.prefix).toBe(long);
    expect(idx.lookup('1234567890123456789')?.prefix).toBe('1');
    expect(() => PrefixIndex.build([rate('1'.repeat(21))])).toThrow(RangeError);
    expect(() => PrefixIndex.build([rate('')])).toThrow(RangeError);
    expect(() => PrefixIndex.build([rate('4a')])).toThrow(RangeError);
  });

  it('agrees with a brute-force longest-prefix search (property)', () => {
    const instant = fc.integer({ min: 0, max: 10 }).map((n) => Date.UTC(2025, 0, 1 + n));
    const entryArb = fc.record({
      prefix: fc.stringMatching(/^[0-3]{1,5}$/),
      from: fc.option(fc.integer({ min: 0, max: 10 }), { nil: null }),
      len: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 40 }), fc.array(fc.stringMatching(/^[0-3]{1,7}$/), { minLength: 1, maxLength: 20 }), instant, (entries, numbers, t) => {
        const rates = entries.map((e, i) =>
          rate(e.prefix, {
            id: String(i + 1),
            effectiveFrom: e.from === null ? null : new Date(Date.UTC(2025, 0, 1 + e.from)),
            effectiveTo: e.from === null || e.len === null ? null : new Date(Date.UTC(2025, 0, 1 + e.from + e.len)),
          }),
        );
        const idx = PrefixIndex.build(rates);
        for (const n of numbers) {
          let expected: RateEntry | undefined;
          for (let len = n.length; len > 0 && !expected; len--) {
            const p = n.slice(0, len);
            const live = rates.filter(
              (r) =>
                r.prefix === p &&
                (r.effectiveFrom === null || r.effectiveFrom.getTime() <= t) &&
                (r.effectiveTo === null || t < r.effectiveTo.getTime()),
            );
            live.sort(
              (a, b) =>
                (b.effectiveFrom?.getTime() ?? -Infinity) - (a.effectiveFrom?.getTime() ?? -Infinity) || Number(b.id) - Number(a.id),
            );
            expected = live[0];
          }
          expect(idx.lookup(n, t)).toBe(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the rate objects it was given', () => {
    const r = rate('7');
    expect(PrefixIndex.build([r]).lookup('71')).toBe(r);
    expect(PrefixIndex.build([r]).rates()).toEqual([r]);
  });
});
