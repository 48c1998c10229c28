import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { openTransactions, rawGet, seedBigRateTable, seedManyCards } from '../helpers/bulk-data.ts';
import { buildApi } from '../../src/api/server.ts';
import { createPool, type Pool } from '../../src/store/db.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { BulkGate, type BulkWork } from '../../src/store/bulk.ts';

/**
 * Misbehaving HTTP clients against exports and imports, over real sockets: abandoned and stalled downloads, more
 * exports than the bulk gate admits, a huge bad CSV. The bulk pool is tiny (2) so exhaustion is reached with small
 * numbers. Bound for the API's answer while the abuse runs: 3 s (it answers in milliseconds when idle; the bound
 * leaves room for a CI machine running other suites).
 */
const CARDS = 60_000; // ~2 MB of CSV: more than loopback socket buffers hold for a client that does not read
// 40k rates of ~300 bytes: 12 MB, far more than a client that does not read lets through socket buffers.
const RATES = 40_000;
const RATE_PAD = 270;
const STALL_MS = 1_000;
const API_BOUND_MS = 3_000;

let db: TestDb;
let dbName: string;
let app: FastifyInstance;
let bulkPool: Pool;
let bulk: BulkWork;
let port: number;
let key: string;
const keys = derivePinKeys('availability-secret-0123456789');
const auth = () => ({ authorization: `Bearer ${key}` });

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

async function timedSeries(): Promise<{ status: number; ms: number }> {
  const t0 = Date.now();
  const r = await fetch(`http://127.0.0.1:${port}/v1/series`, { headers: auth() });
  await r.arrayBuffer();
  return { status: r.status, ms: Date.now() - t0 };
}

/** The server's side of every connection, by the client's port. */
const serverSockets = new Map<number, Socket>();
const released = () => until('every export connection released', async () => bulk.gate.stats.running === 0 && (await openTransactions(db.pool, dbName)) === 0);

beforeAll(async () => {
  db = await createTestDb();
  dbName = new URL(db.url).pathname.slice(1);
  const rt = await seedBigRateTable(db.pool, 'big', RATES, RATE_PAD);
  await seedManyCards(db.pool, rt, CARDS);
  key = (await createApiKey({ pool: db.pool, pinKeys: keys }, 'test')).key;
  bulkPool = createPool(db.url, 2);
  bulk = { pool: bulkPool, gate: new BulkGate({ slots: 2, queue: 2, queueWaitMs: 1_000, retryAfterSec: 3 }), stallMs: STALL_MS };
  app = buildApi({ pool: db.pool, pinKeys: keys, bulk, bodyLimit: 8 * 1024 * 1024 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  app.server.on('connection', (s: Socket) => void serverSockets.set(s.remotePort!, s));
}, 60_000);
afterAll(async () => {
  await app?.close();
  await bulkPool?.end();
  await db?.drop();
});

describe('abandoned and stalled exports', () => {
  it('20+ clients that read 1 KB and hang up leave no open transaction; the API keeps answering', async () => {
    for (const path of ['/v1/cards/export', '/v1/cards/export?format=xlsx', '/v1/rates/big/export']) {
      const clients = await Promise.all(Array.from({ length: 22 }, () => rawGet(port, path, auth(), { abandonAfter: 1024 })));
      // The gate admits 2 and queues 2; the rest were refused at once (503) or abandoned mid-body.
      expect(clients.every((c) => c.status === 200 || c.status === 503)).toBe(true);
      await released();
      const s = await timedSeries();
      expect(s.status).toBe(200);
      expect(s.ms).toBeLessThan(API_BOUND_MS);
    }
    // And a well-behaved export afterwards gets every card.
    const full = await rawGet(port, '/v1/cards/export', auth());
    expect(full.status).toBe(200);
    expect(full.complete).toBe(true);
    expect(full.body.toString('utf8').trimEnd().split('\n')).toHaveLength(CARDS + 1);
  }, 90_000);

  it('a client that stops reading is cut after the stall timeout and its connection released', async () => {
    await released();
    const stalled = await rawGet(port, '/v1/rates/big/export', auth(), { stall: true });
    expect(stalled.status).toBe(200);
    expect(bulk.gate.stats.running).toBe(1);
    // The cursor is held while the client could still read, then let go once it stalled past STALL_MS.
    const took = await released();
    expect(took).toBeGreaterThanOrEqual(STALL_MS / 2);
    // The server cut the response and closed its socket (a client that resumes later finds the body incomplete).
    const mine = serverSockets.get(stalled.socket.localPort!)!;
    expect(mine).toBeDefined();
    await until('the server closed the stalled connection', async () => mine.destroyed);
    stalled.socket.destroy();
  });
});

describe('the bulk gate', () => {
  it('more exports than it admits get 503 with Retry-After, never a 200 with only a header row', async () => {
    await released();
    const clients = await Promise.all(Array.from({ length: 12 }, () => rawGet(port, '/v1/cards/export', auth(), { stall: true })));
    try {
      const ok = clients.filter((c) => c.status === 200);
      const busy = clients.filter((c) => c.status === 503);
      expect(ok.length + busy.length).toBe(12);
      expect(ok.length).toBeGreaterThanOrEqual(2);
      expect(busy.length).toBeGreaterThanOrEqual(12 - 4 - 2); // 2 running, 2 queued (which may get a slot later)
      for (const b of busy) {
        expect(b.head).toMatch(/\r\nretry-after: 3\r\n/i);
        const body = b.body.toString('utf8');
        expect(JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1))).toMatchObject({ error: { code: 'BUSY' } });
      }
      // Meanwhile the operator API (its own pool) answers at once.
      const s = await timedSeries();
      expect(s.status).toBe(200);
      expect(s.ms).toBeLessThan(API_BOUND_MS);
    } finally {
      for (const c of clients) c.socket.destroy();
    }
    await released();
  });

  it('shutdown does not wait on a stalled export', async () => {
    const gate = new BulkGate({ slots: 1, queue: 1, queueWaitMs: 5_000 });
    const other = buildApi({ pool: db.pool, pinKeys: keys, bulk: { pool: bulkPool, gate, stallMs: 60_000 } });
    await other.listen({ host: '127.0.0.1', port: 0 });
    const p = (other.server.address() as AddressInfo).port;
    const stalled = await rawGet(p, '/v1/cards/export', auth(), { stall: true });
    const queued = rawGet(p, '/v1/cards/export', auth());
    await until('one queued', async () => gate.stats.waiting === 1);
    expect(stalled.status).toBe(200);
    const t0 = Date.now();
    await other.close();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await queued).status).toBe(503);
    stalled.socket.destroy();
    await until('released', async () => gate.stats.running === 0 && (await openTransactions(db.pool, dbName)) === 0);
  });
});

describe('rate export and import', () => {
  it('the rate export streams the whole table', async () => {
    const r = await rawGet(port, '/v1/rates/big/export', auth());
    expect(r.status).toBe(200);
    expect(r.head).toMatch(/transfer-encoding: chunked/i);
    expect(r.complete).toBe(true);
    const lines = r.body.toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(RATES + 1);
    expect(lines[1]).toBe(`100001,Destination 1${'.'.repeat(RATE_PAD)},0.001001,0.00,60,60,,`);
  });

  it('a huge bad CSV answers 400 with the first 100 errors and the count of the rest', async () => {
    const bad = ['prefix,rate', ...Array.from({ length: 150_000 }, (_, i) => `${i},not-a-rate`)].join('\n');
    const t0 = Date.now();
    const [r, s] = await Promise.all([
      fetch(`http://127.0.0.1:${port}/v1/rates/huge`, { method: 'PUT', headers: { ...auth(), 'content-type': 'text/csv' }, body: bad }),
      new Promise((res) => setTimeout(res, 100)).then(timedSeries),
    ]);
    const body = (await r.json()) as { error: { code: string; message: string; details: string[] } };
    expect(r.status).toBe(400);
    expect(body.error.code).toBe('INVALID_INPUT');
    expect(body.error.details).toHaveLength(101);
    expect(body.error.details[0]).toBe("line 2: rate 'not-a-rate' is not a decimal number (at most 6 decimals, e.g. 0.0125)");
    expect(body.error.details[100]).toBe('... and 149900 more errors (not listed)');
    expect(JSON.stringify(body).length).toBeLessThan(20_000);
    expect(s).toMatchObject({ status: 200 });
    expect((s as { ms: number }).ms).toBeLessThan(API_BOUND_MS);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect((await db.pool.query(`SELECT 1 FROM rate_tables WHERE name = 'huge'`)).rowCount).toBe(0);
  });

  it('a body over the limit is refused with 413', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/v1/rates/toolarge`, {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'text/csv' },
      body: 'prefix,rate\n' + '1,0.1\n'.repeat(1_500_000),
    });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('an upload that stops sending is answered 408 after the stall timeout; its transaction is rolled back', async () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => `${700_000 + i},D,0.01`).join('\n');
    const socket = net.connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', () => {});
    });
    socket.write(
      `PUT /v1/rates/stalled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: text/csv\r\n` +
        `Content-Length: ${rows.length + 1_000_000}\r\nConnection: close\r\n\r\nprefix,destination,rate\n${rows}\n`,
    );
    // The rows sent so far are staged inside the import's transaction, which must not outlive the stall.
    await until('the import running', async () => bulk.gate.stats.running === 1);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/"code":"REQUEST_TIMEOUT"/);
    await released();
    expect((await db.pool.query(`SELECT 1 FROM rate_tables WHERE name = 'stalled'`)).rowCount).toBe(0);
  });

  it('a good import over HTTP is streamed in and applied', async () => {
    const csv = ['prefix,destination,rate', ...Array.from({ length: 20_000 }, (_, i) => `${500_000 + i},D,0.01`)].join('\n');
    const r = await fetch(`http://127.0.0.1:${port}/v1/rates/imported`, { method: 'PUT', headers: { ...auth(), 'content-type': 'text/csv' }, body: csv });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ created: true, rows: 20_000, inserted: 20_000 });
  });
});
