import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { addOperator } from '../../src/store/admin/operators.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { createSeries } from '../../src/store/admin/series.ts';
import { cardGrid } from '../../src/store/admin/card-grid.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import { login, type ConsoleSession } from './helpers-console.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let admin: ConsoleSession;
let ops: ConsoleSession;
const live = new MemoryLiveBalance();
const keys = derivePinKeys('console-routes-test-secret-01');
const PW = 'console routes password';

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n44,UK,0.05\n');
  await importRateTable(ctx, 'alt', 'prefix,destination,rate\n1,USA,0.02\n');
  await createSeries(ctx, { name: 'Grid', number: '700', count: 30, balance: '5', rateTable: 'std', status: 'active' });
  await createSeries(ctx, { name: 'Other', number: '71', count: 5, balance: '1', rateTable: 'std' });
  // Balances 1..30 (in cents) and a last use on a few cards, so sorting means something.
  await db.pool.query(`UPDATE cards SET balance_micros = (substring(serial from 5)::int) * 10000 WHERE serial LIKE '700-%'`);
  await db.pool.query(`UPDATE cards SET last_used_at = now() - (substring(serial from 5)::int || ' hours')::interval WHERE serial IN ('700-000000003', '700-000000007')`);
  await addOperator(ctx, { login: 'root', role: 'admin', password: PW });
  await addOperator(ctx, { login: 'ops', role: 'operator', password: PW });
  app = buildApi({ pool: db.pool, pinKeys: keys, live });
  await app.ready();
  admin = await login(app, 'root', PW);
  ops = await login(app, 'ops', PW);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('card grid', () => {
  it('filters by series, sorts by balance both ways and counts exactly', async () => {
    const r = await ops.req('GET', '/v1/cards/grid?series=700&sort=balance&dir=desc&limit=5');
    expect(r.statusCode, r.body).toBe(200);
    const b = r.json();
    expect(b.total).toBe(30);
    expect(b.totalExact).toBe(true);
    expect(b.hasMore).toBe(true);
    expect(b.items.map((c: { balance: { value: string } }) => c.balance.value)).toEqual(['0.30', '0.29', '0.28', '0.27', '0.26']);
    const asc = (await ops.req('GET', '/v1/cards/grid?series=700&sort=balance&dir=asc&limit=2&offset=2')).json();
    expect(asc.items.map((c: { serial: string }) => c.serial)).toEqual(['700-000000003', '700-000000004']);
  });

  it('filters by serial prefix, status, balance range and last use; never mixes series that share digits', async () => {
    const series71 = (await ops.req('GET', '/v1/cards/grid?series=71')).json();
    expect(series71.total).toBe(5);
    expect(series71.items.every((c: { serial: string }) => c.serial.startsWith('71-'))).toBe(true);
    const prefix = (await ops.req('GET', '/v1/cards/grid?serial=700-00000001')).json();
    expect(prefix.total).toBe(10);
    const range = (await ops.req('GET', '/v1/cards/grid?series=700&minBalance=0.10&maxBalance=0.12')).json();
    expect(range.items.map((c: { serial: string }) => c.serial)).toEqual(['700-000000010', '700-000000011', '700-000000012']);
    const used = (await ops.req('GET', '/v1/cards/grid?sort=lastUsedAt&dir=desc&lastUsedAfter=2000-01-01')).json();
    expect(used.items.map((c: { serial: string }) => c.serial)).toEqual(['700-000000003', '700-000000007']);
    const pending = (await ops.req('GET', '/v1/cards/grid?status=pending')).json();
    expect(pending.total).toBe(5);
  });

  it('stops counting at the exact-count limit and answers the planner estimate, flagged', async () => {
    await db.pool.query('ANALYZE cards');
    const r = await cardGrid(ctx, { series: '700', limit: 5 }, { exactCountLimit: 10 });
    expect(r.totalExact).toBe(false);
    expect(r.total).toBeGreaterThanOrEqual(11);
    expect(r.items).toHaveLength(5);
    const exact = await cardGrid(ctx, { series: '700', limit: 5 }, { exactCountLimit: 30 });
    expect([exact.total, exact.totalExact]).toEqual([30, true]);
  });

  it('answers bad filters with a message naming the field', async () => {
    const bad = await ops.req('GET', '/v1/cards/grid?sort=pin');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^sort: must be one of serial, balance, lastUsedAt/);
    expect((await ops.req('GET', '/v1/cards/grid?minBalance=1.5.0')).statusCode).toBe(400);
    expect((await ops.req('GET', '/v1/cards/grid?minBalance=2&maxBalance=1')).statusCode).toBe(400);
    expect((await ops.req('GET', '/v1/cards/grid?series=999')).statusCode).toBe(404);
  });
});

describe('bulk edit and card page', () => {
  it('disables selected cards and sets their limits, recorded in the audit log with before and after', async () => {
    const r = await ops.req('POST', '/v1/cards/bulk', { serials: ['700-000000001', '700-000000002'], status: 'disabled', maxCalls: 2, rateTable: 'alt' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().updated).toHaveLength(2);
    expect(r.json().updated[0]).toMatchObject({ status: 'disabled', maxCalls: 2, rateTable: 'alt' });
    const audit = (await admin.req('GET', '/v1/audit?object=card:*')).json();
    expect(audit.items[0]).toMatchObject({ actor: 'operator:ops', action: 'POST /v1/cards/bulk', status: 200 });
    expect(audit.items[0].before.map((c: { status: string }) => c.status)).toEqual(['active', 'active']);
    expect(audit.items[0].after.updated.map((c: { status: string }) => c.status)).toEqual(['disabled', 'disabled']);
  });

  it('records a change made with an API key, with the card before and after, and not a refused one', async () => {
    const { key } = await createApiKey(ctx, 'ci');
    const headers = { authorization: `Bearer ${key}` };
    const ok = await app.inject({ method: 'PATCH', url: '/v1/cards/700-000000011', headers, payload: { creditLimit: '2.50' } });
    expect(ok.statusCode).toBe(200);
    const bad = await app.inject({ method: 'PATCH', url: '/v1/cards/700-000000011', headers, payload: { creditLimit: '-1' } });
    expect(bad.statusCode).toBe(400);
    const audit = (await admin.req('GET', '/v1/audit?object=card:700-000000011')).json().items;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: 'apikey:ci',
      action: 'PATCH /v1/cards/:serial',
      status: 200,
      request: { creditLimit: '2.50' },
      before: { serial: '700-000000011', creditLimit: { value: '0.00' } },
      after: { serial: '700-000000011', creditLimit: { value: '2.50' } },
    });
  });

  it('refuses unknown serials before changing anything, and reports cards a change cannot apply to', async () => {
    const r = await ops.req('POST', '/v1/cards/bulk', { serials: ['700-000000004', '700-000000999'], status: 'disabled' });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.message).toMatch(/700-000000999/);
    expect((await ops.req('GET', '/v1/cards/700-000000004')).json().status).toBe('active');
    expect((await ops.req('POST', '/v1/cards/bulk', { serials: [] , status: 'active' })).statusCode).toBe(400);
    expect((await ops.req('POST', '/v1/cards/bulk', { serials: ['700-000000004'] })).json().error.message).toMatch(/nothing to change/);
    await db.pool.query(`UPDATE cards SET credit_limit_micros = 5000000, balance_micros = -1000000 WHERE serial = '700-000000005'`);
    const partial = await ops.req('POST', '/v1/cards/bulk', { serials: ['700-000000005', '700-000000006'], creditLimit: '0' });
    expect(partial.json().updated.map((c: { serial: string }) => c.serial)).toEqual(['700-000000006']);
    expect(partial.json().failed).toEqual([{ serial: '700-000000005', message: expect.stringMatching(/credit limit/) }]);
  });

  it('shows a card with its ledger, calls and live holds', async () => {
    const top = await ops.req('POST', '/v1/cards/700-000000008/topup', { amount: '2.50' }, { 'idempotency-key': 'page-1' });
    expect(top.statusCode).toBe(200);
    const card = await db.pool.query<{ id: bigint }>(`SELECT id FROM cards WHERE serial = '700-000000008'`);
    const callId = randomUUID();
    await db.pool.query(
      `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, hold_until) VALUES ($1, $2, '15551234567', '{}', 600, 1230000, now() + interval '20 minutes')`,
      [callId, card.rows[0]!.id],
    );
    await live.load(card.rows[0]!.id.toString(), { spendable: 10_000_000n, version: 99n });
    await live.reserve(card.rows[0]!.id.toString(), callId, 1_000_000n, 60_000, 5);
    const r = (await ops.req('GET', '/v1/cards/700-000000008/overview')).json();
    expect(r.card.serial).toBe('700-000000008');
    expect(r.ledger[0]).toMatchObject({ reason: 'topup', amount: { value: '2.50' } });
    expect(r.holds).toEqual([expect.objectContaining({ callId, capSeconds: 600, held: { value: '1.00', micros: '1000000' } })]);
    const active = (await ops.req('GET', '/v1/calls/active')).json();
    expect(active.items).toEqual([expect.objectContaining({ callId, serial: '700-000000008', destination: '15551234567', capSeconds: 600, held: { value: '1.00', micros: '1000000' } })]);
    await live.settle(card.rows[0]!.id.toString(), callId);
    await db.pool.query(`UPDATE calls SET status = 'released' WHERE call_id = $1`, [callId]);
  });
});

describe('calls in progress over SSE', () => {
  it('pushes the calls in progress as server-sent events', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const card = await db.pool.query<{ id: bigint }>(`SELECT id FROM cards WHERE serial = '700-000000009'`);
    const callId = randomUUID();
    await db.pool.query(
      `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, hold_until, created_at) VALUES ($1, $2, '442071234567', '{}', 300, 500000, now() + interval '10 minutes', now() - interval '42 seconds')`,
      [callId, card.rows[0]!.id],
    );
    const text = await new Promise<string>((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port, path: '/v1/calls/live', headers: { cookie: ops.cookie } }, (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let buf = '';
        res.on('data', (d) => {
          buf += d.toString();
          if (buf.includes('event: calls')) {
            const end = buf.indexOf('\n\n', buf.indexOf('event: calls'));
            if (end > 0) {
              r.destroy();
              resolve(buf);
            }
          }
        });
      });
      r.on('error', reject);
      r.end();
    });
    const data = JSON.parse(/event: calls\ndata: (.*)\n/.exec(text)![1]!);
    const call = data.items.find((c: { callId: string }) => c.callId === callId);
    expect(call).toMatchObject({ serial: '700-000000009', destination: '442071234567', capSeconds: 300, held: { value: '0.50' } });
    expect(call.elapsedSeconds).toBeGreaterThanOrEqual(42);
    await db.pool.query(`UPDATE calls SET status = 'released' WHERE call_id = $1`, [callId]);
  });
});

describe('closing the server', () => {
  it('ends open event streams instead of waiting for the consoles to leave', async () => {
    const other = buildApi({ pool: db.pool, pinKeys: keys, live, webRoot: false });
    await other.listen({ port: 0, host: '127.0.0.1' });
    const { port } = other.server.address() as AddressInfo;
    const ended = new Promise<string>((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port, path: '/v1/calls/live', headers: { cookie: ops.cookie } }, (res) => {
        let buf = '';
        res.on('data', (d) => (buf += d.toString()));
        res.on('end', () => resolve(buf));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end();
    });
    await new Promise((r) => setTimeout(r, 300));
    const closed = await Promise.race([other.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 5000))]);
    expect(closed).toBe('closed');
    expect(await ended).toContain('event: calls');
  });
});

describe('background series creation', () => {
  it('answers a job at once and reports progress until the cards exist', async () => {
    const r = await ops.req('POST', '/v1/jobs/series', { name: 'Bg', number: '720', count: 2000, balance: '1', rateTable: 'std' });
    expect(r.statusCode, r.body).toBe(202);
    const id = r.json().id;
    let job = r.json();
    for (let i = 0; i < 200 && job.status === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      job = (await ops.req('GET', `/v1/jobs/${id}`)).json();
    }
    expect(job).toMatchObject({ status: 'done', done: 2000, total: 2000, actor: 'operator:ops', result: { number: '720', count: 2000 } });
    expect((await ops.req('GET', '/v1/cards/grid?series=720')).json().total).toBe(2000);
    const audit = (await admin.req('GET', '/v1/audit?object=series:720')).json().items;
    expect(audit.map((a: { action: string; actor: string }) => [a.action, a.actor])).toEqual([
      ['job: series created', 'operator:ops'],
      ['POST /v1/jobs/series', 'operator:ops'],
    ]);
  });

  it('validates before starting and refuses a taken number', async () => {
    const bad = await ops.req('POST', '/v1/jobs/series', { name: 'Bg', number: '721', count: 10, rateTable: 'std', pinLength: 6 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^pinLength: must be at least 8/);
    expect((await ops.req('POST', '/v1/jobs/series', { name: 'Bg', number: '700', count: 10, rateTable: 'std' })).statusCode).toBe(409);
    expect((await ops.req('POST', '/v1/jobs/series', { name: 'Bg', number: '722', count: 10, rateTable: 'nope' })).statusCode).toBe(404);
    expect((await ops.req('GET', '/v1/jobs/not-a-uuid')).statusCode).toBe(400);
    expect((await ops.req('GET', `/v1/jobs/${randomUUID()}`)).statusCode).toBe(404);
  });
});

describe('admin pages and preferences', () => {
  it('manages operators: a generated password once, role changes, the last admin kept', async () => {
    const add = await admin.req('POST', '/v1/operators', { login: 'newbie', role: 'viewer' });
    expect(add.statusCode, add.body).toBe(201);
    expect(add.json().password).toMatch(/^[A-Za-z0-9]{20}$/);
    await login(app, 'newbie', add.json().password);
    expect((await admin.req('PATCH', '/v1/operators/newbie', { role: 'operator' })).json().role).toBe('operator');
    expect((await admin.req('PATCH', '/v1/operators/root', { role: 'viewer' })).statusCode).toBe(409);
    expect((await admin.req('DELETE', '/v1/operators/root')).statusCode).toBe(409);
    expect((await admin.req('POST', '/v1/operators', { login: 'newbie' })).statusCode).toBe(409);
    expect((await admin.req('POST', '/v1/operators', { login: 'x', password: 'short' })).json().error.message).toMatch(/^password: must be at least 10/);
    const list = (await admin.req('GET', '/v1/operators')).json().items.map((o: { login: string }) => o.login);
    expect(list).toEqual(['newbie', 'ops', 'root']);
    expect((await admin.req('DELETE', '/v1/operators/newbie')).statusCode).toBe(204);
    const audit = (await admin.req('GET', '/v1/audit?object=operator:newbie')).json().items;
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['DELETE /v1/operators/:login', 'PATCH /v1/operators/:login', 'POST /v1/operators']);
    expect(JSON.stringify(audit)).not.toContain(add.json().password);
  });

  it('manages API keys over HTTP: the key once, revoked keys stop working', async () => {
    const k = await admin.req('POST', '/v1/api-keys', { name: 'robot' });
    expect(k.statusCode).toBe(201);
    const key = k.json().key;
    expect((await app.inject({ method: 'GET', url: '/v1/series', headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(200);
    expect((await admin.req('GET', '/v1/api-keys')).json().items).toContainEqual(expect.objectContaining({ name: 'robot', revokedAt: null }));
    expect((await admin.req('DELETE', '/v1/api-keys/robot')).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/v1/series', headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(401);
    const audit = (await admin.req('GET', '/v1/audit?object=apikey')).json().items;
    expect(JSON.stringify(audit)).not.toContain(key);
  });

  it('keeps each operator its own grid columns', async () => {
    expect((await ops.req('GET', '/v1/me/preferences')).json()).toEqual({});
    const put = await ops.req('PUT', '/v1/me/preferences', { cardColumns: ['balance', 'serial', 'lastUsedAt'] });
    expect(put.json()).toEqual({ cardColumns: ['balance', 'serial', 'lastUsedAt'] });
    await ops.req('PUT', '/v1/me/preferences', { pageSize: 100 });
    expect((await ops.req('GET', '/v1/me/preferences')).json()).toEqual({ cardColumns: ['balance', 'serial', 'lastUsedAt'], pageSize: 100 });
    expect((await admin.req('GET', '/v1/me/preferences')).json()).toEqual({});
    expect((await ops.req('PUT', '/v1/me/preferences', { cardColumns: ['pin'] })).statusCode).toBe(400);
    expect((await ops.req('PUT', '/v1/me/preferences', { cardColumns: ['serial', 'serial'] })).statusCode).toBe(400);
  });

  it('filters the audit log by actor and date', async () => {
    const mine = (await admin.req('GET', '/v1/audit?actor=ops')).json().items;
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((a: { actor: string }) => a.actor === 'operator:ops')).toBe(true);
    expect((await admin.req('GET', '/v1/audit?from=2000-01-01&to=2000-01-02')).json().items).toEqual([]);
  });
});

describe('cost report with a time series', () => {
  it('groups by destination and fills every day of the range', async () => {
    const card = await db.pool.query<{ id: bigint }>(`SELECT id FROM cards WHERE serial = '700-000000010'`);
    const at = '2026-03-02T10:00:00Z';
    const calls = [
      { dest: '15551230001', prefix: '1', name: 'USA', billsec: 60, cost: 12300 },
      { dest: '15551230002', prefix: '1', name: 'USA', billsec: 120, cost: 24600 },
      { dest: '442071234567', prefix: '44', name: 'UK', billsec: 0, cost: 0 },
    ];
    for (const c of calls) {
      const id = randomUUID();
      await db.pool.query(
        `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, hold_until, status, created_at)
         VALUES ($1, $2, $3, $4, 600, 0, now(), 'settled', $5)`,
        [id, card.rows[0]!.id, c.dest, JSON.stringify({ destination: c.name, prefix: c.prefix }), at],
      );
      if (c.billsec > 0) {
        await db.pool.query(
          `INSERT INTO cdrs (call_id, card_id, destination, prefix, billsec, billed_seconds, cost_micros, source, created_at, answered_at)
           VALUES ($1, $2, $3, $4, $5, $5, $6, 'socket', $7, $7)`,
          [id, card.rows[0]!.id, c.dest, c.prefix, c.billsec, c.cost, at],
        );
      }
    }
    const r = await ops.req('GET', '/v1/reports/cost-trend?by=destination&from=2026-03-01&to=2026-03-04&interval=day');
    expect(r.statusCode, r.body).toBe(200);
    const b = r.json();
    expect(b.groups).toEqual([{ key: '1', name: 'USA', currency: 'USD', calls: 2, billedSeconds: 180, billedMinutes: '3', totalCost: { value: '0.0369', micros: '36900' } }]);
    expect(b.series.map((p: { at: string }) => p.at)).toEqual(['2026-03-01T00:00:00.000Z', '2026-03-02T00:00:00.000Z', '2026-03-03T00:00:00.000Z']);
    expect(b.series[1]).toMatchObject({ attempts: 3, answered: 2, asr: 66.67, averageSeconds: 90, revenue: { value: '0.0369' } });
    expect(b.series[0]).toMatchObject({ attempts: 0, revenue: { value: '0.00' } });
    const hours = (await ops.req('GET', '/v1/reports/cost-trend?by=card&from=2026-03-02T09:00:00Z&to=2026-03-02T12:00:00Z&interval=hour')).json();
    expect(hours.series.map((p: { attempts: number }) => p.attempts)).toEqual([0, 3, 0]);
    expect(hours.groups[0]).toMatchObject({ key: '700-000000010', calls: 2 });
    expect((await ops.req('GET', '/v1/reports/cost-trend?from=2026-03-04&to=2026-03-01')).statusCode).toBe(400);
    expect((await ops.req('GET', '/v1/reports/cost-trend?from=2020-01-01&to=2026-01-01&interval=hour')).statusCode).toBe(400);
  });
});
