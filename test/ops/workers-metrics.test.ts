/**
 * GET /metrics of `ccard serve` with CCARD_WORKERS=2: a scrape lands on either worker (they share the port), and
 * whichever answers reports every worker's calls (the supervisor aggregates their registries).
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/app/seed.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { parseMoney } from '../../src/money/money.ts';
import { withTransaction } from '../../src/store/db.ts';
import { FreeSwitchSim, carrier } from '../../src/sim/index.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { spawnServe } from '../e2e/serve-process.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { waitFor } from '../e2e/harness.ts';
import { parseProm, value } from './prom-text.ts';

const SECRET = 'workers-metrics-secret-0123456789';

interface LogLine {
  msg: string;
  worker?: number;
  esl?: { port: number };
  http?: { port: number };
}

let db: TestDb;
let redis: ReturnType<typeof createTestRedis>;
let child: ChildProcess;
const lines: LogLine[] = [];
let data: Awaited<ReturnType<typeof seedDemo>>;
const ready = () => lines.filter((l) => l.msg === 'ccard ready');

beforeAll(async () => {
  db = await createTestDb();
  redis = createTestRedis();
  data = await seedDemo(db.pool, derivePinKeys(SECRET));
  await db.pool.query(`UPDATE cards SET max_concurrent_calls = 50`);
  // Enough for every call to be reserved in full while the others are.
  await withTransaction(db.pool, (c) =>
    applyBalanceChange(c, { cardId: data.cards.rich.id, amount: parseMoney('10000'), reason: 'topup', ref: 'metrics-workers', onFloor: 'reject' }),
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
  await waitFor('two workers', async () => (ready().length >= 2 ? true : undefined), 30_000);
}, 40_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  await redis?.redis.quit();
  await db?.drop();
});

describe('GET /metrics with CCARD_WORKERS=2', () => {
  it('every scrape, whichever worker answers it, counts the calls of both workers', async () => {
    const eslPort = ready()[0]!.esl!.port;
    const httpPort = ready()[0]!.http!.port;
    const sim = new FreeSwitchSim({ port: eslPort, timeScale: 0, record: false });
    const servedBy = () => new Set(lines.filter((l) => l.msg === 'call ended').map((l) => l.worker));
    let placed = 0;
    for (let round = 0; round < 10 && servedBy().size < 2; round++) {
      const results = await sim.callMany(
        10,
        (i) => ({
          did: data.did,
          callerId: `1555${String(4_000_000 + placed + i).padStart(7, '0')}`,
          digits: [`${data.cards.rich.pin}#`, '15557654321#', ''],
          carrier: () => carrier.answer(100, 2_000),
        }),
        10,
      );
      placed += results.length;
    }
    expect(servedBy()).toEqual(new Set([0, 1]));
    // The flows end just after their sockets close.
    await waitFor('every call counted', async () => {
      const s = parseProm(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      return value(s, 'ccard_calls_total', { outcome: 'completed' }) === placed ? true : undefined;
    });
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
      expect(r.status).toBe(200);
      const s = parseProm(await r.text());
      expect(value(s, 'ccard_calls_total', { outcome: 'completed' })).toBe(placed);
      expect(value(s, 'ccard_cdrs_total', { source: 'socket', result: 'debited' })).toBe(placed);
      expect(value(s, 'ccard_reservation_duration_seconds_count')).toBe(placed);
      expect(value(s, 'ccard_calls_in_progress')).toBe(0);
      // Read from the database by each worker: the max of equal values, not their sum.
      expect(value(s, 'ccard_calls_unbilled')).toBe(0);
      expect(value(s, 'ccard_ready')).toBe(1);
    }
  }, 60_000);
});
