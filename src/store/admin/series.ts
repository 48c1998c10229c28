import { z } from 'zod';
import { INITIAL_CARD_STATUSES } from '../cards.ts';
import { withTransaction } from '../db.ts';
import type { Micros } from '../../money/money.ts';
import type { AdminContext } from './context.ts';
import { conflict, invalid, notFound, pgCode } from './errors.ts';
import { booleanInput, dateInput, nonNegativeMoney, parseInput, seriesNumberInput, wholeNumber } from './input.ts';
import { generateCards, type OnGenerationProgress } from './card-gen.ts';
import { resellerScope } from './scope.ts';
import { changeWholesale, resellerIdByName } from './resellers.ts';

export const MAX_SERIES_CARDS = 10_000_000;

export const seriesCreateSchema = z.object({
  name: z.string().trim().min(1, 'is required').max(200),
  number: seriesNumberInput,
  count: wholeNumber(1, MAX_SERIES_CARDS),
  balance: nonNegativeMoney.default(0n),
  currency: z.string().trim().regex(/^[A-Za-z]{3}$/, 'must be a 3-letter ISO code').transform((s) => s.toUpperCase()).optional(),
  pinLength: wholeNumber(8, 20).default(10),
  status: z.enum(INITIAL_CARD_STATUSES).default('pending'),
  rateTable: z.string().trim().min(1, 'is required'),
  taxProfile: z.string().trim().min(1).optional(),
  activationFee: nonNegativeMoney.default(0n),
  maintenanceFee: nonNegativeMoney.default(0n),
  maintenanceHours: wholeNumber(1, 1_000_000).optional(),
  expiryDate: dateInput.optional(),
  expiryDays: wholeNumber(1, 100_000).optional(),
  maxCalls: wholeNumber(1, 1000).default(1),
  selfcare: booleanInput.default(false),
  notes: z.string().max(2000).default(''),
  /** The reseller that owns the series (operator only; a reseller's own series are always its own). */
  reseller: z.string().trim().min(1).max(64).optional(),
});
export type SeriesCreateInput = z.input<typeof seriesCreateSchema>;

export const seriesEditSchema = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    status: z.enum(['active', 'stopped', 'deleted']).optional(),
    notes: z.string().max(2000).optional(),
    activationFee: nonNegativeMoney.optional(),
    maintenanceFee: nonNegativeMoney.optional(),
    maintenanceHours: wholeNumber(1, 1_000_000).nullable().optional(),
    expiryDate: dateInput.nullable().optional(),
    expiryDays: wholeNumber(1, 100_000).nullable().optional(),
    maxCalls: wholeNumber(1, 1000).optional(),
    selfcare: booleanInput.optional(),
    count: z.unknown().optional(),
  })
  .strict();
export type SeriesEditInput = z.input<typeof seriesEditSchema>;

export interface Series {
  id: string;
  number: string;
  name: string;
  count: number;
  currency: string;
  initialBalance: Micros;
  pinLength: number;
  initialStatus: string;
  rateTable: string;
  taxProfile: string | null;
  activationFee: Micros;
  maintenanceFee: Micros;
  maintenanceHours: number | null;
  expiryDate: Date | null;
  expiryDays: number | null;
  maxCalls: number;
  selfcare: boolean;
  status: string;
  notes: string;
  createdAt: Date;
  /** The reseller that owns the series (null: the operator) and the series' routing plan (null: none). */
  reseller: string | null;
  routingPlan: string | null;
}

interface SeriesRow {
  id: bigint;
  series_number: string;
  name: string;
  card_count: number;
  currency: string;
  initial_balance_micros: bigint;
  pin_length: number;
  initial_status: string;
  rate_table: string;
  tax_profile: string | null;
  activation_fee_micros: bigint;
  maintenance_fee_micros: bigint;
  maintenance_period_hours: number | null;
  expiry_date: Date | null;
  expiry_days: number | null;
  max_concurrent_calls: number;
  selfcare: boolean;
  status: string;
  notes: string;
  created_at: Date;
  reseller: string | null;
  routing_plan: string | null;
}

const SELECT_SERIES = `
  SELECT s.*, rt.name AS rate_table, tp.name AS tax_profile,
         (SELECT r.name FROM resellers r WHERE r.id = s.reseller_id) AS reseller,
         (SELECT p.name FROM routing_plans p WHERE p.id = s.routing_plan_id) AS routing_plan
  FROM series s JOIN rate_tables rt ON rt.id = s.rate_table_id LEFT JOIN tax_profiles tp ON tp.id = s.tax_profile_id`;

function toSeries(r: SeriesRow): Series {
  return {
    id: r.id.toString(),
    number: r.series_number,
    name: r.name,
    count: r.card_count,
    currency: r.currency,
    initialBalance: r.initial_balance_micros,
    pinLength: r.pin_length,
    initialStatus: r.initial_status,
    rateTable: r.rate_table,
    taxProfile: r.tax_profile,
    activationFee: r.activation_fee_micros,
    maintenanceFee: r.maintenance_fee_micros,
    maintenanceHours: r.maintenance_period_hours,
    expiryDate: r.expiry_date,
    expiryDays: r.expiry_days,
    maxCalls: r.max_concurrent_calls,
    selfcare: r.selfcare,
    status: r.status,
    notes: r.notes,
    createdAt: r.created_at,
    reseller: r.reseller,
    routingPlan: r.routing_plan,
  };
}

/** Creates a series and all of its cards in one transaction (see generateCards). */
export async function createSeries(
  ctx: AdminContext,
  raw: SeriesCreateInput,
  onProgress?: OnGenerationProgress,
): Promise<{ seriesId: string; number: string; count: number }> {
  const input = parseInput(seriesCreateSchema, raw);
  return withTransaction(ctx.pool, async (client) => {
    const rt = await client.query<{ id: bigint; currency: string }>('SELECT id, currency FROM rate_tables WHERE name = $1', [
      input.rateTable,
    ]);
    if (!rt.rowCount) throw notFound(`unknown rate table "${input.rateTable}"`);
    const currency = input.currency ?? rt.rows[0]!.currency;
    if (currency !== rt.rows[0]!.currency) {
      throw invalid(`rate table "${input.rateTable}" is in ${rt.rows[0]!.currency}, not ${currency}`);
    }
    let taxId: bigint | null = null;
    if (input.taxProfile) {
      const tp = await client.query<{ id: bigint }>('SELECT id FROM tax_profiles WHERE name = $1', [input.taxProfile]);
      if (!tp.rowCount) throw notFound(`unknown tax profile "${input.taxProfile}"`);
      taxId = tp.rows[0]!.id;
    }
    let seriesId: string;
    try {
      const ins = await client.query<{ id: bigint }>(
        `INSERT INTO series (name, series_number, card_count, currency, initial_balance_micros, pin_length, initial_status,
           rate_table_id, tax_profile_id, activation_fee_micros, maintenance_fee_micros, maintenance_period_hours,
           expiry_date, expiry_days, max_concurrent_calls, selfcare, notes)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) RETURNING id`,
        [
          input.name, input.number, input.count, currency, input.balance.toString(), input.pinLength, input.status,
          rt.rows[0]!.id, taxId, input.activationFee.toString(), input.maintenanceFee.toString(),
          input.maintenanceHours ?? null, input.expiryDate ?? null, input.expiryDays ?? null, input.maxCalls,
          input.selfcare, input.notes,
        ],
      );
      seriesId = ins.rows[0]!.id.toString();
    } catch (err) {
      if (pgCode(err) === '23505') throw conflict(`series ${input.number} already exists`);
      throw err;
    }
    // A reseller's series: its cards' value (count x balance) is drawn from the wholesale balance first, atomically.
    const scoped = resellerScope();
    if (scoped !== null && input.reseller !== undefined) throw invalid('reseller: set by your API key');
    const resellerId = scoped ?? (input.reseller !== undefined ? await resellerIdByName(client, input.reseller) : null);
    if (resellerId !== null) {
      const face = input.balance * BigInt(input.count);
      if (face > 0n) await changeWholesale(client, resellerId, face, 'generation', `series:${input.number}`, `${input.count} cards`);
      await client.query('UPDATE series SET reseller_id = $2 WHERE id = $1', [seriesId, resellerId]);
    }
    await generateCards(
      client,
      ctx.pinKeys,
      {
        seriesId,
        seriesNumber: input.number,
        count: input.count,
        pinLength: input.pinLength,
        status: input.status,
        currency,
        initialBalance: input.balance,
      },
      onProgress,
    );
    return { seriesId, number: input.number, count: input.count };
  });
}

export async function listSeries(ctx: AdminContext): Promise<Series[]> {
  const reseller = resellerScope();
  const r = await ctx.pool.query<SeriesRow>(
    `${SELECT_SERIES} ${reseller !== null ? 'WHERE s.reseller_id = $1' : ''} ORDER BY s.series_number`,
    reseller !== null ? [reseller] : [],
  );
  return r.rows.map(toSeries);
}

export interface SeriesDetail extends Series {
  cardsByStatus: Record<string, number>;
  totalBalance: Micros;
}

export async function getSeries(ctx: AdminContext, number: string): Promise<SeriesDetail> {
  const num = parseInput(seriesNumberInput, number, 'series');
  const r = await ctx.pool.query<SeriesRow>(`${SELECT_SERIES} WHERE s.series_number = $1`, [num]);
  if (!r.rowCount) throw notFound(`unknown series ${num}`);
  const s = toSeries(r.rows[0]!);
  // The sum stays NUMERIC (text here): a million cards at the largest balance exceed BIGINT.
  const stats = await ctx.pool.query<{ status: string; n: bigint; total: string | null }>(
    'SELECT status, count(*)::bigint AS n, sum(balance_micros)::text AS total FROM cards WHERE series_id = $1 GROUP BY status',
    [s.id],
  );
  const cardsByStatus: Record<string, number> = {};
  let totalBalance = 0n;
  for (const row of stats.rows) {
    cardsByStatus[row.status] = Number(row.n);
    totalBalance += BigInt(row.total ?? '0');
  }
  return { ...s, cardsByStatus, totalBalance };
}

/** Changes a series' settings. The card count can never change: the cards exist from creation. */
export async function editSeries(ctx: AdminContext, number: string, raw: SeriesEditInput): Promise<Series> {
  const num = parseInput(seriesNumberInput, number, 'series');
  const input = parseInput(seriesEditSchema, raw);
  if (input.count !== undefined) throw invalid('the card count of a series cannot change; create a new series instead');
  const sets: string[] = [];
  const values: unknown[] = [];
  const set = (col: string, v: unknown) => {
    values.push(v);
    sets.push(`${col} = $${values.length + 1}`);
  };
  if (input.name !== undefined) set('name', input.name);
  if (input.status !== undefined) set('status', input.status);
  if (input.notes !== undefined) set('notes', input.notes);
  if (input.activationFee !== undefined) set('activation_fee_micros', input.activationFee.toString());
  if (input.maintenanceFee !== undefined) set('maintenance_fee_micros', input.maintenanceFee.toString());
  if (input.maintenanceHours !== undefined) set('maintenance_period_hours', input.maintenanceHours);
  if (input.expiryDate !== undefined) set('expiry_date', input.expiryDate);
  if (input.expiryDays !== undefined) set('expiry_days', input.expiryDays);
  if (input.maxCalls !== undefined) set('max_concurrent_calls', input.maxCalls);
  if (input.selfcare !== undefined) set('selfcare', input.selfcare);
  if (sets.length === 0) throw invalid('nothing to change: give at least one setting');
  await withTransaction(ctx.pool, async (client) => {
    const old = await client.query<{ id: bigint; expiry_date: Date | null }>(
      'SELECT id, expiry_date FROM series WHERE series_number = $1 FOR UPDATE',
      [num],
    );
    if (!old.rowCount) throw notFound(`unknown series ${num}`);
    const { id, expiry_date: oldExpiry } = old.rows[0]!;
    await client.query(`UPDATE series SET ${sets.join(', ')} WHERE id = $1`, [id, ...values]);
    if (input.expiryDate !== undefined && oldExpiry !== null) {
      // A card's own expiry is NULL until activation copies the series date into it (see billing/lifecycle.ts):
      // cards that took the old series date follow the new one; a shorter expiry_days-based one is kept.
      await client.query('UPDATE cards SET expires_at = $2 WHERE series_id = $1 AND expires_at = $3', [
        id,
        input.expiryDate,
        oldExpiry,
      ]);
    }
  });
  const r = await ctx.pool.query<SeriesRow>(`${SELECT_SERIES} WHERE s.series_number = $1`, [num]);
  return toSeries(r.rows[0]!);
}
