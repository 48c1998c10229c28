/**
 * A call that ends while ccard is down is still billed, automatically (issue 15 §1). ccard runs as a real child
 * process (`ccard serve`); it is killed with SIGKILL while a call is bridged. The simulated FreeSWITCH keeps the
 * bridge up (as a real one does), the call ends, mod_json_cdr's POSTs fail (nobody listens) and the CDR is written
 * to err-log-dir exactly as mod_json_cdr writes it; with log-http-and-disk the same CDR is in log-dir too. Both
 * directories are ccard's spool. ccard restarts and the debit appears within seconds, exactly once, with
 * balance = ledger; a truncated file and a CDR of a call ccard never reserved, found there too, are set aside.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/app/seed.ts';
import { FreeSwitchSim, carrier } from '../../src/sim/index.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { carrierLegCdr } from '../billing-service/fixtures.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { waitFor } from './harness.ts';
import { spawnServe } from './serve-process.ts';

const SECRET = 'spool-test-secret-0123456789';

let db: TestDb;
let redis: ReturnType<typeof createTestRedis>;
let data: Awaited<ReturnType<typeof seedDemo>>;
let root: string;
let errLogDir: string;
let logDir: string;
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

interface Running {
  child: ChildProcess;
  lines: Array<{ msg: string; [k: string]: unknown }>;
  exited: Promise<unknown>;
}

function startCcard(env: Record<string, string>): Running {
  const lines: Running['lines'] = [];
  const child = spawnServe(env, lines);
  children.push(child);
  return { child, lines, exited: new Promise((r) => child.once('exit', r)) };
}

const ready = (r: Running) => waitFor('ccard ready', async () => (r.lines.some((l) => l.msg === 'ccard ready') ? true : undefined), 30_000);

beforeAll(async () => {
  db = await createTestDb();
  redis = createTestRedis();
  data = await seedDemo(db.pool, derivePinKeys(SECRET));
  root = await mkdtemp(path.join(tmpdir(), 'ccard-e2e-spool-'));
  errLogDir = path.join(root, 'json_cdr_err');
  logDir = path.join(root, 'json_cdr');
}, 30_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis.redis.quit();
  await db.drop();
  await rm(root, { recursive: true, force: true });
});

describe('ccard killed (SIGKILL) while a call is bridged', () => {
  it('restarts and bills the call from the spooled CDR within seconds, exactly once, balance = ledger', async () => {
    const [eslPort, httpPort] = [await freePort(), await freePort()];
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      CCARD_REDIS_PREFIX: redis.prefix,
      CCARD_SECRET: SECRET,
      CCARD_ESL_PORT: String(eslPort),
      CCARD_HTTP_PORT: String(httpPort),
      CCARD_CDR_SPOOL_DIR: `${errLogDir},${logDir}`,
      CCARD_CDR_SPOOL_SCAN_SECONDS: '1',
      CCARD_JOURNAL_DIR: path.join(root, 'journal'),
      LOG_LEVEL: 'info',
    };
    const first = startCcard(env);
    await ready(first);

    const card = data.cards.rich;
    const before = await db.pool.query<{ balance_micros: bigint }>('SELECT balance_micros FROM cards WHERE id = $1', [card.id]);
    // 20 virtual ms per real ms: 100 s of talk take 5 s.
    const sim = new FreeSwitchSim({
      port: eslPort,
      timeScale: 0.05,
      jsonCdrUrl: `http://127.0.0.1:${httpPort}/cdr`,
      jsonCdrRetries: 1,
      jsonCdrDelayMs: 1000,
      jsonCdrErrLogDirs: [errLogDir],
      jsonCdrLogDir: logDir,
      jsonCdrLogHttpAndDisk: true,
      bridgeOutlivesSocket: true,
    });
    const placed = sim.call({
      did: data.did,
      callerId: '15551239876',
      digits: [{ keys: `${card.pin}#`, afterMs: 10, gapMs: 10 }, { keys: '15559991234#', afterMs: 10, gapMs: 10 }],
      carrier: () => carrier.answer(100, 100_000),
    });
    const callId = await waitFor('the reserved call', async () => {
      const r = await db.pool.query<{ call_id: string }>(`SELECT call_id::text FROM calls WHERE card_id = $1 AND status = 'reserved'`, [card.id]);
      return r.rows[0]?.call_id;
    });
    // The bridge is sent with the reservation's prompt and answered 5 ms (real) later.
    await new Promise((r) => setTimeout(r, 1500));
    first.child.kill('SIGKILL');
    await first.exited;

    const result = await placed;
    const leg = result.bLegs[0]!;
    expect(leg.uuid).toBe(callId);
    expect(leg.answered).toBe(true);
    expect(leg.billsec).toBeGreaterThanOrEqual(99);
    expect(leg.cdrPostStatus).toBe(0); // nobody answered
    expect(leg.cdrErrLogFile).toBe(path.join(errLogDir, `${callId}.cdr.json`));
    expect(existsSync(path.join(logDir, `${callId}.cdr.json`))).toBe(true);
    expect((await db.pool.query('SELECT 1 FROM cdrs WHERE call_id = $1', [callId])).rows).toHaveLength(0);

    // Also in the spool: a truncated file (FreeSWITCH died writing it) and a CDR of a call ccard never reserved.
    const stranger = randomUUID();
    await writeFile(path.join(errLogDir, `${stranger}.cdr.json`), carrierLegCdr(stranger, 42) + '\n');
    const truncated = randomUUID();
    await writeFile(path.join(errLogDir, `${truncated}.cdr.json`), carrierLegCdr(truncated, 42).slice(0, 3000));
    const old = new Date(Date.now() - 300_000);
    await utimes(path.join(errLogDir, `${truncated}.cdr.json`), old, old);

    const second = startCcard(env);
    await ready(second);
    // Billed from disk before the new process even takes calls (or within seconds of it), however slowly it started.
    const readyAt = Date.now();
    const cdr = await waitFor(
      'the debit',
      async () => {
        const r = await db.pool.query<{ cost_micros: bigint; billed_seconds: number; source: string }>(
          'SELECT cost_micros, billed_seconds, source FROM cdrs WHERE call_id = $1',
          [callId],
        );
        return r.rows[0];
      },
      15_000,
    );
    expect(Date.now() - readyAt).toBeLessThan(5_000);
    expect(cdr.source).toBe('spool');
    expect(cdr.billed_seconds).toBe(leg.billsec);
    // Both copies (err-log-dir and log-dir) were looked at; one debit.
    await waitFor('both copies done', async () => {
      const a = await readdir(path.join(errLogDir, 'done')).catch((): string[] => []);
      const b = await readdir(path.join(logDir, 'done')).catch((): string[] => []);
      return a.includes(`${callId}.cdr.json`) && b.includes(`${callId}.cdr.json`) ? true : undefined;
    });
    const ledger = await db.pool.query<{ amount_micros: bigint }>(
      `SELECT amount_micros FROM ledger WHERE card_id = $1 AND reason = 'call' AND ref = $2`,
      [card.id, callId],
    );
    expect(ledger.rows.map((r) => r.amount_micros)).toEqual([-cdr.cost_micros]);
    expect(cdr.cost_micros).toBeGreaterThan(0n);
    const after = await db.pool.query<{ balance_micros: bigint; sum: bigint }>(
      `SELECT c.balance_micros, (SELECT sum(amount_micros) FROM ledger l WHERE l.card_id = c.id)::bigint AS sum FROM cards c WHERE c.id = $1`,
      [card.id],
    );
    expect(after.rows[0]!.balance_micros).toBe(after.rows[0]!.sum);
    expect(after.rows[0]!.balance_micros).toBe(before.rows[0]!.balance_micros - cdr.cost_micros);
    const status = await db.pool.query<{ status: string }>('SELECT status FROM calls WHERE call_id = $1', [callId]);
    expect(status.rows[0]!.status).toBe('settled');

    await waitFor('the other files handled', async () => {
      const rejected = await readdir(path.join(errLogDir, 'rejected')).catch((): string[] => []);
      return rejected.includes(`${truncated}.cdr.json.reason`) ? true : undefined;
    });
    expect(await readFile(path.join(errLogDir, 'rejected', `${truncated}.cdr.json.reason`), 'utf8')).toMatch(/truncated/);
    expect(await readdir(path.join(errLogDir, 'done'))).toContain(`${stranger}.cdr.json`);
    expect((await db.pool.query('SELECT 1 FROM cdrs WHERE call_id = $1', [stranger])).rows).toHaveLength(0);
    expect((await readdir(errLogDir)).filter((n) => n.endsWith('.cdr.json'))).toEqual([]);

    second.child.kill('SIGTERM');
    await second.exited;
  }, 90_000);
});
