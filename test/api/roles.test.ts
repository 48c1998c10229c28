import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { addOperator } from '../../src/store/admin/operators.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { createSeries } from '../../src/store/admin/series.ts';
import { requiredRole } from '../../src/api/access.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import { login, type ConsoleSession } from './helpers-console.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
const sessions: Record<string, ConsoleSession> = {};
const keys = derivePinKeys('roles-test-secret-0123456789');
const PW = 'roles test password';

interface Route {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';
  path: string;
  url: string;
}

let writes: Route[] = [];

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.01\n');
  await createSeries(ctx, { name: 'R', number: '800', count: 3, rateTable: 'std', status: 'active' });
  for (const role of ['viewer', 'operator', 'admin'] as const) await addOperator(ctx, { login: role, role, password: PW });
  app = buildApi({ pool: db.pool, pinKeys: keys });
  await app.ready();
  for (const role of ['viewer', 'operator', 'admin']) sessions[role] = await login(app, role, PW);
  // Every write route of the API, from the OpenAPI document (so a route added later is covered too).
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
  const sample: Record<string, string> = { serial: '800-000000001', number: '800', did: '15550001111', callerId: '15551112222', table: 'std', name: 'nope', login: 'viewer', id: '00000000-0000-4000-8000-000000000000' };
  writes = Object.entries(doc.paths)
    .filter(([p]) => p.startsWith('/v1/'))
    .flatMap(([p, methods]) =>
      Object.keys(methods)
        .map((m) => m.toUpperCase())
        .filter((m) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(m))
        .map((m) => ({ method: m as Route['method'], path: p, url: p.replace(/\{(\w+)\}/g, (_x, k: string) => sample[k] ?? 'x') })),
    );
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const fastifyPath = (p: string) => p.replace(/\{(\w+)\}/g, ':$1');

describe('roles on every write route', () => {
  it('finds the write routes in the OpenAPI document', () => {
    expect(writes.length).toBeGreaterThan(20);
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual(
      expect.arrayContaining(['POST /v1/cards/{serial}/topup', 'PUT /v1/rates/{table}', 'POST /v1/operators', 'POST /v1/cards/bulk', 'DELETE /v1/api-keys/{name}']),
    );
  });

  it('refuses a viewer every write but its own preferences, and changes nothing', async () => {
    const before = await db.pool.query('SELECT serial, status, balance_micros FROM cards ORDER BY serial');
    for (const w of writes) {
      const r = await sessions.viewer!.req(w.method, w.url, {}, { 'idempotency-key': 'k' });
      if (w.path === '/v1/me/preferences') expect(r.statusCode, `${w.method} ${w.path}`).not.toBe(403);
      else {
        expect(r.statusCode, `${w.method} ${w.path}: ${r.body}`).toBe(403);
        expect(r.json().error.code).toBe('FORBIDDEN');
      }
    }
    expect((await db.pool.query('SELECT serial, status, balance_micros FROM cards ORDER BY serial')).rows).toEqual(before.rows);
  });

  it('refuses an operator the admin areas (operators, API keys, rates, tax profiles) and lets it reach the rest', async () => {
    for (const w of writes) {
      const need = requiredRole(w.method, fastifyPath(w.path));
      const r = await sessions.operator!.req(w.method, w.url, {}, { 'idempotency-key': 'k' });
      if (need === 'admin') expect(r.statusCode, `${w.method} ${w.path}`).toBe(403);
      else expect(r.statusCode, `${w.method} ${w.path}: ${r.body}`).not.toBe(403);
    }
    const adminOnly = writes.filter((w) => requiredRole(w.method, fastifyPath(w.path)) === 'admin').map((w) => w.path);
    expect(new Set(adminOnly)).toEqual(
      new Set([
        '/v1/rates/{table}', '/v1/tax-profiles', '/v1/tax-profiles/{name}', '/v1/operators', '/v1/operators/{login}', '/v1/api-keys', '/v1/api-keys/{name}',
        '/v1/brand', '/v1/carriers', '/v1/carriers/{name}', '/v1/resellers', '/v1/resellers/{name}/topup',
        '/v1/routing-plans', '/v1/routing-plans/assign', '/v1/routing-plans/{name}', '/v1/routing-plans/{name}/entries', '/v1/routing-plans/{name}/entries/{prefix}',
      ]),
    );
    // Devices, provisioning codes and vouchers are the operator's day-to-day work.
    const operatorAreas = writes.filter((w) => /^\/v1\/(devices|provision-codes|vouchers)(\/|$)/.test(w.path));
    expect(operatorAreas.length).toBeGreaterThanOrEqual(6);
    for (const w of operatorAreas) expect(requiredRole(w.method, fastifyPath(w.path)), `${w.method} ${w.path}`).toBe('operator');
  });

  it('lets an admin reach every write route', async () => {
    for (const w of writes) {
      if (w.method === 'DELETE' && w.path === '/v1/operators/{login}') continue; // would remove the viewer used above
      const r = await sessions.admin!.req(w.method, w.url, {}, { 'idempotency-key': 'k' });
      expect(r.statusCode, `${w.method} ${w.path}: ${r.body}`).not.toBe(403);
    }
  });

  it('keeps the admin pages from other roles, reads open to all, PIN export to operators with confirmation', async () => {
    for (const url of ['/v1/operators', '/v1/api-keys', '/v1/audit']) {
      expect((await sessions.viewer!.req('GET', url)).statusCode).toBe(403);
      expect((await sessions.operator!.req('GET', url)).statusCode).toBe(403);
      expect((await sessions.admin!.req('GET', url)).statusCode).toBe(200);
    }
    for (const url of ['/v1/series', '/v1/cards/grid', '/v1/cdrs', '/v1/dids', '/v1/rates', '/v1/calls/active']) {
      expect((await sessions.viewer!.req('GET', url)).statusCode, url).toBe(200);
    }
    expect((await sessions.viewer!.req('GET', '/v1/cards/export?series=800&withPins=true&confirm=pins')).statusCode).toBe(403);
    const unconfirmed = await sessions.operator!.req('GET', '/v1/cards/export?series=800&withPins=true');
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.json().error.message).toMatch(/confirm=pins/);
    const ok = await sessions.operator!.req('GET', '/v1/cards/export?series=800&withPins=true&confirm=pins');
    expect(ok.statusCode).toBe(200);
    expect(ok.body.split('\n')[0]).toMatch(/^serial,pin,/);
    const audit = (await sessions.admin!.req('GET', '/v1/audit?object=cards:pins')).json().items;
    expect(audit[0]).toMatchObject({ actor: 'operator:operator', action: 'GET /v1/cards/export', request: { query: { series: '800', withPins: 'true', confirm: 'pins' } } });
    // Voucher numbers are as sensitive: operator role, confirm=numbers, audited; without numbers a read like any other.
    await sessions.admin!.req('POST', '/v1/vouchers', { count: 1, value: '1', currency: 'USD', batch: 'RV' }, { 'idempotency-key': 'rv' });
    for (const w of ['true', '1', 'yes']) {
      expect((await sessions.viewer!.req('GET', `/v1/vouchers/RV/export?withNumbers=${w}&confirm=numbers`)).statusCode, w).toBe(403);
    }
    expect((await sessions.viewer!.req('GET', '/v1/vouchers/RV/export')).statusCode).toBe(200);
    expect((await sessions.operator!.req('GET', '/v1/vouchers/RV/export?withNumbers=true')).statusCode).toBe(400);
    const numbers = await sessions.operator!.req('GET', '/v1/vouchers/RV/export?withNumbers=true&confirm=numbers');
    expect(numbers.statusCode).toBe(200);
    expect(numbers.body.split('\n')[0]).toBe('batch,id,number,value,currency,expires_at,used_at,used_by');
    const vaudit = (await sessions.admin!.req('GET', '/v1/audit?object=voucher-batch:RV')).json().items;
    expect(vaudit.map((a: { actor: string; action: string }) => `${a.actor} ${a.action}`)).toEqual(['operator:operator GET /v1/vouchers/:batch/export', 'operator:admin POST /v1/vouchers']);
    const refusals = (await sessions.admin!.req('GET', '/v1/audit?actor=operator:viewer')).json().items;
    expect(refusals.some((a: { status: number }) => a.status === 403)).toBe(true);
  });
});
