import { randomBytes, randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { applyBalanceChange } from '../src/billing/ledger.ts';
import { COST_ALGORITHM } from '../src/billing/rating.ts';
import { debitCall } from '../src/billing/debit.ts';
import { RedisLiveBalance } from '../src/live/redis-live.ts';
import { createPool, withTransaction } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { toRateSnapshot } from '../src/store/calls.ts';
import { cpuTimes, scratchDb } from './scratch-db.ts';

/**
 * Money-path throughput against real services:
 * - live: reserve + release pairs per second through RedisLiveBalance (two Lua scripts each);
 * - debits: answered calls debited per second into PostgreSQL through debitCall, `concurrency` CDRs in flight
 *   (default 64: the CDRs of a busy switch's ending calls) over a pool of `poolSize`. Each debit is one statement
 *   (card lock, CDR insert, ledger, balance, call settled) and a durable commit; debits that arrive while one runs
 *   share the next statement and commit (DebitBatcher). Then the live-store settle. The rate snapshot is carried as the reservation would carry
 *   it (1 PostgreSQL round trip per debit);
 * - debitsLookupPerSec: the same for calls whose snapshot must be read first (a CDR for a call reserved by another
 *   process: 2 round trips);
 * - then all CDRs replayed (all duplicates: nothing may be debited twice).
 * Creates and drops its own database and deletes its own Redis keys.
 */
export interface BenchMoneyOptions {
  /** Any URL of the server; the bench creates its own database there (default DATABASE_URL or local). */
  databaseUrl?: string;
  redisUrl?: string;
  reservations?: number;
  debits?: number;
  concurrency?: number;
  /** PostgreSQL pool size (default 20). Concurrency above it queues for a connection while others talk to Redis. */
  poolSize?: number;
  cards?: number;
}

export interface BenchMoneyResult {
  reservationsPerSec: number;
  debitsPerSec: number;
  debitsLookupPerSec: number;
  duplicateDebitsPerSec: number;
  reservations: number;
  debits: number;
  concurrency: number;
  poolSize: number;
  cards: number;
  /** sum(ledger) == balance on every card and no CDR debited twice. */
  consistent: boolean;
  /** CPU per debit (carried snapshot) of this process, of PostgreSQL and of Redis. */
  cpuMsPerDebitClient: number;
  cpuMsPerDebitPostgres: number;
  cpuMsPerDebitRedis: number;
}

const RATE_RULE = {
  ratePerMin: 600_000n,
  connectFee: 0n,
  initialIncrement: 6,
  subsequentIncrement: 6,
  decimals: 2,
  rounding: 'up' as const,
  minBillableSeconds: 0,
  taxPpm: 0,
};

async function pooled(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return Math.round(n / secs);
}

export async function benchMoney(opts: BenchMoneyOptions = {}): Promise<BenchMoneyResult> {
  const nRes = opts.reservations ?? 20_000;
  const nDebits = opts.debits ?? 5_000;
  const concurrency = opts.concurrency ?? 64;
  const nCards = opts.cards ?? 64;
  const scratch = await scratchDb('money', opts);
  const poolSize = opts.poolSize ?? 20;
  const pool = createPool(scratch.url, poolSize);
  const redis = new Redis(scratch.redisUrl);
  const live = new RedisLiveBalance(redis, { prefix: scratch.prefix });
  try {
    await migrate(pool);
    const rt = await pool.query<{ id: string }>(`INSERT INTO rate_tables (name) VALUES ('bench') RETURNING id::text AS id`);
    const series = await pool.query<{ id: string }>(
      `INSERT INTO series (name, series_number, card_count, rate_table_id, max_concurrent_calls)
       VALUES ('bench', '1', $1, $2, 1000) RETURNING id::text AS id`,
      [nCards, rt.rows[0]!.id],
    );
    const cards: string[] = [];
    for (let i = 0; i < nCards; i++) {
      const id = await withTransaction(pool, async (c) => {
        const r = await c.query<{ id: string }>(
          `INSERT INTO cards (series_id, serial, pin_hash, status) VALUES ($1, $2, $3, 'active') RETURNING id::text AS id`,
          [series.rows[0]!.id, `B${i}`, randomBytes(32)],
        );
        const cardId = r.rows[0]!.id;
        await applyBalanceChange(c, { cardId, amount: 1_000_000_000_000n, reason: 'initial', ref: 'initial', onFloor: 'reject' });
        return cardId;
      });
      cards.push(id);
      await live.load(id, { spendable: 1_000_000_000_000n, version: 2n });
    }

    // Live store: reserve + release.
    const reservationsPerSec = await pooled(nRes, concurrency, async (i) => {
      const card = cards[i % nCards]!;
      const callId = `r${i}`;
      const r = await live.reserve(card, callId, 600_000n, 120_000, 1000);
      if (!r.ok) throw new Error(`bench reserve refused: ${r.reason}`);
      await live.settle(card, callId);
    });

    // PostgreSQL: open calls prepared up front (not timed), then one transaction per debit.
    const rate = toRateSnapshot({ id: '1', prefix: '1', destination: 'bench' }, RATE_RULE);
    const snapshot = JSON.stringify(rate);
    const ids = Array.from({ length: 2 * nDebits }, () => randomUUID());
    const holdUntil = new Date(Date.now() + 3_600_000);
    for (let i = 0; i < ids.length; i += 5_000) {
      const chunk = ids.slice(i, i + 5_000);
      await pool.query(
        `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, hold_until)
         SELECT id, (ARRAY[${cards.join(',')}]::bigint[])[1 + (n % ${nCards})], '15557654321', $2::jsonb, 600, 6000000, $3
           FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
        [chunk, snapshot, holdUntil],
      );
    }
    const deps = { pool, live };
    const pricing = { rate, maxSeconds: 600, costAlgorithm: COST_ALGORITHM };
    const facts = (i: number, carried: boolean) => ({
      callId: ids[i]!,
      answered: true,
      billsec: 1 + (i % 300),
      source: 'json_cdr' as const,
      ...(carried ? { pricing } : {}),
    });
    const cpu0 = cpuTimes(-1);
    const debitsPerSec = await pooled(nDebits, concurrency, async (i) => {
      const r = await debitCall(deps, facts(i, true));
      if (r.status !== 'debited') throw new Error(`bench debit: ${r.status}`);
    });
    const cpu1 = cpuTimes(-1);
    const perDebit = (k: 'server' | 'postgres' | 'redis') => Number(((cpu1[k] - cpu0[k]) / nDebits).toFixed(3));
    const debitsLookupPerSec = await pooled(nDebits, concurrency, async (i) => {
      const r = await debitCall(deps, facts(nDebits + i, false));
      if (r.status !== 'debited') throw new Error(`bench debit (lookup): ${r.status}`);
    });
    const duplicateDebitsPerSec = await pooled(nDebits, concurrency, async (i) => {
      const r = await debitCall(deps, facts(i, true));
      if (r.status !== 'duplicate') throw new Error(`bench replay: ${r.status}`);
    });

    const check = await pool.query<{ bad: string }>(
      `SELECT count(*)::text AS bad FROM cards c
        WHERE c.balance_micros <> (SELECT coalesce(sum(amount_micros), 0) FROM ledger l WHERE l.card_id = c.id)`,
    );
    const counts = await pool.query<{ ledger: string; cdrs: string }>(
      `SELECT (SELECT count(*) FROM ledger WHERE reason = 'call')::text AS ledger, (SELECT count(*) FROM cdrs)::text AS cdrs`,
    );
    const consistent =
      check.rows[0]!.bad === '0' && Number(counts.rows[0]!.ledger) === 2 * nDebits && Number(counts.rows[0]!.cdrs) === 2 * nDebits;
    return {
      reservationsPerSec,
      debitsPerSec,
      debitsLookupPerSec,
      duplicateDebitsPerSec,
      reservations: nRes,
      debits: nDebits,
      concurrency,
      poolSize,
      cards: nCards,
      consistent,
      cpuMsPerDebitClient: perDebit('server'),
      cpuMsPerDebitPostgres: perDebit('postgres'),
      cpuMsPerDebitRedis: perDebit('redis'),
    };
  } finally {
    await pool.end().catch(() => {});
    redis.disconnect();
    await scratch.drop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // npx tsx bench/money.ts [concurrency] [poolSize]
  const num = (v: string | undefined) => (v ? Number(v) : undefined);
  const concurrency = num(process.argv[2] ?? process.env.BENCH_CONCURRENCY);
  const poolSize = num(process.argv[3] ?? process.env.BENCH_POOL);
  const result = await benchMoney({ ...(concurrency ? { concurrency } : {}), ...(poolSize ? { poolSize } : {}) });
  console.log(JSON.stringify(result, null, 2));
}
