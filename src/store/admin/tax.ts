import { z } from 'zod';
import type { AdminContext } from './context.ts';
import { conflict, notFound, pgCode } from './errors.ts';
import { parseInput } from './input.ts';

/** 1% = 10 000 ppm; a profile's rate is at most 100%. */
export const PPM_PER_PERCENT = 10_000;
export const MAX_TAX_PPM = 100 * PPM_PER_PERCENT;

export const taxNameInput = z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . -');
// Looking a profile up (remove) accepts any name a profile may already have; only new names are restricted.
const existingTaxName = z.string().trim().min(1, 'is required').max(200);

/**
 * A percentage as a decimal string ("20", "7.25", at most 4 decimals), parsed exactly into parts per million
 * (7.25 -> 72 500): never through a float. JSON integers are accepted; a JSON fraction is not (it is a float).
 */
export const percentInput = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const fail = (why: string) => {
    ctx.addIssue({ code: 'custom', message: `invalid percent "${String(v)}": ${why}` });
    return z.NEVER;
  };
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return fail('send a decimal string such as "7.25", not a JSON number');
    v = String(v);
  }
  const text = v.trim();
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return fail(/^-\s*\d/.test(text) ? 'must not be negative' : 'expected a decimal number such as 20 or 7.25');
  const [, whole, frac = ''] = m;
  if (frac.length > 4) return fail('must have at most 4 decimals');
  const units = whole!.replace(/^0+(?=\d)/, '');
  if (units.length > 3) return fail('must be at most 100');
  const ppm = Number(units) * PPM_PER_PERCENT + Number(frac.padEnd(4, '0'));
  if (ppm > MAX_TAX_PPM) return fail('must be at most 100');
  return ppm;
});

export const taxAddSchema = z.object({ name: taxNameInput, percent: percentInput });
export type TaxAddInput = z.input<typeof taxAddSchema>;

export interface TaxProfile {
  name: string;
  ratePpm: number;
  /** How many series use the profile. */
  seriesCount: number;
}

/** The exact percentage of a ppm rate, without trailing zeros: 200 000 -> "20", 72 500 -> "7.25". */
export function formatPercent(ppm: number): string {
  const whole = Math.trunc(ppm / PPM_PER_PERCENT);
  const frac = String(ppm % PPM_PER_PERCENT).padStart(4, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : String(whole);
}

export const taxProfileJson = (t: TaxProfile) => ({
  name: t.name,
  percent: formatPercent(t.ratePpm),
  ratePpm: t.ratePpm,
  seriesCount: t.seriesCount,
});

export async function addTaxProfile(ctx: AdminContext, raw: TaxAddInput): Promise<TaxProfile> {
  const i = parseInput(taxAddSchema, raw);
  try {
    await ctx.pool.query('INSERT INTO tax_profiles (name, rate_ppm) VALUES ($1, $2)', [i.name, i.percent]);
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`tax profile "${i.name}" already exists`);
    throw err;
  }
  return { name: i.name, ratePpm: i.percent, seriesCount: 0 };
}

export async function listTaxProfiles(ctx: AdminContext): Promise<TaxProfile[]> {
  const r = await ctx.pool.query<{ name: string; rate_ppm: number; n: bigint }>(
    `SELECT tp.name, tp.rate_ppm, (SELECT count(*) FROM series s WHERE s.tax_profile_id = tp.id)::bigint AS n
     FROM tax_profiles tp ORDER BY tp.name`,
  );
  return r.rows.map((x) => ({ name: x.name, ratePpm: x.rate_ppm, seriesCount: Number(x.n) }));
}

/** Removes a profile no series uses (a series keeps its tax for its whole life). */
export async function removeTaxProfile(ctx: AdminContext, name: string): Promise<void> {
  const n = parseInput(existingTaxName, name, 'name');
  const users = await ctx.pool.query<{ series_number: string }>(
    `SELECT s.series_number FROM series s JOIN tax_profiles tp ON tp.id = s.tax_profile_id
     WHERE tp.name = $1 ORDER BY s.series_number LIMIT 6`,
    [n],
  );
  if (users.rowCount) throw inUse(n, users.rows.map((r) => r.series_number));
  try {
    const r = await ctx.pool.query('DELETE FROM tax_profiles WHERE name = $1', [n]);
    if (!r.rowCount) throw notFound(`unknown tax profile "${n}"`);
  } catch (err) {
    // A series created with it between the check and the delete: the foreign key refuses.
    if (pgCode(err) === '23503') throw inUse(n, []);
    throw err;
  }
}

function inUse(name: string, series: string[]) {
  const list = series.length > 5 ? `${series.slice(0, 5).join(', ')}, …` : series.join(', ');
  return conflict(`tax profile "${name}" is used by series${list ? ` ${list}` : ''}; it cannot be removed`);
}
