import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createPool } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { derivePinKeys } from '../src/store/pin.ts';
import { importRateTable } from '../src/store/admin/rates.ts';
import { addOperator } from '../src/store/admin/operators.ts';
import { buildApi } from '../src/api/server.ts';
import { percentile, scratchDb } from './scratch-db.ts';

export interface BenchGridOptions {
  databaseUrl?: string;
  /** Cards in the database (default 1,000,000). */
  cards?: number;
  /** Timed requests per query (default 200, after 20 warm-up ones). */
  requests?: number;
}

/** The grid queries timed: each a filter and a sort, as the console's card grid sends them. */
const QUERIES: Record<string, string> = {
  'series+status, by balance desc': 'series=900&status=active&sort=balance&dir=desc&limit=50',
  'same, page at offset 5000': 'series=900&status=active&sort=balance&dir=desc&limit=50&offset=5000',
  'balance range, by last use desc': 'status=active&minBalance=10&maxBalance=20&sort=lastUsedAt&dir=desc&limit=50',
  'serial prefix, by serial': 'serial=900-00001&sort=serial&limit=50',
  'series (small), by balance asc': 'series=903&sort=balance&dir=asc&limit=100',
};

/**
 * `npm run bench -- grid`: the console's card-grid page request (GET /v1/cards/grid, through HTTP with an operator
 * session, so the session lookup and JSON are included) over `cards` cards in four series (70% in one), with
 * realistic statuses, balances and last uses. Cards are inserted set-based (the bench times the grid, not PIN
 * generation: `npm run bench -- cards` does that). Prints p50/p95/max per query and whether the p95 target holds.
 */
export async function benchGrid(opts: BenchGridOptions = {}): Promise<Record<string, string | number>> {
  const count = opts.cards ?? (Number(process.env.BENCH_GRID_CARDS) || 1_000_000);
  const n = opts.requests ?? 200;
  const scratch = await scratchDb('grid', opts);
  const pool = createPool(scratch.url, 8);
  const out: Record<string, string | number> = { cards: count };
  try {
    await migrate(pool);
    const ctx = { pool, pinKeys: derivePinKeys('bench-secret-0123456789') };
    await importRateTable(ctx, 'bench', 'prefix,destination,rate\n1,USA,0.01\n');
    const t0 = performance.now();
    const sizes = [Math.floor(count * 0.7), Math.floor(count * 0.2), Math.floor(count * 0.09)];
    sizes.push(count - sizes.reduce((a, b) => a + b, 0));
    for (const [i, size] of sizes.entries()) {
      const number = String(900 + i);
      const s = await pool.query<{ id: bigint }>(
        `INSERT INTO series (name, series_number, card_count, rate_table_id) SELECT $1, $2, $3, id FROM rate_tables WHERE name = 'bench' RETURNING id`,
        [`bench ${number}`, number, size],
      );
      await pool.query(
        `INSERT INTO cards (series_id, serial, pin_hash, status, balance_micros, last_used_at)
         SELECT $1, $2 || '-' || lpad(g::text, 9, '0'), sha256(($2 || ':' || g)::bytea),
           CASE WHEN g % 10 = 0 THEN 'pending' WHEN g % 10 = 1 THEN 'disabled' ELSE 'active' END,
           (hashtext($2 || 'b' || g)::bigint & 4095) * 12207,
           CASE WHEN g % 5 < 3 THEN now() - make_interval(secs => (hashtext($2 || 'u' || g)::bigint & 8388607)) END
         FROM generate_series(1, $3::int) g`,
        [s.rows[0]!.id, number, size],
      );
    }
    await pool.query('VACUUM ANALYZE cards');
    out.setupSeconds = Math.round((performance.now() - t0) / 100) / 10;

    await addOperator(ctx, { login: 'bench', role: 'viewer', password: 'bench-password-123' });
    const app = buildApi({ pool, pinKeys: ctx.pinKeys, webRoot: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const login = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: 'bench', password: 'bench-password-123' }),
      });
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
      let worst = 0;
      for (const [name, q] of Object.entries(QUERIES)) {
        const times: number[] = [];
        let total = '';
        for (let i = 0; i < n + 20; i++) {
          const t = performance.now();
          const r = await fetch(`${base}/v1/cards/grid?${q}`, { headers: { cookie } });
          const body = (await r.json()) as { items: unknown[]; total: number; totalExact: boolean };
          if (r.status !== 200) throw new Error(`${q}: ${r.status} ${JSON.stringify(body)}`);
          if (i >= 20) times.push(performance.now() - t);
          total = `${body.totalExact ? '' : '~'}${body.total}`;
        }
        times.sort((a, b) => a - b);
        const p95 = percentile(times, 95);
        worst = Math.max(worst, p95);
        out[`${name}: p50 / p95 / max ms (matches)`] =
          `${percentile(times, 50).toFixed(1)} / ${p95.toFixed(1)} / ${times.at(-1)!.toFixed(1)} (${total})`;
      }
      out['worst p95, ms'] = Math.round(worst * 10) / 10;
      out['target p95 <= 50 ms'] = worst <= 50 ? 'met' : 'MISSED';
    } finally {
      await app.close();
    }
    return out;
  } finally {
    await pool.end();
    await scratch.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const cards = process.argv[2] ? Number(process.argv[2]) : undefined;
  console.log(JSON.stringify(await benchGrid({ ...(cards && { cards }) }), null, 2));
}
