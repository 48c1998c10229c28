import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { parseMoney } from '../../src/money/money.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { openTransactions, rawGet, seedBigRateTable, seedManyCards } from '../helpers/bulk-data.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

/**
 * Load tests of issue 13's availability section (loopback only, bounded in count and time): while HTTP clients
 * abuse exports and imports, calls placed through the simulator still complete and bill, and the operator API
 * answers within API_BOUND_MS (3 s; milliseconds when idle: the bound
 * leaves room for a CI machine running other suites). Pools are made small so that exhaustion is reached with small numbers: 2 bulk
 * connections, 4 queued bulk requests, a 1 s stall timeout.
 */
const API_BOUND_MS = 3_000;
const CARDS = 30_000;
const RATES = 20_000;
const RATE_PAD = 200; // ~5 MB rate export

let h: Harness;
let key: string;
let port: number;
let dbName: string;
const auth = () => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  h = await startHarness({
    env: {
      CCARD_DB_POOL_CALLS: '6',
      CCARD_DB_POOL_API: '3',
      CCARD_DB_POOL_BULK: '2',
      CCARD_BULK_QUEUE: '4',
      CCARD_BULK_QUEUE_WAIT_MS: '500',
      CCARD_EXPORT_STALL_MS: '1000',
    },
  });
  port = h.service.http.port;
  dbName = new URL(h.db.url).pathname.slice(1);
  key = (await createApiKey({ pool: h.service.pool, pinKeys: h.service.pinKeys }, 'load')).key;
  await seedManyCards(h.db.pool, h.data.rateTableId, CARDS);
  await seedBigRateTable(h.db.pool, 'big', RATES, RATE_PAD);
}, 90_000);
afterAll(async () => {
  await h?.close();
});

/** One call from the rich card: it must complete and be billed 0.04 (3 s at 0.05/min, 30 s first block, 0.01 connect). */
async function callAndBill(): Promise<void> {
  const card = h.data.cards.rich;
  const before = await h.balance(card.id);
  const { outcome } = await h.place({
    did: h.data.did,
    callerId: '15551230000',
    digits: [`${card.pin}#`, '15557654321#', ''],
    carrier: () => carrier.answer(200, 3000),
  });
  expect(outcome.ended).toBe('completed');
  const callId = outcome.calls[0]!.callId;
  const cdr = await h.db.pool.query<{ cost_micros: bigint }>('SELECT cost_micros FROM cdrs WHERE call_id = $1', [callId]);
  expect(cdr.rows[0]?.cost_micros).toBe(parseMoney('0.04'));
  expect(await h.balance(card.id)).toBe(before - parseMoney('0.04'));
}

/** Runs `abuse` and, meanwhile, `calls` calls one after another and API requests every 100 ms; checks both. */
async function whileAbused<T>(abuse: Promise<T>, calls = 2): Promise<T> {
  let abused = false;
  const slowest: number[] = [];
  const probing = (async () => {
    while (!abused) {
      const t0 = Date.now();
      const r = await fetch(`http://127.0.0.1:${port}/v1/series`, { headers: auth() });
      await r.arrayBuffer();
      expect(r.status).toBe(200);
      slowest.push(Date.now() - t0);
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  try {
    for (let i = 0; i < calls; i++) await callAndBill();
    return await abuse;
  } finally {
    abused = true;
    await probing;
    expect(slowest.length).toBeGreaterThan(0);
    expect(Math.max(...slowest)).toBeLessThan(API_BOUND_MS);
  }
}

const released = () =>
  waitFor(
    'every bulk connection released',
    async () => (h.service.pools.bulk.gate.stats.running === 0 && (await openTransactions(h.db.pool, dbName)) === 0 ? true : undefined),
    10_000,
  );

describe('calls and the API survive export and import abuse', () => {
  it('25 abandoned and 5 stalled exports', async () => {
    const abuse = Promise.all([
      ...Array.from({ length: 25 }, (_, i) => rawGet(port, i % 2 ? '/v1/cdrs/export' : '/v1/cards/export', auth(), { abandonAfter: 1024 })),
      ...Array.from({ length: 5 }, () => rawGet(port, '/v1/rates/big/export', auth(), { stall: true })),
    ]);
    const clients = await whileAbused(abuse);
    expect(clients.every((c) => c.status === 200 || c.status === 503)).toBe(true);
    await released();
    for (const c of clients) c.socket.destroy();
    await callAndBill();
  }, 60_000);

  it('200 concurrent exports: each is complete or refused with 503 + Retry-After, never a truncated 200', async () => {
    const abuse = Promise.all(Array.from({ length: 200 }, () => rawGet(port, '/v1/cards/export', auth())));
    const clients = await whileAbused(abuse);
    const ok = clients.filter((c) => c.status === 200);
    const busy = clients.filter((c) => c.status === 503);
    expect(ok.length + busy.length).toBe(200);
    expect(ok.length).toBeGreaterThanOrEqual(2);
    for (const c of ok) {
      expect(c.complete).toBe(true);
      expect(c.body.toString('utf8').trimEnd().split('\n')).toHaveLength(CARDS + 3 + 1); // + the 3 demo cards + header
    }
    for (const c of busy) expect(c.head).toMatch(/\r\nretry-after: \d+\r\n/i);
    await released();
  }, 60_000);

  it('20 parallel exports of a large rate table', async () => {
    const abuse = Promise.all(Array.from({ length: 20 }, () => rawGet(port, '/v1/rates/big/export', auth())));
    const clients = await whileAbused(abuse);
    const ok = clients.filter((c) => c.status === 200);
    expect(ok.length + clients.filter((c) => c.status === 503).length).toBe(20);
    expect(ok.length).toBeGreaterThanOrEqual(2);
    for (const c of ok) {
      expect(c.complete).toBe(true);
      expect(c.body.toString('utf8').trimEnd().split('\n')).toHaveLength(RATES + 1);
    }
    await released();
  }, 60_000);

  it('a huge bad rate CSV', async () => {
    const bad = ['prefix,destination,rate', ...Array.from({ length: 200_000 }, (_, i) => `${i},"Bad destination ${i}",oops`)].join('\n');
    const abuse = fetch(`http://127.0.0.1:${port}/v1/rates/demo`, {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'text/csv' },
      body: bad,
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { code: string; details: string[] } } }));
    const r = await whileAbused(abuse);
    expect(r.status).toBe(400);
    expect(r.body.error.details).toHaveLength(101);
    expect(r.body.error.details[100]).toBe('... and 199900 more errors (not listed)');
    // The demo table was not touched: calls are still rated.
    await callAndBill();
  }, 60_000);

  it('SIGTERM (service.stop) does not wait on a stalled export', async () => {
    h.service.pools.bulk.stallMs = 600_000; // the export alone would hold on for 10 minutes
    const stalled = await rawGet(port, '/v1/rates/big/export', auth(), { stall: true });
    expect(stalled.status).toBe(200);
    expect(h.service.pools.bulk.gate.stats.running).toBe(1);
    const t0 = Date.now();
    await h.service.stop(2_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await openTransactions(h.db.pool, dbName)).toBe(0);
    stalled.socket.destroy();
  }, 60_000);
});
