import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normaliseDestination, toE164, type NumberPlan } from '../../src/flow/number.ts';

const NANP: NumberPlan = {
  countryCode: '1',
  nationalPrefix: '1',
  minDigits: 11,
  maxDigits: 15,
  allowedPrefixes: [],
  deniedPrefixes: ['1900', '1976'],
};
const UK: NumberPlan = { ...NANP, countryCode: '44', nationalPrefix: '0', deniedPrefixes: ['449'] };
const ES: NumberPlan = { ...NANP, countryCode: '34', nationalPrefix: '', deniedPrefixes: [] };

describe('toE164', () => {
  it.each([
    ['+15557654321', NANP, '15557654321'],
    ['0015557654321', NANP, '15557654321'],
    ['011442079460000', NANP, '442079460000'],
    ['15557654321', NANP, '15557654321'], // national prefix 1 + 10 digits
    ['5557654321', NANP, '15557654321'], // bare national
    ['00442079460000', UK, '442079460000'],
    ['02079460000', UK, '442079460000'], // national prefix 0
    ['01134960000', UK, '441134960000'], // 011 is Leeds in the UK, not an international prefix
    ['2079460000', UK, '442079460000'],
    ['912345678', ES, '34912345678'], // no national prefix: bare = national
    ['0033123456789', ES, '33123456789'],
  ])('%s with cc %s -> %s', (entry, plan, e164) => {
    expect(toE164(entry, plan)).toBe(e164);
  });

  it.each(['', '+', '1555;rm', '1555 123', '*123', '12#3', '++1555', '1e10', '١٢٣٤٥٦٧٨٩'])('refuses %j', (entry) => {
    expect(toE164(entry, NANP)).toBeUndefined();
  });
});

describe('normaliseDestination', () => {
  it('accepts a number within the length bounds', () => {
    expect(normaliseDestination('5557654321', NANP)).toEqual({ ok: true, number: '15557654321' });
  });

  it.each([
    ['1234', 'too short'],
    ['+1234567890123456', 'too long'],
    ['000', 'a bare 00 leaves nothing'],
    ['00012345678', 'E.164 never starts with 0'],
  ])('%s is invalid (%s)', (entry) => {
    expect(normaliseDestination(entry, NANP)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('denied prefixes apply after normalisation, in every form', () => {
    for (const entry of ['19005551234', '9005551234', '+19005551234', '0019005551234', '01119765551234']) {
      expect(normaliseDestination(entry, NANP)).toEqual({ ok: false, reason: 'not_allowed' });
    }
    expect(normaliseDestination('09012345678', UK)).toEqual({ ok: false, reason: 'not_allowed' });
  });

  it('a non-empty allow list admits only its prefixes', () => {
    const plan = { ...NANP, allowedPrefixes: ['44', '33'] };
    expect(normaliseDestination('5557654321', plan)).toEqual({ ok: false, reason: 'not_allowed' });
    expect(normaliseDestination('011442079460000', plan)).toEqual({ ok: true, number: '442079460000' });
  });

  it('property: the result is always digits within bounds, and E.164 round-trips through + and 00', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[1-9]\d{10,14}$/), (e164) => {
        for (const entry of [`+${e164}`, `00${e164}`, `011${e164}`]) {
          const r = normaliseDestination(entry, NANP);
          const denied = NANP.deniedPrefixes.some((p) => e164.startsWith(p));
          expect(r).toEqual(denied ? { ok: false, reason: 'not_allowed' } : { ok: true, number: e164 });
        }
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 25 }), fc.constantFrom(NANP, UK, ES), (entry, plan) => {
        const r = normaliseDestination(entry, plan);
        if (r.ok) {
          expect(r.number).toMatch(/^[1-9]\d*$/);
          expect(r.number.length).toBeGreaterThanOrEqual(plan.minDigits);
          expect(r.number.length).toBeLessThanOrEqual(plan.maxDigits);
          expect(entry).toMatch(/^\+?\d+$/);
        }
      }),
    );
  });
});
