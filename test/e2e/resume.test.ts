/**
 * A crashed ccard process never drops a caller (issue 15 §3). `ccard serve` with CCARD_WORKERS=2 (real processes,
 * real PostgreSQL and Redis), the simulator with the shipped dialplan's two `socket` actions (README-resume.md).
 * The worker serving a call is killed (SIGKILL) during the PIN prompt, during the destination prompt, while bridged
 * and after the bridge: the other worker takes the call over, every caller ends normally, every answered call is
 * billed once, and no hold is left. And a crash mid-slice (issue 15 §2): the call ends at the cap armed when the
 * worker died, billed exactly what that cap holds.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/app/seed.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { parseMoney } from '../../src/money/money.ts';
import { withTransaction } from '../../src/store/db.ts';
import { FreeSwitchSim, carrier, type CallResult, type CallScript } from '../../src/sim/index.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { spawnServe } from './serve-process.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { waitFor } from './harness.ts';

const SECRET = 'resume-test-secret-0123456789';

interface LogLine {
  msg: string;
  worker?: number;
  pid: number;
  call?: string;
  esl?: { port: number };
  http?: { port: number };
}

let db: TestDb;
let redis: ReturnType<typeof createTestRedis>;
let child: ChildProcess;
const lines: LogLine[] = [];
const killed = new Set<number>();
let data: Awaited<ReturnType<typeof seedDemo>>;
let sim: FreeSwitchSim;

const ready = () => lines.filter((l) => l.msg === 'ccard ready');
const alive = () => {
  const latest = new Map<number, LogLine>();
  for (const l of ready()) latest.set(l.worker ?? 0, l);
  return [...latest.values()].filter((l) => !killed.has(l.pid));
};

beforeAll(async () => {
  db = await createTestDb();
  redis = createTestRedis();
  data = await seedDemo(db.pool, derivePinKeys(SECRET));
  await db.pool.query(`UPDATE series SET max_concurrent_calls = 50`);
  await withTransaction(db.pool, (c) =>
    applyBalanceChange(c, { cardId: data.cards.rich.id, amount: parseMoney('95'), reason: 'topup', ref: 'resume-test', onFloor: 'reject' }),
  );
  child = spawnServe(
    {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      CCARD_REDIS_PREFIX: redis.prefix,
      CCARD_SECRET: SECRET,
      CCARD_WORKERS: '2',
      // Slices of 10 s (the minimum call): the carriers above hang up sooner; the crash mid-slice below does not.
      CCARD_SLICE_SECONDS: '10',
      CCARD_ESL_PORT: '0',
      CCARD_HTTP_PORT: '0',
      // debug: each worker's 'call started' line (a call's only info line is its summary at the end).
      LOG_LEVEL: 'debug',
    },
    lines,
  );
  await waitFor('two workers', async () => (ready().length >= 2 ? true : undefined), 30_000);
  const first = ready()[0]!;
  sim = new FreeSwitchSim({
    port: first.esl!.port,
    timeScale: 1,
    // The shipped dialplan: a second socket action after the first (ccard asks for resume itself).
    dialplan: { sockets: 2 },
    jsonCdrUrl: `http://127.0.0.1:${first.http!.port}/cdr`,
    jsonCdrDelayMs: 500,
    idleTimeoutMs: 60_000,
  });
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await redis?.redis.quit();
  await db?.drop();
});

const fast = (keys: string) => ({ keys, afterMs: 50, gapMs: 20 });
const card = () => data.cards.rich;
const DEST = '15557654321';

/**
 * Places the call and kills the worker serving it `afterMs` after the nth run of `app` starts on the channel (and
 * `ready` says so, when given); returns the result and the victim's pid.
 */
async function callAndKill(
  script: CallScript,
  at: { app: string; nth: number; afterMs: number; ready?: (uuid: string) => Promise<boolean> },
): Promise<{ result: CallResult; victim: number }> {
  await waitFor('two live workers', async () => (alive().length >= 2 ? true : undefined), 30_000);
  const uuid = randomUUID();
  let reached: number | undefined;
  const placed = sim.call({
    ...script,
    uuid,
    did: data.did,
    callerId: '15551230000',
    onApp: (app, nth) => {
      if (app === at.app && nth === at.nth) reached ??= Date.now();
    },
  });
  const started = await waitFor('the call started', async () => lines.find((l) => l.msg === 'call started' && l.call === uuid), 20_000);
  await waitFor(`${at.app} #${at.nth}`, async () => (reached !== undefined && Date.now() - reached >= at.afterMs && (!at.ready || (await at.ready(uuid))) ? true : undefined), 20_000);
  killed.add(started.pid);
  process.kill(started.pid, 'SIGKILL');
  const result = await placed;
  return { result, victim: started.pid };
}

const pinPrompts = (r: CallResult) => r.digits.filter((d) => d.varName === 'ccard_pin').length;
const destPrompts = (r: CallResult) => r.digits.filter((d) => d.varName === 'ivr_destination').length;
const played = (r: CallResult, prompt: string) => r.prompts.filter((p) => p.endsWith(`/${prompt}.wav`)).length;
async function callRow(ivrUuid: string) {
  const r = await db.pool.query<{ call_id: string; status: string }>('SELECT call_id, status FROM calls WHERE ivr_uuid = $1', [ivrUuid]);
  return r.rows;
}
async function cdrsOf(ivrUuid: string) {
  const r = await db.pool.query<{ call_id: string; cost_micros: string; source: string }>('SELECT call_id, cost_micros, source FROM cdrs WHERE ivr_uuid = $1', [ivrUuid]);
  return r.rows;
}

/** The caller ended normally: the flow hung up after its goodbye, the other worker served it. */
function endedNormally(r: CallResult, victim: number) {
  expect(r.resumes).toBe(1);
  expect(r.hangupBy).toBe('client');
  expect(r.hangupCause).toBe('NORMAL_CLEARING');
  expect(played(r, 'goodbye')).toBe(1);
  const servers = lines.filter((l) => l.msg === 'call started' && l.call === r.uuid).map((l) => l.pid);
  expect(servers).toHaveLength(2);
  expect(servers[1]).not.toBe(victim);
}

describe('a ccard worker killed mid-call (CCARD_WORKERS=2, socket_resume)', () => {
  it('during the PIN prompt: the other worker asks for the PIN again and the call completes, billed once', async () => {
    const { result, victim } = await callAndKill(
      {
        digits: [{ keys: `${card().pin}#`, afterMs: 4000 }, fast(`${card().pin}#`), fast(`${DEST}#`), ''],
        carrier: () => carrier.answer(100, 1500),
      },
      { app: 'play_and_get_digits', nth: 1, afterMs: 500 },
    );
    endedNormally(result, victim);
    expect(pinPrompts(result)).toBe(2);
    expect(result.bLegs.filter((b) => b.answered)).toHaveLength(1);
    await waitFor('its CDR', async () => ((await cdrsOf(result.uuid)).length === 1 ? true : undefined));
  }, 60_000);

  it('during the destination prompt: no PIN again, the destination is asked again, the call completes', async () => {
    const { result, victim } = await callAndKill(
      {
        digits: [fast(`${card().pin}#`), { keys: `${DEST}#`, afterMs: 4000 }, fast(`${DEST}#`), ''],
        carrier: () => carrier.answer(100, 1500),
      },
      { app: 'play_and_get_digits', nth: 2, afterMs: 500 },
    );
    endedNormally(result, victim);
    expect(pinPrompts(result)).toBe(1);
    expect(destPrompts(result)).toBe(2);
    expect(result.bLegs.filter((b) => b.answered)).toHaveLength(1);
    await waitFor('its CDR', async () => ((await cdrsOf(result.uuid)).length === 1 ? true : undefined));
  }, 60_000);

  it('while bridged: the bridge runs on, then the call is settled from its CDR and the caller hears the balance and the offer', async () => {
    const { result, victim } = await callAndKill(
      { digits: [fast(`${card().pin}#`), fast(`${DEST}#`), ''], carrier: () => carrier.answer(100, 4000) },
      { app: 'bridge', nth: 1, afterMs: 1500, ready: async (uuid) => (await callRow(uuid)).length === 1 },
    );
    endedNormally(result, victim);
    expect(pinPrompts(result)).toBe(1);
    // Not cut: the carrier ended it after its 4 s.
    expect(result.bLegs).toHaveLength(1);
    expect(result.bLegs[0]!.hangupCause).toBe('NORMAL_CLEARING');
    expect(result.bLegs[0]!.billsec).toBeGreaterThanOrEqual(4);
    expect(played(result, 'remaining_balance')).toBe(1);
    expect(result.prompts.some((p) => p.endsWith('/another_call.wav'))).toBe(true);
    const cdrs = await waitFor('its CDR', async () => {
      const rows = await cdrsOf(result.uuid);
      return rows.length ? rows : undefined;
    });
    expect(cdrs).toHaveLength(1);
    expect(cdrs[0]!.call_id).toBe(result.bLegs[0]!.uuid);
  }, 60_000);

  it('after the bridge (at the "another call" offer): no PIN again, the balance and the offer again, billed once', async () => {
    const { result, victim } = await callAndKill(
      { digits: [fast(`${card().pin}#`), fast(`${DEST}#`), { keys: '2', afterMs: 4000 }, fast('2')], carrier: () => carrier.answer(100, 1000) },
      { app: 'play_and_get_digits', nth: 3, afterMs: 500, ready: async (uuid) => (await cdrsOf(uuid)).length === 1 },
    );
    endedNormally(result, victim);
    expect(pinPrompts(result)).toBe(1);
    expect(result.bLegs).toHaveLength(1);
    expect(played(result, 'remaining_balance')).toBe(2);
    expect((await cdrsOf(result.uuid))).toHaveLength(1);
  }, 60_000);

  it('a crash mid-slice: the call still ends at its current cap, billed what was talked, never more than held', async () => {
    let extendedAt: number | undefined;
    const { result, victim } = await callAndKill(
      // The far end would talk for a minute: only the cap ends the call.
      { digits: [fast(`${card().pin}#`), fast(`${DEST}#`), ''], carrier: () => carrier.answer(100, 60_000) },
      {
        app: 'bridge',
        nth: 1,
        afterMs: 0,
        // Killed once the hold was extended (first slice 10 s -> 20 s) and the new cap re-armed a moment later (a
        // crash between the two leaves the old cap: the call ends there, with more held than it costs).
        ready: async (uuid) => {
          const r = await db.pool.query<{ max_seconds: number }>('SELECT max_seconds FROM calls WHERE ivr_uuid = $1', [uuid]);
          if ((r.rows[0]?.max_seconds ?? 0) > 10) extendedAt ??= Date.now();
          return extendedAt !== undefined && Date.now() - extendedAt > 300;
        },
      },
    );
    endedNormally(result, victim);
    const leg = result.bLegs[0]!;
    expect(leg.hangupCause).toBe('ALLOTTED_TIMEOUT');
    const row = await db.pool.query<{ max_seconds: number; reserved_micros: string; status: string }>(
      'SELECT max_seconds, reserved_micros, status FROM calls WHERE call_id = $1',
      [leg.uuid],
    );
    expect(row.rows[0]!.max_seconds).toBe(20);
    expect(row.rows[0]!.status).toBe('settled');
    // The cap armed by the dead worker ended the call on its tick; nothing more was extended after the crash.
    expect(leg.billsec).toBe(20);
    const cdrs = await db.pool.query<{ billed_seconds: number; cost_micros: string }>('SELECT billed_seconds, cost_micros FROM cdrs WHERE call_id = $1', [leg.uuid]);
    expect(cdrs.rows).toHaveLength(1);
    expect(cdrs.rows[0]!.billed_seconds).toBe(20);
    expect(BigInt(cdrs.rows[0]!.cost_micros)).toBeLessThanOrEqual(BigInt(row.rows[0]!.reserved_micros));
  }, 60_000);

  it('every answered call billed once, balance = ledger, no call left reserved and no hold left', async () => {
    const bad = await db.pool.query<{ bad: string }>(
      `SELECT count(*) AS bad FROM cards c WHERE c.balance_micros <> (SELECT coalesce(sum(amount_micros), 0) FROM ledger l WHERE l.card_id = c.id)`,
    );
    expect(Number(bad.rows[0]!.bad)).toBe(0);
    const sums = await db.pool.query<{ debits: string; cdrs: string; n: string; dup: string }>(
      `SELECT (SELECT -sum(amount_micros) FROM ledger WHERE card_id = $1 AND reason = 'call') AS debits,
              (SELECT sum(cost_micros) FROM cdrs WHERE card_id = $1) AS cdrs,
              (SELECT count(*) FROM cdrs WHERE card_id = $1) AS n,
              (SELECT count(*) FROM (SELECT ref FROM ledger WHERE reason = 'call' GROUP BY ref HAVING count(*) > 1) d) AS dup`,
      [card().id],
    );
    expect(Number(sums.rows[0]!.n)).toBe(5);
    expect(sums.rows[0]!.debits).toBe(sums.rows[0]!.cdrs);
    expect(Number(sums.rows[0]!.dup)).toBe(0);
    await waitFor('no call reserved', async () => {
      const r = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM calls WHERE status = 'reserved'`);
      return Number(r.rows[0]!.n) === 0 ? true : undefined;
    });
    const keys = await redis.redis.keys(`${redis.prefix}*:r`);
    for (const k of keys) expect(await redis.redis.hlen(k)).toBe(0);
  }, 30_000);
});
