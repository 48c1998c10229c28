import type { Writable } from 'node:stream';
import { z } from 'zod';
import type { Micros } from '../../money/money.ts';
import type { AdminContext } from './context.ts';
import { invalid, notFound } from './errors.ts';
import { resellerScope } from './scope.ts';
import { amountJson, formatAmount, isoOrNull } from './format.ts';
import { dateInput, pageInput, parseInput, serialInput, seriesNumberInput } from './input.ts';
import { streamCsv, type StreamOptions } from './export-stream.ts';

export const cdrFilterSchema = z.object({
  card: serialInput.optional(),
  series: seriesNumberInput.optional(),
  from: dateInput.optional(),
  to: dateInput.optional(),
});
export type CdrFilterInput = z.input<typeof cdrFilterSchema>;
export const cdrListSchema = cdrFilterSchema.extend(pageInput);
export type CdrListInput = z.input<typeof cdrListSchema>;

export interface Cdr {
  callId: string;
  serial: string;
  series: string;
  did: string | null;
  callerId: string | null;
  destination: string;
  prefix: string | null;
  billsec: number;
  billedSeconds: number;
  cost: Micros;
  uncollected: Micros;
  hangupCause: string | null;
  answeredAt: Date | null;
  endedAt: Date | null;
  source: string;
  createdAt: Date;
}

interface CdrRow {
  call_id: string;
  serial: string;
  series_number: string;
  did: string | null;
  caller_id: string | null;
  destination: string;
  prefix: string | null;
  billsec: number;
  billed_seconds: number;
  cost_micros: bigint;
  uncollected_micros: bigint;
  hangup_cause: string | null;
  answered_at: Date | null;
  ended_at: Date | null;
  source: string;
  created_at: Date;
}

const toCdr = (r: CdrRow): Cdr => ({
  callId: r.call_id,
  serial: r.serial,
  series: r.series_number,
  did: r.did,
  callerId: r.caller_id,
  destination: r.destination,
  prefix: r.prefix,
  billsec: r.billsec,
  billedSeconds: r.billed_seconds,
  cost: r.cost_micros,
  uncollected: r.uncollected_micros,
  hangupCause: r.hangup_cause,
  answeredAt: r.answered_at,
  endedAt: r.ended_at,
  source: r.source,
  createdAt: r.created_at,
});

export const cdrJson = (c: Cdr) => ({
  ...c,
  cost: amountJson(c.cost),
  uncollected: amountJson(c.uncollected),
  answeredAt: isoOrNull(c.answeredAt),
  endedAt: isoOrNull(c.endedAt),
  createdAt: c.createdAt.toISOString(),
});

const CDR_FROM = `FROM cdrs d JOIN cards c ON c.id = d.card_id JOIN series s ON s.id = c.series_id`;
const CDR_COLUMNS = `d.call_id, c.serial, s.series_number, d.did, d.caller_id, d.destination, d.prefix, d.billsec,
  d.billed_seconds, d.cost_micros, d.uncollected_micros, d.hangup_cause, d.answered_at, d.ended_at, d.source, d.created_at`;

async function filterSql(ctx: AdminContext, f: z.output<typeof cdrFilterSchema>) {
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    conds.push(sql.replace('?', `$${params.length}`));
  };
  if (f.card !== undefined) {
    const r = await ctx.pool.query('SELECT 1 FROM cards WHERE serial = $1', [f.card]);
    if (!r.rowCount) throw notFound(`unknown card ${f.card}`);
    add('c.serial = ?', f.card);
  }
  if (f.series !== undefined) {
    const r = await ctx.pool.query('SELECT 1 FROM series WHERE series_number = $1', [f.series]);
    if (!r.rowCount) throw notFound(`unknown series ${f.series}`);
    add('s.series_number = ?', f.series);
  }
  const reseller = resellerScope();
  if (reseller !== null) add('s.reseller_id = ?', reseller);
  if (f.from && f.to && f.from >= f.to) throw invalid('"from" must be before "to"');
  if (f.from) add('d.created_at >= ?', f.from);
  if (f.to) add('d.created_at < ?', f.to);
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

export async function listCdrs(ctx: AdminContext, raw: CdrListInput): Promise<{ items: Cdr[]; hasMore: boolean }> {
  const f = parseInput(cdrListSchema, raw);
  const { where, params } = await filterSql(ctx, f);
  const r = await ctx.pool.query<CdrRow>(
    `SELECT ${CDR_COLUMNS} ${CDR_FROM} ${where} ORDER BY d.id LIMIT ${f.limit + 1} OFFSET ${f.offset}`,
    params,
  );
  return { items: r.rows.slice(0, f.limit).map(toCdr), hasMore: r.rows.length > f.limit };
}

const CSV_HEADER = [
  'call_id', 'serial', 'series', 'did', 'caller_id', 'destination', 'prefix', 'billsec', 'billed_seconds', 'cost',
  'uncollected', 'hangup_cause', 'answered_at', 'ended_at', 'source', 'created_at',
];

/** A CDR's cells in CSV_HEADER order. */
const cdrCells = (c: Cdr): unknown[] => [
  c.callId, c.serial, c.series, c.did ?? '', c.callerId ?? '', c.destination, c.prefix ?? '', c.billsec,
  c.billedSeconds, formatAmount(c.cost), formatAmount(c.uncollected), c.hangupCause ?? '',
  isoOrNull(c.answeredAt) ?? '', isoOrNull(c.endedAt) ?? '', c.source, c.createdAt.toISOString(),
];

/**
 * Streams the matching CDRs as CSV through a cursor (constant memory; nothing written before the first batch is
 * read). Stops when `out` closes or stalls past opts.stallMs, or opts.signal fires.
 */
export async function exportCdrs(ctx: AdminContext, raw: CdrFilterInput, out: Writable, opts: StreamOptions = {}): Promise<number> {
  const f = parseInput(cdrFilterSchema, raw);
  const { where, params } = await filterSql(ctx, f);
  return streamCsv<CdrRow>(
    ctx.pool,
    out,
    { sql: `SELECT ${CDR_COLUMNS} ${CDR_FROM} ${where} ORDER BY d.id`, params, header: CSV_HEADER, cells: (r) => cdrCells(toCdr(r)) },
    opts,
  );
}

export const costReportSchema = z.object({
  by: z.enum(['card', 'series', 'destination', 'carrier', 'destination-carrier']),
  from: dateInput.optional(),
  to: dateInput.optional(),
  card: serialInput.optional(),
  series: seriesNumberInput.optional(),
});
export type CostReportInput = z.input<typeof costReportSchema>;

export interface CostReportRow {
  key: string;
  currency: string;
  calls: number;
  billedSeconds: number;
  /** billedSeconds / 60, exact: whole minutes and the remaining seconds as a decimal fraction ("12.5", "1.0166..."). */
  billedMinutes: string;
  totalCost: Micros;
  /** What the carriers charged for the routed calls of the row (null: none was routed by a plan). */
  buyCost: Micros | null;
  /** Sell minus buy over the routed calls (null: none). Revenue includes tax when the series has a tax profile. */
  margin: Micros | null;
}

/** seconds/60 written exactly when it terminates, else to 6 decimals rounded half up. */
export function minutesOf(seconds: number): string {
  const s = BigInt(seconds);
  const scaled = (s * 1_000_000n * 2n + 60n) / 120n; // micro-minutes, half up
  const whole = scaled / 1_000_000n;
  const frac = (scaled % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** Calls, billed minutes and total cost per card or per series; sums are exact (integer micros). */
export async function costReport(ctx: AdminContext, raw: CostReportInput): Promise<CostReportRow[]> {
  const f = parseInput(costReportSchema, raw);
  const { where, params } = await filterSql(ctx, f);
  const carrier = `COALESCE(ca.name, '(access number gateway)')`;
  const key = {
    card: 'c.serial',
    series: 's.series_number',
    destination: `COALESCE(d.prefix, '')`,
    carrier,
    'destination-carrier': `COALESCE(d.prefix, '') || ' via ' || ${carrier}`,
  }[f.by];
  const r = await ctx.pool.query<{ key: string; currency: string; calls: bigint; secs: bigint; cost: string; buy: string | null; routed: string | null }>(
    `SELECT ${key} AS key, c.currency, count(*)::bigint AS calls, sum(d.billed_seconds)::bigint AS secs,
       sum(d.cost_micros)::text AS cost, sum(d.buy_cost_micros)::text AS buy,
       sum(d.cost_micros) FILTER (WHERE d.buy_cost_micros IS NOT NULL)::text AS routed
     ${CDR_FROM} LEFT JOIN carriers ca ON ca.id = d.carrier_id ${where} GROUP BY ${key}, c.currency ORDER BY ${key}, c.currency`,
    params,
  );
  return r.rows.map((x) => ({
    key: x.key,
    currency: x.currency,
    calls: Number(x.calls),
    billedSeconds: Number(x.secs),
    billedMinutes: minutesOf(Number(x.secs)),
    // Sums as NUMERIC text: exact however many calls (a bigint sum could overflow).
    totalCost: BigInt(x.cost),
    buyCost: x.buy === null ? null : BigInt(x.buy),
    margin: x.buy === null ? null : BigInt(x.routed ?? '0') - BigInt(x.buy),
  }));
}

export const costReportJson = (r: CostReportRow) => ({
  ...r,
  totalCost: amountJson(r.totalCost),
  buyCost: r.buyCost === null ? null : amountJson(r.buyCost),
  margin: r.margin === null ? null : amountJson(r.margin),
});
