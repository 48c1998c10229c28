import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createPool } from '../src/store/db.ts';
import { scratchDb } from './scratch-db.ts';
import { migrate } from '../src/store/migrate.ts';
import { derivePinKeys } from '../src/store/pin.ts';
import { createSeries } from '../src/store/admin/series.ts';
import { exportCards } from '../src/store/admin/cards.ts';
import { importRateTable } from '../src/store/admin/rates.ts';

export interface BenchCardsOptions {
  /** Server URL (any database on it); default DATABASE_URL or the local default. */
  databaseUrl?: string;
  count?: number;
  withPins?: boolean;
}

export interface BenchCardsResult {
  cards: number;
  generateSeconds: number;
  cardsPerSecond: number;
  exportSeconds: number;
  exportedRows: number;
  exportBytes: number;
  rssBeforeExportMb: number;
  peakRssGrowthMb: number;
}

const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

/**
 * Creates its own database, generates `count` cards in one series (the `ccard series create` path), then streams
 * them all out as CSV (to a sink that discards) while sampling RSS, and drops the database.
 */
export async function benchCards(opts: BenchCardsOptions = {}): Promise<BenchCardsResult> {
  const count = opts.count ?? 1_000_000;
  const scratch = await scratchDb('cards', opts);
  const pool = createPool(scratch.url, 4);
  try {
    await migrate(pool);
    const ctx = { pool, pinKeys: derivePinKeys('bench-secret-0123456789') };
    await importRateTable(ctx, 'bench', 'prefix,destination,rate\n1,USA,0.01\n');

    const t0 = performance.now();
    await createSeries(ctx, { name: 'bench', number: '900', count, balance: '5', rateTable: 'bench' });
    const generateSeconds = (performance.now() - t0) / 1000;

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    let bytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        cb();
      },
    });
    const t1 = performance.now();
    const rows = await exportCards(ctx, { series: '900' }, sink, { format: 'csv', withPins: opts.withPins ?? false });
    const exportSeconds = (performance.now() - t1) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    return {
      cards: count,
      generateSeconds: Math.round(generateSeconds * 100) / 100,
      cardsPerSecond: Math.round(count / generateSeconds),
      exportSeconds: Math.round(exportSeconds * 100) / 100,
      exportedRows: rows,
      exportBytes: bytes,
      rssBeforeExportMb: mb(rssBefore),
      peakRssGrowthMb: mb(peak - rssBefore),
    };
  } finally {
    await pool.end();
    await scratch.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const count = process.argv[2] ? Number(process.argv[2]) : undefined;
  const withPins = process.argv.includes('--with-pins');
  console.log(JSON.stringify(await benchCards({ ...(count && { count }), withPins }), null, 2));
}
