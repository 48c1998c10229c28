/**
 * CCARD_WORKERS: `ccard serve` as a supervisor of two workers (real processes, real PostgreSQL and Redis), driven
 * by the simulator. Both workers take calls on the one port, each card's balance ends equal to its ledger, a killed
 * worker is replaced, and SIGTERM stops everything.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/app/seed.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { parseMoney } from '../../src/money/money.ts';
import { withTransaction } from '../../src/store/db.ts';
import { FreeSwitchSim, carrier } from '../../src/sim/index.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { spawnServe } from './serve-process.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { waitFor } from './harness.ts';

const SECRET = 'workers-test-secret-0123456789';

interface LogLine {
  msg: string;
  worker?: number;
  esl?: { port: number };
  pid: number;
}

let db: TestDb;
let redis: ReturnType<typeof createTestRedis>;
let child: ChildProcess;
const lines: LogLine[] = [];
let exited: Promise<number | null>;

const ready = () => lines.filter((l) => l.msg === 'ccard ready');

let data: Awaited<ReturnType<typeof seedDemo>>;
let port: number;

beforeAll(async () => {
  db = await createTestDb();
  redis = createTestRedis();
  // Seeded first: each worker loads the rate tables when it starts.
  data = await seedDemo(db.pool, derivePinKeys(SECRET));
  await db.pool.query(`UPDATE series SET max_concurrent_calls = 50`);
  await withTransaction(db.pool, (c) =>
    applyBalanceChange(c, { cardId: data.cards.rich.id, amount: parseMoney('100000'), reason: 'topup', ref: 'workers-test', onFloor: 'reject' }),
  );
  child = spawnServe(
    {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      CCARD_REDIS_PREFIX: redis.prefix,
      CCARD_SECRET: SECRET,
      CCARD_WORKERS: '2',
      CCARD_ESL_PORT: '0',
      CCARD_HTTP_PORT: '0',
      LOG_LEVEL: 'info',
    },
    lines,
  );
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor('two workers', async () => (ready().length >= 2 ? true : undefined), 20_000);
  port = ready()[0]!.esl!.port;
}, 40_000);

afterAll(async () => {
  if (child.exitCode === null) child.kill('SIGKILL');
  await redis.redis.quit();
  await db.drop();
});

async function placeCalls(n: number) {
  const sim = new FreeSwitchSim({ port, timeScale: 0, record: false });
  const card = data.cards.rich;
  const results = await sim.callMany(
    n,
    (i) => ({
      did: data.did,
      callerId: `1555${String(3_000_000 + i).padStart(7, '0')}`,
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(100, 30_000),
    }),
    20,
  );
  return results;
}

describe('ccard serve with CCARD_WORKERS=2', () => {
  it('both workers listen on the one port and take calls; every call is billed once and balances match the ledger', async () => {
    expect(new Set(ready().map((l) => l.worker))).toEqual(new Set([0, 1]));
    expect(new Set(ready().map((l) => l.esl!.port)).size).toBe(1);
    expect(new Set(ready().map((l) => l.pid)).size).toBe(2);
    // Only the first worker recovered open calls before the others started.
    expect(lines.filter((l) => l.msg === 'open calls recovered').map((l) => l.worker)).toEqual([0]);

    const servedBy = () => new Set(lines.filter((l) => l.msg === 'call ended').map((l) => l.worker));
    let placed = 0;
    for (let round = 0; round < 10 && servedBy().size < 2; round++) {
      const results = await placeCalls(40);
      placed += results.length;
      expect(results.every((r) => r.bLegs.some((b) => b.answered))).toBe(true);
    }
    expect(servedBy()).toEqual(new Set([0, 1]));
    const bad = await db.pool.query<{ bad: string }>(
      `SELECT count(*) AS bad FROM cards c WHERE c.balance_micros <> (SELECT coalesce(sum(amount_micros), 0) FROM ledger l WHERE l.card_id = c.id)`,
    );
    expect(Number(bad.rows[0]!.bad)).toBe(0);
    // One CDR and one debit per call, whichever worker served it: the debits are what the CDRs cost.
    const sums = await db.pool.query<{ debits: string; cdrs: string; n: string }>(
      `SELECT (SELECT -sum(amount_micros) FROM ledger WHERE card_id = $1 AND reason = 'call') AS debits,
              (SELECT sum(cost_micros) FROM cdrs WHERE card_id = $1) AS cdrs,
              (SELECT count(*) FROM cdrs WHERE card_id = $1) AS n`,
      [data.cards.rich.id],
    );
    expect(Number(sums.rows[0]!.n)).toBe(placed);
    expect(sums.rows[0]!.debits).toBe(sums.rows[0]!.cdrs);
  }, 60_000);

  it('a worker that dies is replaced, and calls still go through', async () => {
    const victim = ready().find((l) => l.worker === 1)!.pid;
    process.kill(victim, 'SIGKILL');
    await waitFor('a new worker 1', async () => (ready().filter((l) => l.worker === 1).length >= 2 ? true : undefined), 20_000);
    const replacement = ready().filter((l) => l.worker === 1).at(-1)!;
    expect(replacement.pid).not.toBe(victim);
    const results = await placeCalls(20);
    expect(results.every((r) => r.bLegs.some((b) => b.answered))).toBe(true);
  }, 40_000);

  it('SIGTERM: every worker drains and the supervisor exits 0', async () => {
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
    expect(code).toBe(0);
    expect(lines.filter((l) => l.msg === 'worker stopped')).toHaveLength(2);
  }, 30_000);
});
