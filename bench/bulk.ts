import { Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createPool } from '../src/store/db.ts';
import { scratchDb } from './scratch-db.ts';
import { migrate } from '../src/store/migrate.ts';
import { importRates, RateCache, streamRates } from '../src/store/rates.ts';
import { RateImportError } from '../src/billing/rates-csv.ts';

/**
 * Issue 13's availability figures for bulk work, in one process: a big rate table's streamed export (time, peak
 * RSS growth), a bad rate CSV's import (time, peak RSS growth, the longest event-loop stall, the size of the error),
 * and how long the rate cache takes to take a one-row change of a small table next to the big one (per-table reload)
 * versus a reload of everything. `npm run bench -- bulk`; `node --import tsx bench/bulk.ts [rates] [badMb]`.
 */
export interface BenchBulkOptions {
  databaseUrl?: string;
  /** Rates in the big table (the issue's: 847 000). */
  rates?: number;
  /** Size of the bad CSV, MB (the issue's: 10). */
  badMb?: number;
}

const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
const s = (ms: number) => Math.round(ms) / 1000;

/** Runs fn while sampling RSS every 20 ms and the event loop's delay; returns fn's result and the figures. */
async function measured<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number; peakRssGrowthMb: number; maxLoopStallMs: number }> {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  try {
    const result = await fn();
    return { result, seconds: s(performance.now() - t0), peakRssGrowthMb: mb(Math.max(peak, process.memoryUsage().rss) - before), maxLoopStallMs: Math.round(loop.max / 1e6) };
  } finally {
    loop.disable();
    clearInterval(sampler);
  }
}

export async function benchBulk(opts: BenchBulkOptions = {}) {
  const rates = opts.rates ?? 847_000;
  const badMb = opts.badMb ?? 10;
  const scratch = await scratchDb('bulk', opts);
  const pool = createPool(scratch.url, 4);
  try {
    await migrate(pool);
    const big = await pool.query<{ id: bigint }>(`INSERT INTO rate_tables (name, decimals) VALUES ('big', 4) RETURNING id`);
    await pool.query(
      `INSERT INTO rates (rate_table_id, prefix, destination, rate_per_min_micros, connect_fee_micros)
       SELECT $1, (1000000 + g)::text, 'Destination number ' || g, 1000 + g % 90000, g % 500 FROM generate_series(1, $2::int) g`,
      [big.rows[0]!.id, rates],
    );
    await importRates(pool, 'small', 'prefix,destination,rate\n44,UK,0.01\n');

    let bytes = 0;
    const discard = new Writable({
      write(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        cb();
      },
    });
    const exp = await measured(() => streamRates(pool, 'big', discard));

    const line = '12x,"a destination that is not valid",not-a-rate,,,,,\n';
    const bad = `prefix,destination,rate,connect_fee,initial_increment,subsequent_increment,effective_from,effective_to\n${line.repeat(Math.ceil((badMb * 1024 * 1024) / line.length))}`;
    const imp = await measured(async () => {
      const err = await importRates(pool, 'never', bad).catch((e: unknown) => e);
      if (!(err instanceof RateImportError)) throw new Error('the bad CSV was not refused');
      return JSON.stringify({ error: { code: 'INVALID_INPUT', message: err.message, details: err.errors } }).length;
    });

    const cache = new RateCache({ pool, debounceMs: 0 });
    const full = await measured(() => cache.start());
    const small = cache.index.tableByName('small')!;
    const one = await measured(async () => {
      const v = cache.version;
      await pool.query(`UPDATE rates SET rate_per_min_micros = rate_per_min_micros + 1 WHERE rate_table_id = $1`, [small.id]);
      while (cache.version === v) await new Promise((r) => setTimeout(r, 1));
    });
    await cache.stop();

    return {
      rates,
      'rate export: seconds': exp.seconds,
      'rate export: MB written': mb(bytes),
      'rate export: peak RSS growth, MB': exp.peakRssGrowthMb,
      [`bad CSV (${badMb} MB): seconds to refuse`]: imp.seconds,
      'bad CSV: peak RSS growth, MB': imp.peakRssGrowthMb,
      'bad CSV: longest event-loop stall, ms': imp.maxLoopStallMs,
      'bad CSV: error answer, bytes': imp.result,
      'rate cache: full load, seconds': full.seconds,
      'rate cache: full load, longest event-loop stall, ms': full.maxLoopStallMs,
      'rate cache: one-row change of a small table, seconds': one.seconds,
      'rate cache: that change, longest event-loop stall, ms': one.maxLoopStallMs,
    };
  } finally {
    await pool.end();
    await scratch.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rates = process.argv[2] ? Number(process.argv[2]) : undefined;
  const badMb = process.argv[3] ? Number(process.argv[3]) : undefined;
  console.log(JSON.stringify(await benchBulk({ ...(rates && { rates }), ...(badMb && { badMb }) }), null, 2));
}
