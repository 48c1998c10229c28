/**
 * A settle that cannot reach PostgreSQL (the database or the network down) is journaled and retried until it
 * lands: in order, with backoff, surviving a restart of the worker, exactly once. PostgreSQL is "stopped" by
 * cutting a TCP proxy in front of it, never the machine's real server.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices } from '../../src/app/call-services.ts';
import { finishCall } from '../../src/billing/settle.ts';
import { DebitJournal } from '../../src/cdr/journal.ts';
import { RetryWorker } from '../../src/cdr/retry.ts';
import { SpoolIntake } from '../../src/cdr/spool.ts';
import { writeCdrFile } from '../../src/sim/jsoncdr.ts';
import { isUnavailableError } from '../../src/app/call-services.ts';
import { ServiceUnavailableError } from '../../src/flow/services.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { createPool, type Pool } from '../../src/store/db.ts';
import { waitFor } from '../e2e/harness.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, carrierLegCdr, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog, unansweredBridge } from '../billing-service/fixtures.ts';
import { PgProxy } from './pg-proxy.ts';

const ctx = { ivrUuid: '2b314978-1142-482a-9df4-4905a48f5811', did: '18005550100', callerId: '15551230000' };

let db: TestDb;
let proxy: PgProxy;
let pool: Pool;
let dir: string;
beforeAll(async () => {
  db = await createTestDb();
  proxy = new PgProxy();
  await proxy.up();
  pool = createPool(proxy.url(db.url), 4);
  dir = await mkdtemp(path.join(tmpdir(), 'ccard-journal-'));
});
afterAll(async () => {
  await pool.end().catch(() => {});
  await proxy.down();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

const worker = (journal: DebitJournal, live: MemoryLiveBalance, log = silentLog) =>
  new RetryWorker({ journal, finish: (f) => finishCall({ pool, live }, f), isUnavailable: isUnavailableError, logger: log, minDelayMs: 50, maxDelayMs: 400, scanMs: 200 });

describe('debits journaled while PostgreSQL is down', () => {
  it('land once it is back, in order, after a restart of the worker, exactly once', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
    const live = new MemoryLiveBalance();
    const journal = new DebitJournal(dir);
    let first = worker(journal, live);
    first.start();
    const svc = createCallServices({
      pool,
      live,
      rates,
      pinKeys,
      config: { ...BASE_CONFIG, opTimeoutMs: 3_000 },
      logger: silentLog,
      debitJournal: { add: async (f) => (await journal.add(f), first.kick()) },
    });
    const talked = await svc.reserve(cardId, '15557654321', ctx);
    const busy = await svc.reserve(cardId, '15557654321', ctx);
    if (!talked.ok || !busy.ok) throw new Error('not reserved');

    await proxy.down();
    // The socket's CDR debit and the busy call's release both fail: the caller hears "service unavailable", and
    // what the bridges said is on disk.
    await expect(svc.settle(talked.reservation, answeredBridge(talked.reservation.callId, 30))).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(svc.settle(busy.reservation, unansweredBridge())).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(await journal.size()).toBe(2);
    // Calls go on meanwhile (the worker never blocks them) and it keeps retrying with backoff.
    await waitFor('a failed replay', async () => (first.stats.failures >= 2 && first.stats.backingOff ? true : undefined));
    expect((await moneyFacts(db.pool, cardId)).cdrs).toBe(0);

    // ccard restarts while PostgreSQL is still down: the journal is on disk, a new worker takes it over.
    await first.stop();
    const live2 = new MemoryLiveBalance();
    first = worker(new DebitJournal(dir), live2);
    first.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(await journal.size()).toBe(2);

    await proxy.up();
    await waitFor('the journal to drain', async () => ((await journal.size()) === 0 ? true : undefined), 10_000);
    const m = await moneyFacts(db.pool, cardId);
    // 30 s at 1.20/min = 0.60, once; the busy call released.
    expect(m.cdrs).toBe(1);
    expect(m.callDebits).toBe(-600_000n);
    expect(m.balance).toBe(10_000_000n - 600_000n);
    expect(m.balance).toBe(m.ledgerSum);
    expect(m.openCalls).toBe(0);
    const st = await db.pool.query<{ call_id: string; status: string }>('SELECT call_id::text, status FROM calls WHERE card_id = $1', [cardId]);
    expect(Object.fromEntries(st.rows.map((r) => [r.call_id, r.status]))).toEqual({
      [talked.reservation.callId]: 'settled',
      [busy.reservation.callId]: 'released',
    });
    const src = await db.pool.query<{ source: string }>('SELECT source FROM cdrs WHERE call_id = $1', [talked.reservation.callId]);
    expect(src.rows[0]!.source).toBe('socket');
    expect(first.stats.landed).toBe(2);

    // The same ending replayed again (a sibling process, a copy of the file): a duplicate, nothing moves.
    await journal.add({ callId: talked.reservation.callId, answered: true, billsec: 30, source: 'socket' });
    await first.runOnce();
    expect(await journal.size()).toBe(0);
    expect(await moneyFacts(db.pool, cardId)).toEqual(m);
    await first.stop();
  }, 30_000);

  it('a spooled CDR met by a database outage waits in processing/ and is billed once it is back', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 5 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
    const svc = createCallServices({ pool, live: new MemoryLiveBalance(), rates, pinKeys, config: { ...BASE_CONFIG, opTimeoutMs: 3_000 }, logger: silentLog });
    const r = await svc.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error('not reserved');
    const spoolDir = await mkdtemp(path.join(tmpdir(), 'ccard-spool-'));
    try {
      const spool = new SpoolIntake({
        dirs: [spoolDir],
        ingest: (t) => svc.ingestJsonCdr(t, 'spool'),
        isUnavailable: isUnavailableError,
        logger: silentLog,
        watch: false,
        scanMs: 100,
        minDelayMs: 50,
        maxDelayMs: 200,
      });
      await proxy.down();
      await writeCdrFile(spoolDir, r.reservation.callId, carrierLegCdr(r.reservation.callId, 15));
      await spool.start();
      await waitFor('the outage to be noticed', async () => (spool.stats.backingOff ? true : undefined));
      expect(await readdir(path.join(spoolDir, 'processing'))).toEqual([`${r.reservation.callId}.cdr.json`]);
      expect(await readdir(path.join(spoolDir, 'rejected'))).toEqual([]);
      await proxy.up();
      await waitFor('the CDR billed', async () => ((await readdir(path.join(spoolDir, 'done'))).length === 1 ? true : undefined), 10_000);
      await spool.stop();
      const m = await moneyFacts(db.pool, cardId);
      expect(m.cdrs).toBe(1);
      expect(m.callDebits).toBe(-300_000n);
      expect(m.balance).toBe(m.ledgerSum);
      expect(spool.stats).toMatchObject({ billed: 1, backingOff: false });
    } finally {
      await proxy.up().catch(() => {});
      await rm(spoolDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('a corrupt entry is set aside with a reason, never deleted, and does not hold up the others', async () => {
    const own = await mkdtemp(path.join(tmpdir(), 'ccard-journal-'));
    try {
      const journal = new DebitJournal(own);
      await journal.add({ callId: '0b6a7c52-1d49-4a8e-9a6f-2c1d3e4f5a6b', answered: false, billsec: 0, source: 'socket' });
      await writeFile(path.join(own, '0000000000001-000000-deadbeef.debit.json'), '{"v":1,"callId":"nope"');
      const w = worker(journal, new MemoryLiveBalance());
      await w.runOnce();
      expect(await journal.size()).toBe(0);
      expect((await readdir(path.join(own, 'rejected'))).sort()).toEqual([
        '0000000000001-000000-deadbeef.debit.json',
        '0000000000001-000000-deadbeef.debit.json.reason',
      ]);
      // The unknown call's entry landed as what it is (no such call): done.
      expect(w.stats.landed).toBe(1);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
