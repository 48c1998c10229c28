import { z } from 'zod';
import type { LiveBalanceStore } from '../../live/live-balance.ts';
import type { AdminContext } from './context.ts';
import { invalid, notFound } from './errors.ts';
import { amountJson } from './format.ts';
import { dateInput, parseInput, serialInput, seriesNumberInput } from './input.ts';
import { minutesOf } from './cdrs.ts';

// ---------------------------------------------------------------------------------------------------------------
// Calls in progress

export const MAX_LIVE_CALLS = 500;

export interface LiveCall {
  callId: string;
  serial: string;
  did: string | null;
  callerId: string | null;
  destination: string;
  /** Since the funds were reserved (just before the bridge), seconds. */
  elapsedSeconds: number;
  /** The cap FreeSWITCH hangs up at (sched_hangup), seconds after answer. */
  capSeconds: number;
  held: { value: string; micros: string };
  currency: string;
  startedAt: string;
}

/**
 * The calls holding funds right now: the calls rows still 'reserved' (bridging or bridged), with the amount each
 * holds in the live store (the reserved amount of the row when the live store does not answer). Oldest first, at
 * most MAX_LIVE_CALLS (and `total` says how many there are).
 */
export async function liveCalls(ctx: AdminContext, live: LiveBalanceStore | undefined): Promise<{ items: LiveCall[]; total: number; at: string }> {
  const r = await ctx.pool.query<{
    call_id: string; card_id: bigint; serial: string; currency: string; did: string | null; caller_id: string | null; destination: string;
    max_seconds: number; reserved_micros: bigint; created_at: Date; elapsed: number; total: number; now: Date;
  }>(
    `SELECT k.call_id, k.card_id, c.serial, c.currency, k.did, k.caller_id, k.destination, k.max_seconds, k.reserved_micros, k.created_at,
       floor(extract(epoch FROM now() - k.created_at))::int AS elapsed, count(*) OVER ()::int AS total, now() AS now
     FROM calls k JOIN cards c ON c.id = k.card_id WHERE k.status = 'reserved' ORDER BY k.created_at LIMIT ${MAX_LIVE_CALLS}`,
  );
  const held = new Map<string, bigint>();
  if (live) {
    const cards = [...new Set(r.rows.map((x) => x.card_id.toString()))];
    await Promise.all(
      cards.map(async (id) => {
        try {
          for (const h of await live.reservations(id)) held.set(h.callId, h.amount);
        } catch {
          // The live store is down: the row's reserved amount is shown.
        }
      }),
    );
  }
  return {
    items: r.rows.map((x) => ({
      callId: x.call_id,
      serial: x.serial,
      did: x.did,
      callerId: x.caller_id,
      destination: x.destination,
      elapsedSeconds: Math.max(0, x.elapsed),
      capSeconds: x.max_seconds,
      held: amountJson(held.get(x.call_id) ?? x.reserved_micros),
      currency: x.currency.trim(),
      startedAt: x.created_at.toISOString(),
    })),
    total: r.rows[0]?.total ?? 0,
    at: (r.rows[0]?.now ?? new Date()).toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Cost report with a time series

export const costTrendSchema = z.object({
  by: z.enum(['card', 'series', 'destination'], { error: 'must be card, series or destination' }).default('series'),
  from: dateInput,
  to: dateInput,
  interval: z.enum(['day', 'hour'], { error: 'must be day or hour' }).default('day'),
  card: serialInput.optional(),
  series: seriesNumberInput.optional(),
  limit: z.preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v), z.number().int().min(1).max(1000)).default(100),
});
export type CostTrendInput = z.input<typeof costTrendSchema>;

const MAX_POINTS = 24 * 93;

/**
 * Calls and cost over a date range: a table grouped by card, series or destination (prefix), biggest cost first, and
 * a time series per day or hour (UTC) for the chart: attempts (bridge attempts), answered calls, ASR (answered /
 * attempts, %), average duration of the answered calls, revenue (the cost billed). Buckets with no calls are
 * present with zeros. Amounts are exact decimal strings; one row per currency when cards of several are involved.
 */
export async function costTrend(ctx: AdminContext, raw: CostTrendInput) {
  const f = parseInput(costTrendSchema, raw);
  if (f.from >= f.to) throw invalid('"from" must be before "to"');
  const stepMs = f.interval === 'day' ? 86_400_000 : 3_600_000;
  const first = Math.floor(f.from.getTime() / stepMs) * stepMs;
  const points = Math.ceil((f.to.getTime() - first) / stepMs);
  if (points > MAX_POINTS) throw invalid(`too many ${f.interval}s in the range (at most ${MAX_POINTS}): choose a shorter range or interval=day`);

  const conds: string[] = [];
  const params: unknown[] = [f.from, f.to];
  if (f.card) {
    if (!(await ctx.pool.query('SELECT 1 FROM cards WHERE serial = $1', [f.card])).rowCount) throw notFound(`unknown card ${f.card}`);
    params.push(f.card);
    conds.push(`c.serial = $${params.length}`);
  }
  if (f.series) {
    if (!(await ctx.pool.query('SELECT 1 FROM series WHERE series_number = $1', [f.series])).rowCount) throw notFound(`unknown series ${f.series}`);
    params.push(f.series);
    conds.push(`s.series_number = $${params.length}`);
  }
  const extra = conds.map((c) => ` AND ${c}`).join('');
  const key = f.by === 'card' ? 'c.serial' : f.by === 'series' ? 's.series_number' : `COALESCE(d.prefix, '')`;
  const name = f.by === 'destination' ? `max(k.rate->>'destination')` : f.by === 'series' ? 'max(s.name)' : 'NULL';

  const [groups, trend] = await Promise.all([
    ctx.pool.query<{ key: string; name: string | null; currency: string; calls: number; secs: bigint; cost: bigint }>(
      `SELECT ${key} AS key, ${name} AS name, c.currency, count(*)::int AS calls, sum(d.billed_seconds)::bigint AS secs, sum(d.cost_micros)::bigint AS cost
       FROM cdrs d JOIN cards c ON c.id = d.card_id JOIN series s ON s.id = c.series_id LEFT JOIN calls k ON k.call_id = d.call_id
       WHERE d.created_at >= $1 AND d.created_at < $2${extra}
       GROUP BY ${key}, c.currency ORDER BY sum(d.cost_micros) DESC, ${key} LIMIT ${f.limit}`,
      params,
    ),
    ctx.pool.query<{ bucket: Date; currency: string; attempts: number; answered: number; talk: bigint; revenue: bigint }>(
      `SELECT date_trunc('${f.interval}', k.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, c.currency,
         count(*)::int AS attempts, count(*) FILTER (WHERE d.billsec > 0)::int AS answered,
         COALESCE(sum(d.billsec) FILTER (WHERE d.billsec > 0), 0)::bigint AS talk, COALESCE(sum(d.cost_micros), 0)::bigint AS revenue
       FROM calls k JOIN cards c ON c.id = k.card_id JOIN series s ON s.id = c.series_id LEFT JOIN cdrs d ON d.call_id = k.call_id
       WHERE k.created_at >= $1 AND k.created_at < $2${extra}
       GROUP BY 1, 2 ORDER BY 1, 2`,
      params,
    ),
  ]);
  const currencies = [...new Set(trend.rows.map((r) => r.currency.trim()))];
  if (currencies.length === 0) currencies.push(...new Set(groups.rows.map((r) => r.currency.trim())));
  const byBucket = new Map(trend.rows.map((r) => [`${r.bucket.getTime()}|${r.currency.trim()}`, r]));
  const series = [];
  for (let i = 0; i < points; i++) {
    const t = first + i * stepMs;
    for (const cur of currencies) {
      const r = byBucket.get(`${t}|${cur}`);
      const attempts = r?.attempts ?? 0;
      const answered = r?.answered ?? 0;
      series.push({
        at: new Date(t).toISOString(),
        currency: cur,
        attempts,
        answered,
        asr: attempts ? Math.round((answered / attempts) * 10_000) / 100 : 0,
        averageSeconds: answered ? Math.round(Number(r!.talk) / answered) : 0,
        revenue: amountJson(r?.revenue ?? 0n),
      });
    }
  }
  return {
    by: f.by,
    interval: f.interval,
    from: f.from.toISOString(),
    to: f.to.toISOString(),
    groups: groups.rows.map((g) => ({
      key: g.key,
      name: g.name,
      currency: g.currency.trim(),
      calls: g.calls,
      billedSeconds: Number(g.secs),
      billedMinutes: minutesOf(Number(g.secs)),
      totalCost: amountJson(g.cost),
    })),
    series,
  };
}
