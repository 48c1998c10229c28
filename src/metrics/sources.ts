import type { Pool } from 'pg';
import { Gauge } from 'prom-client';
import { registers } from './registry.ts';

/**
 * What the scrape-time gauges read, given by the running service (bindMetricSources). Database reads are cached
 * for a few seconds, so scrapers (and every worker of a supervisor) cost at most one small query each per window:
 * the held amount reads only the open calls (the calls_open partial index), the unbilled count only the unbilled
 * ones (calls_unbilled, migration 009). A read that fails or is slow reports NaN (unknown), never a stale figure.
 */
export interface MetricSources {
  pool: Pool;
  /** Calls waiting to be billed (status 'unbilled'). Default: counted in the calls table. */
  countUnbilled?: () => Promise<number>;
  /** True when the process is ready for calls (the GET /ready check). */
  isReady?: () => Promise<boolean>;
  /** How long a database read is reused (default 5000 ms; tests use 0). */
  cacheMs?: number;
}

const CACHE_MS = 5_000;
const QUERY_TIMEOUT_MS = 2_000;

const HELD_SQL = `
  SELECT c.currency, COALESCE(SUM(k.reserved_micros), 0)::bigint AS held, COUNT(*)::int AS n
    FROM calls k JOIN cards c ON c.id = k.card_id
   WHERE k.status = 'reserved' AND k.hold_until > now()
   GROUP BY c.currency`;

/** The default unbilled count: calls rows with status 'unbilled'. */
export function unbilledCounter(pool: Pool): () => Promise<number> {
  return async () => (await pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM calls WHERE status = 'unbilled'`)).rows[0]!.n;
}

function withTimeout<T>(op: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`metrics read took longer than ${ms} ms`)), ms);
  });
  return Promise.race([op, timeout]).finally(() => clearTimeout(timer));
}

/** Caches a read for CACHE_MS; a failed read is not cached. */
function cached<T>(read: () => Promise<T>, cacheMs: number): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= cacheMs) {
      const value = withTimeout(read(), QUERY_TIMEOUT_MS);
      last = { at: now, value };
      value.catch(() => {
        if (last?.value === value) last = undefined;
      });
    }
    return last.value;
  };
}

interface Bound {
  unbilled: () => Promise<number>;
  held: () => Promise<Array<{ currency: string; held: bigint; n: number }>>;
  isReady?: () => Promise<boolean>;
}

const bound: Bound[] = [];

/** Makes the scrape-time gauges read this service's sources (the latest bound wins); returns the unbinding. */
export function bindMetricSources(src: MetricSources): () => void {
  const b: Bound = {
    unbilled: cached(src.countUnbilled ?? unbilledCounter(src.pool), src.cacheMs ?? CACHE_MS),
    held: cached(async () => (await src.pool.query<{ currency: string; held: bigint; n: number }>(HELD_SQL)).rows, src.cacheMs ?? CACHE_MS),
    ...(src.isReady && { isReady: src.isReady }),
  };
  bound.push(b);
  return () => {
    const i = bound.indexOf(b);
    if (i >= 0) bound.splice(i, 1);
  };
}

const current = (): Bound | undefined => bound[bound.length - 1];

// prom-client awaits these collect functions at every scrape (for a supervisor's aggregated scrape, in every
// worker). Every worker reads the same rows: aggregated with max, not summed.
export const unbilledCalls = new Gauge({
  name: 'ccard_calls_unbilled',
  help: 'Calls marked unbilled: their hold expired while bridged and no CDR has billed them yet (NaN: unknown)',
  registers,
  aggregator: 'max',
  async collect() {
    const b = current();
    this.set(b ? await b.unbilled().catch(() => NaN) : NaN);
  },
});

/** ISO 4217 codes only (a bounded set: the currencies of the card series); anything else is "other". */
const currencyLabel = (c: string) => (/^[A-Z]{3}$/.test(c.trim()) ? c.trim() : 'other');

async function heldRows() {
  const b = current();
  return b ? b.held().catch(() => undefined) : undefined;
}

export const heldMicros = new Gauge({
  name: 'ccard_held_micros',
  help: 'Sum of live holds in integer micro-units (1.00 = 1000000) per currency; exact below 2^53; absent when unknown',
  labelNames: ['currency'],
  registers,
  aggregator: 'max',
  async collect() {
    const rows = await heldRows();
    this.reset();
    for (const r of rows ?? []) this.set({ currency: currencyLabel(r.currency) }, Number(r.held));
  },
});

export const heldCalls = new Gauge({
  name: 'ccard_held_calls',
  help: 'Calls holding funds now (reserved, hold not expired) per currency; absent when unknown',
  labelNames: ['currency'],
  registers,
  aggregator: 'max',
  async collect() {
    const rows = await heldRows();
    this.reset();
    for (const r of rows ?? []) this.set({ currency: currencyLabel(r.currency) }, r.n);
  },
});

export const ready = new Gauge({
  name: 'ccard_ready',
  help: '1 when this process is ready for calls (what GET /ready answers), 0 when not or draining',
  registers,
  aggregator: 'min',
  async collect() {
    const check = current()?.isReady;
    this.set(check ? ((await check().catch(() => false)) ? 1 : 0) : 0);
  },
});
