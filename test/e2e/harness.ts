import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/env.ts';
import type { FlowOutcome } from '../../src/flow/machine.ts';
import { startService, type Service, type ServiceOptions } from '../../src/app/service.ts';
import { seedDemo, type DemoData } from '../../src/app/seed.ts';
import { FreeSwitchSim, type CallResult, type CallScript, type SimOptions } from '../../src/sim/index.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';

/** Polls `fn` until it returns something other than undefined, or fails after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Harness {
  db: TestDb;
  service: Service;
  data: DemoData;
  sim: FreeSwitchSim;
  outcomes: FlowOutcome[];
  /** Waits until `n` call flows have finished (the outcome arrives just after the socket closes). */
  waitOutcomes(n: number, timeoutMs?: number): Promise<FlowOutcome[]>;
  /** Places one call and returns what the simulator saw and how the flow ended it. */
  place(script: CallScript): Promise<{ result: CallResult; outcome: FlowOutcome }>;
  balance(cardId: string): Promise<bigint>;
  close(): Promise<void>;
}

/**
 * The real service (ESL server, flow, billing, HTTP) on a fresh PostgreSQL database and a unique Redis prefix,
 * seeded with the demo data, plus a FreeSWITCH simulator pointed at it.
 */
export async function startHarness(
  opts: { sim?: Partial<SimOptions>; service?: Partial<ServiceOptions>; jsonCdr?: boolean; env?: Record<string, string>; db?: TestDb } = {},
): Promise<Harness> {
  // `db`: a database created by the test (dropped by close()); env.DATABASE_URL may point at it another way.
  const db = opts.db ?? (await createTestDb());
  const journal = mkdtempSync(path.join(tmpdir(), 'ccard-journal-'));
  const { redis, prefix, url } = createTestRedis();
  redis.disconnect();
  const config = loadConfig({
    DATABASE_URL: db.url,
    REDIS_URL: url,
    CCARD_REDIS_PREFIX: prefix,
    CCARD_SECRET: 'test-secret-0123456789',
    LOG_LEVEL: 'silent',
    CCARD_SOUNDS_PREFIX: '/usr/share/ccard/sounds',
    // Each service its own debit journal (never the repository's .data/).
    CCARD_JOURNAL_DIR: journal,
    // The simulator's virtual clock runs as fast as it can (timeScale 0): a call's slice would end before any real
    // timer could extend it. Tests of slices set it (and a real-time simulator) themselves (test/e2e/slices.test.ts).
    CCARD_SLICE_SECONDS: '0',
    ...opts.env,
  });
  const outcomes: FlowOutcome[] = [];
  const service = await startService({
    config,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    eslPort: 0,
    httpPort: 0,
    scheduler: false,
    onCallEnded: (o) => outcomes.push(o),
    // Short waits keep the suite fast; the simulator answers digit prompts at once.
    flow: { menuTimeoutMs: 1000, bridgeHangupGraceMs: 3000 },
    ...opts.service,
  });
  const data = await seedDemo(service.pool, service.pinKeys);
  await service.rates.reload();
  const sim = new FreeSwitchSim({
    port: service.esl.port,
    timeScale: 0,
    ...(opts.jsonCdr ? { jsonCdrUrl: `http://127.0.0.1:${service.http.port}/cdr`, jsonCdrDelayMs: 50 } : {}),
    ...opts.sim,
  });
  const waitOutcomes = (n: number, timeoutMs = 10_000) =>
    waitFor(`${n} finished calls (have ${outcomes.length})`, async () => (outcomes.length >= n ? outcomes : undefined), timeoutMs);
  return {
    db,
    service,
    data,
    sim,
    outcomes,
    waitOutcomes,
    async place(script) {
      const n = outcomes.length;
      const result = await sim.call(script);
      // Every call of every e2e test: ccard never queues a command that FreeSWITCH would run out of order.
      if (result.nestedExecutes.length) throw new Error(`FreeSWITCH would nest executes: ${JSON.stringify(result.nestedExecutes)}`);
      return { result, outcome: (await waitOutcomes(n + 1))[n]! };
    },
    balance: (cardId) => service.services.balance(cardId),
    async close() {
      await sim.drain().catch(() => {});
      await service.stop(2_000);
      await db.drop();
      rmSync(journal, { recursive: true, force: true });
    },
  };
}
