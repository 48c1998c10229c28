import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/app/seed.ts';
import { parseMoney } from '../../src/money/money.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { cli, SECRET } from './helpers.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/freeswitch/json_cdr/', import.meta.url));

describe('ccard cdr import: replaying mod_json_cdr err-log-dir files', () => {
  let db: TestDb;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDb();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ccard-cdr-'));
  });
  afterAll(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('debits a reserved call from its carrier-leg file once, ignores other legs, reports junk', async () => {
    const data = await seedDemo(db.pool, derivePinKeys(SECRET));
    const callId = '0b0c2a37-6d5e-4a53-9a1f-3b1a6a2e9c11';
    // A call reserved on the 0.05/min line (30 s first block, 6 s increments, 0.01 connect fee) whose CDR never
    // reached ccard: FreeSWITCH kept it in err-log-dir.
    await db.pool.query(
      `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, hold_until)
       VALUES ($1, $2, '15557654321', $3, 600, 510000, now() + interval '1 hour')`,
      [
        callId,
        data.cards.rich.id,
        JSON.stringify({
          rateId: '2', prefix: '1555', destination: 'USA test exchange', ratePerMin: '50000', connectFee: '10000',
          initialIncrement: 30, subsequentIncrement: 6, decimals: 2, rounding: 'up', minBillableSeconds: 0, taxPpm: 0,
        }),
      ],
    );
    // The recorded b-leg document (json_cdr 040, f_copy_json_cdr) re-aimed at this call, as err-log-dir holds it:
    // the JSON plus a newline.
    const rec = (await readdir(FIXTURES)).find((f) => f.startsWith('040-'))!;
    const raw = await readFile(path.join(FIXTURES, rec));
    const doc = JSON.parse(raw.subarray(raw.indexOf('\r\n\r\n') + 4).toString('utf8'));
    Object.assign(doc.variables, { uuid: callId, cc_call_id: callId, billsec: '45', billmsec: '45000' });
    const carrierFile = path.join(dir, `${callId}.cdr.json`);
    await writeFile(carrierFile, `${JSON.stringify(doc)}\n`);
    // The IVR leg's own document is in the same folder; it is not a carrier leg.
    const ivr = (await readdir(FIXTURES)).find((f) => f.startsWith('041-'))!;
    const ivrRaw = await readFile(path.join(FIXTURES, ivr));
    const ivrFile = path.join(dir, 'ivr.cdr.json');
    await writeFile(ivrFile, ivrRaw.subarray(ivrRaw.indexOf('\r\n\r\n') + 4));
    const junkFile = path.join(dir, 'junk.cdr.json');
    await writeFile(junkFile, '{"variables": oops');

    const run = cli(db);
    const before = (await db.pool.query('SELECT balance_micros FROM cards WHERE id = $1', [data.cards.rich.id])).rows[0].balance_micros;
    const first = await run('cdr', 'import', carrierFile, ivrFile, junkFile, '--json');
    expect(first.code).not.toBe(0); // the junk file is reported as a failure
    const rows = first.json<Array<{ file: string; status: string }>>();
    expect(rows.map((r) => r.status)).toEqual(['debited', 'ignored', 'invalid']);
    // 45 s: 30 s block + 3 x 6 s = 48 s at 0.05/min = 0.04 + 0.01 connect = 0.05
    const after = (await db.pool.query('SELECT balance_micros FROM cards WHERE id = $1', [data.cards.rich.id])).rows[0].balance_micros;
    expect(before - after).toBe(parseMoney('0.05'));

    const again = await run('cdr', 'import', carrierFile, '--json');
    expect(again.code).toBe(0);
    expect(again.json<Array<{ status: string }>>()[0]!.status).toBe('duplicate');
    const ledger = await db.pool.query(`SELECT count(*)::int AS n FROM ledger WHERE reason = 'call' AND ref = $1`, [callId]);
    expect(ledger.rows[0].n).toBe(1);
    const status = await db.pool.query('SELECT status FROM calls WHERE call_id = $1', [callId]);
    expect(status.rows[0].status).toBe('settled');
  });
});
