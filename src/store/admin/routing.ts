import { z } from 'zod';
import { withTransaction } from '../db.ts';
import { PROMPT_NAMES } from '../../flow/prompts.ts';
import { CARRIER_COLUMNS, carrierFromRow } from '../routing.ts';
import type { Carrier, RoutingMode } from '../../billing/routing.ts';
import type { AdminContext } from './context.ts';
import { conflict, invalid, notFound, pgCode } from './errors.ts';
import { booleanInput, parseInput, serialInput, seriesNumberInput, wholeNumber } from './input.ts';

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const nameInput = z.string().trim().regex(NAME_RE, 'must be 1 to 64 letters, digits or _ . -');

// ---- carriers -------------------------------------------------------------------------------------------------

export const carrierAddSchema = z.object({
  name: nameInput,
  gateway: nameInput,
  /** The buy-rate table (created empty when missing); default "buy-<name>". */
  buyRates: z.string().trim().min(1).max(200).optional(),
  maxCalls: wholeNumber(1, 100_000).optional(),
  prefixStrip: wholeNumber(0, 10).default(0),
  prefixAdd: z.string().trim().regex(/^\d{0,10}$/, 'must be up to 10 digits').default(''),
});
export type CarrierAddInput = z.input<typeof carrierAddSchema>;

export const carrierEditSchema = z
  .object({
    gateway: nameInput.optional(),
    buyRates: z.string().trim().min(1).max(200).optional(),
    maxCalls: wholeNumber(1, 100_000).nullable().optional(),
    prefixStrip: wholeNumber(0, 10).optional(),
    prefixAdd: z.string().trim().regex(/^\d{0,10}$/, 'must be up to 10 digits').optional(),
    enabled: booleanInput.optional(),
  })
  .strict();
export type CarrierEditInput = z.input<typeof carrierEditSchema>;

export interface CarrierView extends Carrier {
  buyRates: string;
  buyRateCount: number;
  /** Plans with an entry naming it. */
  plans: string[];
}

export const carrierJson = (c: CarrierView) => ({
  name: c.name,
  gateway: c.gateway,
  buyRates: c.buyRates,
  buyRateCount: c.buyRateCount,
  maxCalls: c.maxCalls,
  prefixStrip: c.prefixStrip,
  prefixAdd: c.prefixAdd,
  enabled: c.enabled,
  plans: c.plans,
});

const CARRIER_VIEW = `SELECT ${CARRIER_COLUMNS}, t.name AS buy_rates,
    (SELECT count(*) FROM rates r WHERE r.rate_table_id = c.rate_table_id)::int AS buy_rate_count,
    ARRAY(SELECT DISTINCT p.name FROM routing_entry_carriers ec JOIN routing_entries e ON e.id = ec.entry_id
          JOIN routing_plans p ON p.id = e.plan_id WHERE ec.carrier_id = c.id ORDER BY p.name) AS plans
  FROM carriers c JOIN rate_tables t ON t.id = c.rate_table_id`;

type CarrierViewRow = Parameters<typeof carrierFromRow>[0] & { buy_rates: string; buy_rate_count: number; plans: string[] };
const viewFromRow = (r: CarrierViewRow): CarrierView => ({ ...carrierFromRow(r), buyRates: r.buy_rates, buyRateCount: r.buy_rate_count, plans: r.plans });

async function ensureRateTable(db: Pick<AdminContext['pool'], 'query'>, name: string): Promise<string> {
  await db.query('INSERT INTO rate_tables (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
  const r = await db.query<{ id: string }>('SELECT id::text AS id FROM rate_tables WHERE name = $1', [name]);
  return r.rows[0]!.id;
}

export async function addCarrier(ctx: AdminContext, raw: CarrierAddInput): Promise<CarrierView> {
  const i = parseInput(carrierAddSchema, raw);
  const table = i.buyRates ?? `buy-${i.name}`;
  try {
    await withTransaction(ctx.pool, async (c) => {
      const tableId = await ensureRateTable(c, table);
      await c.query(
        `INSERT INTO carriers (name, gateway, rate_table_id, max_calls, prefix_strip, prefix_add) VALUES ($1, $2, $3, $4, $5, $6)`,
        [i.name, i.gateway, tableId, i.maxCalls ?? null, i.prefixStrip, i.prefixAdd],
      );
    });
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`carrier "${i.name}" already exists`);
    throw err;
  }
  return getCarrier(ctx, i.name);
}

export async function listCarriers(ctx: AdminContext): Promise<CarrierView[]> {
  const r = await ctx.pool.query<CarrierViewRow>(`${CARRIER_VIEW} ORDER BY c.name`);
  return r.rows.map(viewFromRow);
}

export async function getCarrier(ctx: AdminContext, name: string): Promise<CarrierView> {
  const n = parseInput(z.string().trim().min(1).max(64), name, 'name');
  const r = await ctx.pool.query<CarrierViewRow>(`${CARRIER_VIEW} WHERE c.name = $1`, [n]);
  if (!r.rows[0]) throw notFound(`unknown carrier "${n}"`);
  return viewFromRow(r.rows[0]);
}

export async function editCarrier(ctx: AdminContext, name: string, raw: CarrierEditInput): Promise<CarrierView> {
  const current = await getCarrier(ctx, name);
  const i = parseInput(carrierEditSchema, raw);
  await withTransaction(ctx.pool, async (c) => {
    const tableId = i.buyRates !== undefined ? await ensureRateTable(c, i.buyRates) : current.rateTableId;
    await c.query(
      `UPDATE carriers SET gateway = $2, rate_table_id = $3, max_calls = $4, prefix_strip = $5, prefix_add = $6, enabled = $7
       WHERE id = $1`,
      [
        current.id,
        i.gateway ?? current.gateway,
        tableId,
        i.maxCalls === undefined ? current.maxCalls : i.maxCalls,
        i.prefixStrip ?? current.prefixStrip,
        i.prefixAdd ?? current.prefixAdd,
        i.enabled ?? current.enabled,
      ],
    );
  });
  return getCarrier(ctx, current.name);
}

/** Removes a carrier no plan names and no call used (one with history is disabled instead: `--enabled false`). */
export async function removeCarrier(ctx: AdminContext, name: string): Promise<void> {
  const c = await getCarrier(ctx, name);
  if (c.plans.length) throw conflict(`carrier "${c.name}" is used by routing plan ${c.plans.join(', ')}; remove it from the plan first`);
  try {
    await ctx.pool.query('DELETE FROM carriers WHERE id = $1', [c.id]);
  } catch (err) {
    if (pgCode(err) === '23503') throw conflict(`carrier "${c.name}" has calls; disable it instead (carrier edit ${c.name} --enabled false)`);
    throw err;
  }
}

// ---- routing plans --------------------------------------------------------------------------------------------

const promptInput = z
  .string()
  .trim()
  .refine((p) => (PROMPT_NAMES as string[]).includes(p), { message: `must be one of the prompts: ${PROMPT_NAMES.join(', ')}` });

export const planAddSchema = z.object({ name: nameInput, lossPrompt: promptInput.default('destination_unprofitable') });
export type PlanAddInput = z.input<typeof planAddSchema>;
export const planEditSchema = z.object({ lossPrompt: promptInput.optional() }).strict();

export const entryCarrierSchema = z.object({
  carrier: z.string().trim().min(1).max(64),
  position: wholeNumber(0, 1000).optional(),
  weight: wholeNumber(1, 1000).default(1),
});
export const entrySetSchema = z.object({
  prefix: z.string().trim().regex(/^\d{0,20}$/, 'must be up to 20 digits ("" or "default": every number)'),
  mode: z.enum(['ordered', 'lcr', 'block']),
  carriers: z.array(entryCarrierSchema).max(50).default([]),
});
export type EntrySetInput = z.input<typeof entrySetSchema>;

/**
 * The CLI's carrier list: "a,b,c" tries a then b then c; "a|b" puts a and b in the same place (traffic shared);
 * "a*3" gives a weight 3 (default 1) within its place.
 */
export function parseCarrierList(spec: string): Array<{ carrier: string; position: number; weight: number }> {
  const out: Array<{ carrier: string; position: number; weight: number }> = [];
  spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .forEach((place, position) => {
      for (const item of place.split('|').map((s) => s.trim())) {
        const m = /^([A-Za-z0-9_.-]{1,64})(?:\*(\d{1,4}))?$/.exec(item);
        if (!m) throw invalid(`carriers: "${item}" is not a carrier name (optionally *weight)`);
        const weight = m[2] === undefined ? 1 : Number(m[2]);
        if (weight < 1 || weight > 1000) throw invalid(`carriers: weight of "${m[1]}" must be 1..1000`);
        out.push({ carrier: m[1]!, position, weight });
      }
    });
  return out;
}

export interface PlanEntryView {
  prefix: string;
  mode: RoutingMode;
  carriers: Array<{ carrier: string; position: number; weight: number }>;
}

export interface PlanView {
  id: string;
  name: string;
  lossPrompt: string;
  entries: PlanEntryView[];
  series: string[];
  cardCount: number;
}

export const planJson = (p: PlanView) => ({
  name: p.name,
  lossPrompt: p.lossPrompt,
  entries: p.entries.map((e) => ({ ...e, prefix: e.prefix === '' ? 'default' : e.prefix })),
  series: p.series,
  cardCount: p.cardCount,
});

async function planId(ctx: AdminContext, name: string): Promise<{ id: string; name: string }> {
  const n = parseInput(z.string().trim().min(1).max(64), name, 'plan');
  const r = await ctx.pool.query<{ id: string }>('SELECT id::text AS id FROM routing_plans WHERE name = $1', [n]);
  if (!r.rows[0]) throw notFound(`unknown routing plan "${n}"`);
  return { id: r.rows[0].id, name: n };
}

export async function addPlan(ctx: AdminContext, raw: PlanAddInput): Promise<PlanView> {
  const i = parseInput(planAddSchema, raw);
  try {
    await ctx.pool.query('INSERT INTO routing_plans (name, loss_prompt) VALUES ($1, $2)', [i.name, i.lossPrompt]);
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`routing plan "${i.name}" already exists`);
    throw err;
  }
  return getPlan(ctx, i.name);
}

export async function editPlan(ctx: AdminContext, name: string, raw: z.input<typeof planEditSchema>): Promise<PlanView> {
  const p = await planId(ctx, name);
  const i = parseInput(planEditSchema, raw);
  if (i.lossPrompt !== undefined) await ctx.pool.query('UPDATE routing_plans SET loss_prompt = $2 WHERE id = $1', [p.id, i.lossPrompt]);
  return getPlan(ctx, p.name);
}

export async function listPlans(ctx: AdminContext): Promise<Array<{ name: string; lossPrompt: string; entries: number; series: number }>> {
  const r = await ctx.pool.query<{ name: string; loss_prompt: string; entries: number; series: number }>(
    `SELECT p.name, p.loss_prompt,
       (SELECT count(*) FROM routing_entries e WHERE e.plan_id = p.id)::int AS entries,
       (SELECT count(*) FROM series s WHERE s.routing_plan_id = p.id)::int AS series
     FROM routing_plans p ORDER BY p.name`,
  );
  return r.rows.map((x) => ({ name: x.name, lossPrompt: x.loss_prompt, entries: x.entries, series: x.series }));
}

export async function getPlan(ctx: AdminContext, name: string): Promise<PlanView> {
  const p = await planId(ctx, name);
  const head = await ctx.pool.query<{ loss_prompt: string; series: string[]; cards: number }>(
    `SELECT loss_prompt,
       ARRAY(SELECT series_number FROM series WHERE routing_plan_id = $1 ORDER BY series_number) AS series,
       (SELECT count(*) FROM cards WHERE routing_plan_id = $1)::int AS cards
     FROM routing_plans WHERE id = $1`,
    [p.id],
  );
  const entries = await ctx.pool.query<{ prefix: string; mode: RoutingMode; carriers: PlanEntryView['carriers'] | null }>(
    `SELECT e.prefix, e.mode,
       (SELECT json_agg(json_build_object('carrier', c.name, 'position', ec.position, 'weight', ec.weight) ORDER BY ec.position, c.name)
          FROM routing_entry_carriers ec JOIN carriers c ON c.id = ec.carrier_id WHERE ec.entry_id = e.id) AS carriers
     FROM routing_entries e WHERE e.plan_id = $1 ORDER BY e.prefix`,
    [p.id],
  );
  const h = head.rows[0]!;
  return {
    id: p.id,
    name: p.name,
    lossPrompt: h.loss_prompt,
    entries: entries.rows.map((e) => ({ prefix: e.prefix, mode: e.mode, carriers: e.carriers ?? [] })),
    series: h.series,
    cardCount: h.cards,
  };
}

/** Removes a plan no series or card names. */
export async function removePlan(ctx: AdminContext, name: string): Promise<void> {
  const p = await getPlan(ctx, name);
  if (p.series.length || p.cardCount) {
    throw conflict(`routing plan "${p.name}" is used by ${p.series.length} series and ${p.cardCount} cards; assign them another plan first`);
  }
  try {
    await ctx.pool.query('DELETE FROM routing_plans WHERE id = $1', [p.id]);
  } catch (err) {
    if (pgCode(err) === '23503') throw conflict(`routing plan "${p.name}" is in use`);
    throw err;
  }
}

/** Adds or replaces the plan's entry for a prefix ("" or "default": every number without a longer entry). */
export async function setEntry(ctx: AdminContext, planName: string, raw: EntrySetInput): Promise<PlanView> {
  const p = await planId(ctx, planName);
  const input = { ...(raw as object), prefix: (raw as { prefix?: unknown }).prefix === 'default' ? '' : (raw as { prefix?: unknown }).prefix };
  const i = parseInput(entrySetSchema, input);
  if (i.mode === 'ordered' && i.carriers.length === 0) throw invalid('carriers: an ordered entry needs at least one carrier');
  if (i.mode === 'block' && i.carriers.length) throw invalid('carriers: a blocking entry names no carrier');
  const names = i.carriers.map((c) => c.carrier);
  if (new Set(names).size !== names.length) throw invalid('carriers: a carrier is listed twice');
  await withTransaction(ctx.pool, async (c) => {
    const ids = await c.query<{ id: string; name: string }>('SELECT id::text AS id, name FROM carriers WHERE name = ANY($1)', [names]);
    const byName = new Map(ids.rows.map((r) => [r.name, r.id]));
    const missing = names.filter((n) => !byName.has(n));
    if (missing.length) throw notFound(`unknown carrier ${missing.map((m) => `"${m}"`).join(', ')}`);
    await c.query('DELETE FROM routing_entries WHERE plan_id = $1 AND prefix = $2', [p.id, i.prefix]);
    const e = await c.query<{ id: string }>('INSERT INTO routing_entries (plan_id, prefix, mode) VALUES ($1, $2, $3) RETURNING id::text AS id', [
      p.id,
      i.prefix,
      i.mode,
    ]);
    for (const [k, ec] of i.carriers.entries()) {
      await c.query('INSERT INTO routing_entry_carriers (entry_id, carrier_id, position, weight) VALUES ($1, $2, $3, $4)', [
        e.rows[0]!.id,
        byName.get(ec.carrier),
        ec.position ?? k,
        ec.weight,
      ]);
    }
  });
  return getPlan(ctx, p.name);
}

export async function removeEntry(ctx: AdminContext, planName: string, prefix: string): Promise<void> {
  const p = await planId(ctx, planName);
  const px = prefix === 'default' ? '' : prefix.trim();
  const r = await ctx.pool.query('DELETE FROM routing_entries WHERE plan_id = $1 AND prefix = $2', [p.id, px]);
  if (!r.rowCount) throw notFound(`routing plan "${p.name}" has no entry for ${px === '' ? 'default' : `prefix ${px}`}`);
}

export const assignSchema = z
  .object({
    /** A plan name; "none" clears it (a card: back to its series' plan, as "series"). */
    plan: z.string().trim().min(1).max(64),
    series: seriesNumberInput.optional(),
    card: serialInput.optional(),
  })
  .refine((v) => (v.series === undefined) !== (v.card === undefined), { message: 'name exactly one of series or card' });

/**
 * Names the routing plan of a series, or of one card (overriding its series'). "none" (or "series" for a card)
 * clears it: the series then uses the access number's gateway, the card its series' plan.
 */
export async function assignPlan(ctx: AdminContext, raw: z.input<typeof assignSchema>): Promise<{ plan: string | null; series?: string; card?: string }> {
  const i = parseInput(assignSchema, raw);
  const clear = i.plan === 'none' || i.plan === 'series';
  const id = clear ? null : (await planId(ctx, i.plan)).id;
  const r = i.series
    ? await ctx.pool.query('UPDATE series SET routing_plan_id = $2 WHERE series_number = $1', [i.series, id])
    : await ctx.pool.query('UPDATE cards SET routing_plan_id = $2 WHERE serial = $1', [i.card, id]);
  if (!r.rowCount) throw notFound(i.series ? `unknown series ${i.series}` : `unknown card ${i.card}`);
  return { plan: clear ? null : i.plan, ...(i.series && { series: i.series }), ...(i.card && { card: i.card }) };
}
