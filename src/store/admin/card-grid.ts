import { z } from 'zod';
import type { LiveBalanceStore } from '../../live/live-balance.ts';
import type { AdminContext } from './context.ts';
import { invalid, notFound } from './errors.ts';
import { amountJson, isoOrNull } from './format.ts';
import { parseInput, serialInput, wholeNumber } from './input.ts';
import {
  CARD_COLUMNS,
  cardFilterSchema,
  cardJson,
  cardLimitsSchema,
  getCard,
  setCardLimits,
  setCardStatus,
  toCard,
  type Card,
  type CardRow,
} from './cards.ts';
import { CARD_STATUSES } from '../cards.ts';

/** Above this many matches the grid gives the planner's estimate instead of counting (flagged exact: false). */
export const EXACT_COUNT_LIMIT = 10_000;

export const GRID_SORTS = ['serial', 'balance', 'lastUsedAt'] as const;

export const cardGridSchema = cardFilterSchema.extend({
  sort: z.enum(GRID_SORTS, { error: `must be one of ${GRID_SORTS.join(', ')}` }).default('serial'),
  dir: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).default('asc'),
  limit: wholeNumber(1, 1000).default(50),
  offset: wholeNumber(0, 10_000_000).default(0),
});
export type CardGridInput = z.input<typeof cardGridSchema>;

export interface CardGridPage {
  items: Card[];
  total: number;
  /** False when `total` is the planner's estimate (more than EXACT_COUNT_LIMIT matches). */
  totalExact: boolean;
  hasMore: boolean;
}

/** The byte after the last character: "300-" .. "300." is every serial of series 300 (COLLATE "C"). */
const upperBound = (prefix: string) => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

// Each sort has an index (migrations/007_console.sql); id breaks ties so pages never overlap.
const ORDER: Record<(typeof GRID_SORTS)[number], Record<'asc' | 'desc', string>> = {
  serial: { asc: 'c.serial COLLATE "C" ASC', desc: 'c.serial COLLATE "C" DESC' },
  balance: { asc: 'c.balance_micros ASC, c.id ASC', desc: 'c.balance_micros DESC, c.id DESC' },
  lastUsedAt: { asc: 'c.last_used_at ASC NULLS FIRST, c.id ASC', desc: 'c.last_used_at DESC NULLS LAST, c.id DESC' },
};

/**
 * The WHERE clause. With `seriesAsRange` a series is also given as its serial range, so the serial index serves a
 * series sorted by serial; otherwise it is left out, because the planner multiplies the two (correlated)
 * selectivities and would underestimate the matches (the estimated total, and the plan).
 */
function gridWhere(f: z.output<typeof cardGridSchema>, seriesId: bigint | undefined, seriesAsRange: boolean): { where: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, ...v: unknown[]) => {
    let s = sql;
    for (const x of v) {
      params.push(x);
      s = s.replace('?', `$${params.length}`);
    }
    conds.push(s);
  };
  if (seriesId !== undefined) {
    const p = `${f.series}-`;
    add('c.series_id = ?', seriesId.toString());
    if (seriesAsRange) add('c.serial COLLATE "C" >= ? AND c.serial COLLATE "C" < ?', p, upperBound(p));
  }
  if (f.serial !== undefined) add('c.serial COLLATE "C" >= ? AND c.serial COLLATE "C" < ?', f.serial, upperBound(f.serial));
  if (f.status !== undefined) add('c.status = ?', f.status);
  if (f.minBalance !== undefined) add('c.balance_micros >= ?', f.minBalance.toString());
  if (f.maxBalance !== undefined) add('c.balance_micros <= ?', f.maxBalance.toString());
  if (f.lastUsedBefore !== undefined) add('c.last_used_at < ?', f.lastUsedBefore);
  if (f.lastUsedAfter !== undefined) add('c.last_used_at > ?', f.lastUsedAfter);
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

/**
 * One page of the card grid: filtered, sorted (by an indexed column), paged by limit/offset, with the number of
 * matches. Counting a million matches costs more than the page itself, so the count stops at EXACT_COUNT_LIMIT + 1
 * rows and, beyond, the planner's row estimate is answered with totalExact: false ("about 1,000,000").
 * Never reads more rows than offset + limit (+ the capped count).
 */
export async function cardGrid(ctx: AdminContext, raw: CardGridInput, opts: { exactCountLimit?: number } = {}): Promise<CardGridPage> {
  const exactLimit = opts.exactCountLimit ?? EXACT_COUNT_LIMIT;
  const f = parseInput(cardGridSchema, raw);
  if (f.minBalance !== undefined && f.maxBalance !== undefined && f.minBalance > f.maxBalance) throw invalid('minBalance must not be above maxBalance');
  let seriesId: bigint | undefined;
  if (f.series !== undefined) {
    const r = await ctx.pool.query<{ id: bigint }>('SELECT id FROM series WHERE series_number = $1', [f.series]);
    if (!r.rowCount) throw notFound(`unknown series ${f.series}`);
    seriesId = r.rows[0]!.id;
  }
  const page = gridWhere(f, seriesId, f.sort === 'serial');
  const { where, params } = gridWhere(f, seriesId, false);
  const [rows, counted] = await Promise.all([
    ctx.pool.query<CardRow>(
      `SELECT ${CARD_COLUMNS} FROM cards c JOIN series s ON s.id = c.series_id ${page.where}
       ORDER BY ${ORDER[f.sort][f.dir]} LIMIT ${f.limit + 1} OFFSET ${f.offset}`,
      page.params,
    ),
    ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM cards c ${where} LIMIT ${exactLimit + 1}) m`, params),
  ]);
  let total = counted.rows[0]!.n;
  let totalExact = total <= exactLimit;
  if (!totalExact) {
    const plan = await ctx.pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM cards c ${where}`,
      params,
    );
    total = Math.max(exactLimit + 1, Math.round(plan.rows[0]!['QUERY PLAN'][0]!.Plan['Plan Rows']));
    totalExact = false;
  }
  return { items: rows.rows.slice(0, f.limit).map(toCard), total, totalExact, hasMore: rows.rows.length > f.limit };
}

// ---------------------------------------------------------------------------------------------------------------

export const MAX_BULK = 1000;

export const cardBulkSchema = z
  .object({
    serials: z.array(serialInput).min(1, 'select at least one card').max(MAX_BULK, `at most ${MAX_BULK} cards at once`),
    status: z.enum(CARD_STATUSES).optional(),
    maxCalls: cardLimitsSchema.shape.maxCalls,
    creditLimit: z.string().optional(),
    rateTable: cardLimitsSchema.shape.rateTable,
  })
  .strict();
export type CardBulkInput = z.input<typeof cardBulkSchema>;

export interface CardBulkResult {
  updated: Card[];
  /** Cards the change could not apply to, with why (e.g. a credit limit below what the balance needs). */
  failed: Array<{ serial: string; message: string }>;
}

/**
 * "Edit selected": status and/or limits (simultaneous calls, credit limit, rate table) for a list of serials, each
 * card through the same operation as one card's edit. Unknown serials refuse the whole request before anything
 * changes; a card the change cannot apply to is reported in `failed`, the others are changed.
 */
export async function bulkEditCards(ctx: AdminContext, raw: CardBulkInput): Promise<CardBulkResult> {
  const i = parseInput(cardBulkSchema, raw);
  const { serials, status, ...limitsRaw } = i;
  const limits = Object.fromEntries(Object.entries(limitsRaw).filter(([, v]) => v !== undefined));
  if (status === undefined && Object.keys(limits).length === 0) throw invalid('nothing to change: give status, maxCalls, creditLimit or rateTable');
  if (Object.keys(limits).length) parseInput(cardLimitsSchema, limits); // bad values answer 400 before any card changes
  const unique = [...new Set(serials)];
  const found = await ctx.pool.query<{ serial: string }>('SELECT serial FROM cards WHERE serial = ANY($1::text[])', [unique]);
  const known = new Set(found.rows.map((r) => r.serial));
  const missing = unique.filter((s) => !known.has(s));
  if (missing.length) throw notFound(`unknown card${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`);
  const result: CardBulkResult = { updated: [], failed: [] };
  for (const serial of unique) {
    try {
      if (Object.keys(limits).length) await setCardLimits(ctx, serial, limits as never);
      result.updated.push(status !== undefined ? await setCardStatus(ctx, serial, status) : await getCard(ctx, serial));
    } catch (err) {
      result.failed.push({ serial, message: (err as Error).message });
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------

/** Everything the card page shows: the card, its latest ledger rows and calls, the calls holding funds right now. */
export async function cardOverview(ctx: AdminContext, serial: string, live: LiveBalanceStore | undefined) {
  const s = parseInput(serialInput, serial, 'serial');
  const card = await getCard(ctx, s);
  const [ledger, calls, open, callerIds] = await Promise.all([
    ctx.pool.query<{ id: bigint; amount_micros: bigint; balance_after_micros: bigint; reason: string; ref: string; note: string; created_at: Date }>(
      `SELECT id, amount_micros, balance_after_micros, reason, ref, note, created_at FROM ledger WHERE card_id = $1 ORDER BY id DESC LIMIT 20`,
      [card.id],
    ),
    ctx.pool.query<{ call_id: string; destination: string; billed_seconds: number; cost_micros: bigint; hangup_cause: string | null; answered_at: Date | null; ended_at: Date | null; created_at: Date }>(
      `SELECT call_id, destination, billed_seconds, cost_micros, hangup_cause, answered_at, ended_at, created_at FROM cdrs
       WHERE card_id = $1 ORDER BY created_at DESC LIMIT 20`,
      [card.id],
    ),
    ctx.pool.query<{ call_id: string; destination: string; max_seconds: number; reserved_micros: bigint; created_at: Date; hold_until: Date }>(
      `SELECT call_id, destination, max_seconds, reserved_micros, created_at, hold_until FROM calls WHERE card_id = $1 AND status = 'reserved' ORDER BY created_at`,
      [card.id],
    ),
    ctx.pool.query<{ caller_id: string }>('SELECT caller_id FROM caller_ids WHERE card_id = $1 ORDER BY caller_id', [card.id]),
  ]);
  const held = new Map<string, bigint>();
  if (live) {
    try {
      for (const r of await live.reservations(card.id)) held.set(r.callId, r.amount);
    } catch {
      // The live store is down: the reserved amounts of the calls table are shown instead.
    }
  }
  return {
    card: cardJson(card),
    ledger: ledger.rows.map((x) => ({
      id: x.id.toString(),
      amount: amountJson(x.amount_micros),
      balanceAfter: amountJson(x.balance_after_micros),
      reason: x.reason,
      ref: x.ref,
      note: x.note,
      createdAt: x.created_at.toISOString(),
    })),
    calls: calls.rows.map((x) => ({
      callId: x.call_id,
      destination: x.destination,
      billedSeconds: x.billed_seconds,
      cost: amountJson(x.cost_micros),
      hangupCause: x.hangup_cause,
      answeredAt: isoOrNull(x.answered_at),
      endedAt: isoOrNull(x.ended_at),
      createdAt: x.created_at.toISOString(),
    })),
    holds: open.rows.map((x) => ({
      callId: x.call_id,
      destination: x.destination,
      capSeconds: x.max_seconds,
      held: amountJson(held.get(x.call_id) ?? x.reserved_micros),
      startedAt: x.created_at.toISOString(),
      holdUntil: x.hold_until.toISOString(),
    })),
    callerIds: callerIds.rows.map((x) => x.caller_id),
  };
}
