/**
 * The CDR spool intake against real PostgreSQL: files written exactly as mod_json_cdr writes them (in place, JSON
 * then "\n"), the same file in two spool directories, two intakes (ccard processes) sharing the directories, a file
 * still being written, a truncated file, a file that is not JSON, and a CDR of a call ccard never reserved.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices, isUnavailableError, type CcardCallServices } from '../../src/app/call-services.ts';
import { SpoolIntake } from '../../src/cdr/spool.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { writeCdrFile } from '../../src/sim/jsoncdr.ts';
import { waitFor } from '../e2e/harness.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, carrierLegCdr, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog } from '../billing-service/fixtures.ts';

const ctx = { ivrUuid: '2b314978-1142-482a-9df4-4905a48f5811', did: '18005550100', callerId: '15551230000' };

let db: TestDb;
let svc: CcardCallServices;
let cardId: string;
let root: string;
beforeAll(async () => {
  db = await createTestDb();
  const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 20 });
  ({ cardId } = await createCard(db.pool, { seriesId, balance: 100_000_000n }));
  const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }] });
  svc = createCallServices({ pool: db.pool, live: new MemoryLiveBalance(), rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
  root = await mkdtemp(path.join(tmpdir(), 'ccard-spool-'));
});
afterAll(async () => {
  await db.drop();
  await rm(root, { recursive: true, force: true });
});

async function reserve(): Promise<string> {
  const r = await svc.reserve(cardId, '15557654321', ctx);
  if (!r.ok) throw new Error('not reserved');
  return r.reservation.callId;
}

const intake = (dirs: string[], extra: Partial<ConstructorParameters<typeof SpoolIntake>[0]> = {}) =>
  new SpoolIntake({ dirs, ingest: (t) => svc.ingestJsonCdr(t, 'spool'), isUnavailable: isUnavailableError, logger: silentLog, watch: false, ...extra });

async function dirs(...names: string[]): Promise<string[]> {
  const base = await mkdtemp(path.join(root, 't-'));
  const out = names.map((n) => path.join(base, n));
  for (const d of out) await mkdir(d);
  return out;
}
const ls = async (dir: string) => (await readdir(dir).catch(() => [])).sort();

describe('CDR spool intake', () => {
  it('the same CDR in two spool directories, taken by two ccard processes at once: billed exactly once', async () => {
    const [a, b] = await dirs('err-log-dir', 'log-dir');
    const callId = await reserve();
    const before = await moneyFacts(db.pool, cardId);
    const one = intake([a!, b!]);
    const two = intake([b!, a!]);
    await Promise.all([one.start(), two.start()]);
    const body = carrierLegCdr(callId, 45);
    await writeCdrFile(a!, callId, body);
    await writeCdrFile(b!, callId, body);
    await Promise.all([one.scanOnce(), two.scanOnce()]);
    await Promise.all([one.stop(), two.stop()]);

    const after = await moneyFacts(db.pool, cardId);
    expect(after.cdrs).toBe(before.cdrs + 1);
    // 45 s at 1.20/min = 0.90
    expect(after.callDebits - before.callDebits).toBe(-900_000n);
    expect(after.balance).toBe(after.ledgerSum);
    const src = await db.pool.query<{ source: string }>('SELECT source FROM cdrs WHERE call_id = $1', [callId]);
    expect(src.rows.map((r) => r.source)).toEqual(['spool']);
    for (const d of [a!, b!]) {
      expect(await ls(path.join(d, 'done'))).toEqual([`${callId}.cdr.json`]);
      expect(await ls(path.join(d, 'processing'))).toEqual([]);
      expect((await ls(d)).filter((n) => n.endsWith('.cdr.json'))).toEqual([]);
    }
    expect(one.stats.billed + two.stats.billed).toBe(1);
    expect(one.stats.duplicate + two.stats.duplicate).toBe(1);
  });

  it('a file still being written is not read as whole: it is billed once complete', async () => {
    const [a] = await dirs('spool');
    const callId = await reserve();
    const s = intake([a!]);
    await s.start();
    // mod_json_cdr has written the JSON but not yet its final "\n": the intake claims the file and waits.
    await writeCdrFile(a!, callId, carrierLegCdr(callId, 20), async () => {
      await s.scanOnce();
      expect(await ls(path.join(a!, 'processing'))).toEqual([`${callId}.cdr.json`]);
      const billed = await db.pool.query('SELECT 1 FROM cdrs WHERE call_id = $1', [callId]);
      expect(billed.rows).toHaveLength(0);
    });
    // The writer still held the file open and finished it where it now is; the next look bills it.
    await waitFor('the CDR to be billed', async () => {
      await s.scanOnce();
      return (await ls(path.join(a!, 'done'))).includes(`${callId}.cdr.json`) ? true : undefined;
    });
    const cdr = await db.pool.query<{ billed_seconds: number }>('SELECT billed_seconds FROM cdrs WHERE call_id = $1', [callId]);
    expect(cdr.rows[0]!.billed_seconds).toBe(20);
    await s.stop();
  });

  it('truncated and non-JSON files go to rejected/ with a reason; a CDR of an unknown call is ignored (done/)', async () => {
    const [a] = await dirs('spool');
    const callId = await reserve();
    const full = carrierLegCdr(callId, 30);
    // Truncated: FreeSWITCH died mid-write; nothing touched it for longer than the grace period.
    await writeFile(path.join(a!, `${callId}.cdr.json`), full.slice(0, full.length / 2));
    const old = new Date(Date.now() - 120_000);
    await utimes(path.join(a!, `${callId}.cdr.json`), old, old);
    await writeFile(path.join(a!, 'garbage.cdr.json'), 'cdr=%7B%22not%22\n');
    const stranger = randomUUID();
    await writeFile(path.join(a!, `${stranger}.cdr.json`), carrierLegCdr(stranger, 60) + '\n');
    await writeFile(path.join(a!, 'notes.txt'), 'not a CDR file name: left alone');
    const before = await moneyFacts(db.pool, cardId);

    const s = intake([a!], { incompleteGraceMs: 30_000 });
    await s.scanOnce();
    expect(await ls(path.join(a!, 'rejected'))).toEqual(
      [`${callId}.cdr.json`, `${callId}.cdr.json.reason`, 'garbage.cdr.json', 'garbage.cdr.json.reason'].sort(),
    );
    expect(await readFile(path.join(a!, 'rejected', `${callId}.cdr.json.reason`), 'utf8')).toMatch(/truncated: no final newline/);
    expect(await readFile(path.join(a!, 'rejected', 'garbage.cdr.json.reason'), 'utf8')).toMatch(/not JSON/);
    expect(await ls(path.join(a!, 'done'))).toEqual([`${stranger}.cdr.json`]);
    expect(await ls(a!)).toEqual(['done', 'notes.txt', 'processing', 'rejected']);
    expect(s.stats).toMatchObject({ billed: 0, ignored: 1, rejected: 2 });
    expect(await moneyFacts(db.pool, cardId)).toEqual(before);
    // The truncated call is still open: its CDR may still come (e.g. from log-dir), or it ends unbilled.
    const st = await db.pool.query<{ status: string }>('SELECT status FROM calls WHERE call_id = $1', [callId]);
    expect(st.rows[0]!.status).toBe('reserved');
  });

  it('files appearing while it runs are picked up by the watcher', async () => {
    const [a] = await dirs('spool');
    const callId = await reserve();
    const s = intake([a!], { watch: true, scanMs: 60_000 });
    await s.start();
    await writeCdrFile(a!, callId, carrierLegCdr(callId, 10));
    await waitFor('the watcher to bill it', async () => ((await ls(path.join(a!, 'done'))).length === 1 ? true : undefined), 5_000);
    expect(s.stats.billed).toBe(1);
    await s.stop();
  });

  it('an unusable spool directory is logged and skipped; the others are still billed and ccard keeps running', async () => {
    const [good, notADir] = await dirs('spool', 'file');
    await rm(notADir!, { recursive: true });
    await writeFile(notADir!, 'a file where a directory should be');
    const callId = await reserve();
    const errors: string[] = [];
    const s = intake([path.join(notADir!, 'sub'), good!], { logger: { ...silentLog, error: (_o: object, m?: string) => void errors.push(m ?? '') } });
    await s.start();
    await writeCdrFile(good!, callId, carrierLegCdr(callId, 12));
    await s.scanOnce();
    await s.stop();
    expect(await ls(path.join(good!, 'done'))).toEqual([`${callId}.cdr.json`]);
    expect(errors).toContain('spool directory unusable; retried at every scan');
    expect(errors).toContain('spool scan failed; retried at the next scan');
  });

  it('a claim left in processing/ by a ccard that was killed is billed at the next start, not minutes later', async () => {
    const [a] = await dirs('spool');
    const callId = await reserve();
    await mkdir(path.join(a!, 'processing'));
    await writeCdrFile(path.join(a!, 'processing'), callId, carrierLegCdr(callId, 25));
    await new Promise((r) => setTimeout(r, 20)); // the claim predates the new process
    const s = intake([a!], { staleClaimMs: 600_000 });
    await s.scanOnce();
    expect(await ls(path.join(a!, 'done'))).toEqual([`${callId}.cdr.json`]);
    expect(s.stats.billed).toBe(1);
  });
});
