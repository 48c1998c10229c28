/**
 * PostgreSQL goes away while a call is bridged (issue 15 §1, "also seen"): the socket's CDR debit fails and is
 * journaled, mod_json_cdr's POSTs get 503 and the CDR goes to err-log-dir (ccard's spool). When PostgreSQL is back
 * the call is billed within seconds, exactly once, with balance = ledger. The outage is a TCP proxy cut in front of
 * PostgreSQL; the machine's real server is never stopped.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FreeSwitchSim, carrier } from '../../src/sim/index.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { PgProxy } from '../cdr/pg-proxy.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

let db: TestDb;
let proxy: PgProxy;
let spool: string;
let h: Harness;

beforeAll(async () => {
  db = await createTestDb();
  proxy = new PgProxy();
  await proxy.up();
  spool = await mkdtemp(path.join(tmpdir(), 'ccard-outage-spool-'));
  h = await startHarness({ db, env: { DATABASE_URL: proxy.url(db.url), CCARD_CDR_SPOOL_DIR: spool, CCARD_CDR_SPOOL_SCAN_SECONDS: '1' } });
}, 30_000);

afterAll(async () => {
  await proxy.up().catch(() => {});
  await h?.close();
  await proxy.down();
  await rm(spool, { recursive: true, force: true });
});

describe('PostgreSQL down while a call is bridged', () => {
  it('the debit lands once PostgreSQL is back: exactly once, balance = ledger', async () => {
    const card = h.data.cards.rich;
    const before = await db.pool.query<{ balance_micros: bigint }>('SELECT balance_micros FROM cards WHERE id = $1', [card.id]);
    const sim = new FreeSwitchSim({
      port: h.service.esl.port,
      timeScale: 0.05,
      jsonCdrUrl: `http://127.0.0.1:${h.service.http.port}/cdr`,
      jsonCdrRetries: 1,
      jsonCdrDelayMs: 1000,
      jsonCdrErrLogDirs: [spool],
    });
    const placed = sim.call({
      did: h.data.did,
      callerId: '15551234321',
      digits: [{ keys: `${card.pin}#`, afterMs: 10, gapMs: 10 }, { keys: '15559991234#', afterMs: 10, gapMs: 10 }],
      carrier: () => carrier.answer(100, 60_000),
    });
    const callId = await waitFor('the reserved call', async () => {
      const r = await db.pool.query<{ call_id: string }>(`SELECT call_id::text FROM calls WHERE card_id = $1 AND status = 'reserved'`, [card.id]);
      return r.rows[0]?.call_id;
    });
    await new Promise((r) => setTimeout(r, 700));
    await proxy.down();

    const result = await placed;
    const leg = result.bLegs[0]!;
    expect(leg.uuid).toBe(callId);
    expect(leg.answered).toBe(true);
    // mod_json_cdr was told to retry (503), then kept the file.
    expect(leg.cdrPostStatus).toBe(503);
    expect(leg.cdrErrLogFile).toBe(path.join(spool, `${callId}.cdr.json`));
    const outcome = (await h.waitOutcomes(1))[0]!;
    expect(outcome.calls[0]!.settleError).toMatch(/unavailable|ECONNREFUSED|terminated|timeout/i);
    expect((await db.pool.query('SELECT 1 FROM cdrs WHERE call_id = $1', [callId])).rows).toHaveLength(0);

    // Down for a while: nothing is dropped meanwhile.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await h.service.intake.journal.size()).toBe(1);
    await proxy.up();
    const backAt = Date.now();
    const cdr = await waitFor(
      'the debit',
      async () => (await db.pool.query<{ cost_micros: bigint; source: string }>('SELECT cost_micros, source FROM cdrs WHERE call_id = $1', [callId])).rows[0],
      20_000,
    );
    expect(Date.now() - backAt).toBeLessThan(15_000);
    expect(['socket', 'spool']).toContain(cdr.source);
    // Both the journal and the spooled file are done; one debit.
    await waitFor('journal and spool drained', async () =>
      (await h.service.intake.journal.size()) === 0 && (await readdir(path.join(spool, 'done'))).includes(`${callId}.cdr.json`) ? true : undefined,
    20_000);
    const ledger = await db.pool.query<{ amount_micros: bigint }>(`SELECT amount_micros FROM ledger WHERE reason = 'call' AND ref = $1`, [callId]);
    expect(ledger.rows.map((r) => r.amount_micros)).toEqual([-cdr.cost_micros]);
    const after = await db.pool.query<{ balance_micros: bigint; sum: bigint }>(
      `SELECT c.balance_micros, (SELECT sum(amount_micros) FROM ledger l WHERE l.card_id = c.id)::bigint AS sum FROM cards c WHERE c.id = $1`,
      [card.id],
    );
    expect(after.rows[0]!.balance_micros).toBe(after.rows[0]!.sum);
    expect(after.rows[0]!.balance_micros).toBe(before.rows[0]!.balance_micros - cdr.cost_micros);
    expect(await h.service.live.reservations(card.id)).toEqual([]);
  }, 60_000);
});
