import { z } from 'zod';
import { MoneyFormatError, parseMoney, type Micros } from '../../money/money.ts';
import { invalid } from './errors.ts';

/**
 * Input schemas shared by the CLI (every value arrives as a string) and the API (JSON). Whole numbers may come
 * as digits or JSON integers; amounts must be decimal strings ("10", "4.37") so no float ever carries money.
 */
export const wholeNumber = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    z
      .number({ error: 'must be a whole number' })
      .int('must be a whole number')
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );

const money = (check: (m: Micros) => string | undefined) =>
  z.string().transform((s, ctx) => {
    try {
      const m = parseMoney(s);
      const why = check(m);
      if (why) {
        ctx.addIssue({ code: 'custom', message: `invalid amount "${s}": ${why}` });
        return z.NEVER;
      }
      return m;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof MoneyFormatError ? err.message : String(err) });
      return z.NEVER;
    }
  });

export const anyMoney = money(() => undefined);
export const nonNegativeMoney = money((m) => (m < 0n ? 'must not be negative' : undefined));
export const positiveMoney = money((m) => (m <= 0n ? 'must be greater than zero' : undefined));
export const nonZeroMoney = money((m) => (m === 0n ? 'must not be zero' : undefined));

const MIN_DATE_MS = Date.UTC(1900, 0, 1);
const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export const dateInput = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const d = v instanceof Date ? v : new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `invalid date "${String(v)}": expected ISO 8601, e.g. 2026-12-31` });
    return z.NEVER;
  }
  // PostgreSQL stores 4713 BC to 294276 AD and JavaScript more; no card, call or rate lives outside these years.
  if (d.getTime() < MIN_DATE_MS || d.getTime() > MAX_DATE_MS) {
    ctx.addIssue({ code: 'custom', message: `invalid date "${String(v)}": must be between 1900-01-01 and 9999-12-31` });
    return z.NEVER;
  }
  return d;
});

export const booleanInput = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((s) => ['true', '1', 'yes'].includes(s)),
]);

export const serialInput = z.string().trim().regex(/^\d{1,9}-\d{9}$/, 'must look like <series number>-<9 digits>');
export const seriesNumberInput = z.string().trim().regex(/^\d{1,9}$/, 'must be 1 to 9 digits');
export const phoneInput = z.string().trim().regex(/^\+?\d{3,20}$/, 'must be 3 to 20 digits, optionally after +');

export const pageInput = {
  limit: wholeNumber(1, 1000).default(50),
  offset: wholeNumber(0, Number.MAX_SAFE_INTEGER).default(0),
};

/** Parses with a schema; the first problem becomes one INVALID_INPUT message naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, label?: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = [...(label ? [label] : []), ...issue.path.map(String)].join('.');
  throw invalid(field ? `${field}: ${issue.message}` : issue.message);
}

/** Drops undefined values so that "option not given" never overrides a default. */
export function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
