import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { cli, SECRET } from '../cli/helpers.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { createSeries } from '../../src/store/admin/series.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { CODE_ALPHABET } from '../../src/store/admin/provision.ts';
import { XmlCurlClient } from '../../src/sim/xmlcurl.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let key: string;
let fs: XmlCurlClient;
const keys = derivePinKeys(SECRET);
const DELAY = 300;
let run: ReturnType<typeof cli>;

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  run = cli(db);
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  await createSeries(ctx, { name: 'prov', number: '8', count: 2, balance: '5', rateTable: 'std', status: 'active' });
  key = (await createApiKey(ctx, 'prov-test')).key;
  app = buildApi({
    pool: db.pool,
    pinKeys: keys,
    sipDomain: '127.0.0.1',
    provision: { failureDelayMs: DELAY, rateLimit: { max: 12, timeWindowMs: 60_000 } },
    xmlCurl: { accessNumbers: { has: () => false }, contexts: ['public'], deviceContext: 'ccard_devices', sockets: ['127.0.0.1:8040'], soundsPrefix: '/s', allowIps: ['127.0.0.1'] },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  fs = new XmlCurlClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/fs`);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const redeem = (code: unknown, ip = '198.51.100.7') =>
  app.inject({ method: 'POST', url: '/provision', payload: { code } as never, remoteAddress: ip });

describe('provisioning codes', () => {
  it('brand set, provision create, redeem: branding and working SIP credentials, once', async () => {
    const b = await run('brand', 'set', '--name', 'Acme Talk', '--logo-url', 'https://acme.example/logo.png', '--primary-color', '#112233',
      '--support-number', '+1 555 000 1234', '--topup-url', 'https://acme.example/topup', '--sip-proxy', 'sip.acme.example:5070', '--json');
    expect(b.code).toBe(0);
    expect((await run('brand', 'set', '--primary-color', 'red')).err).toMatch(/primaryColor: must be #RRGGBB/);
    const p = (await run('provision', 'create', '8-000000001', '--device', 'mobile', '--json')).json();
    expect(p.code).toMatch(new RegExp(`^[${CODE_ALPHABET}]{5}-[${CODE_ALPHABET}]{5}$`));
    expect(p.device.name).toBe('mobile');
    // Typed in lower case without the dash.
    const r = await redeem(p.code.replace('-', '').toLowerCase());
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    const body = r.json();
    expect(body).toEqual({
      brand: { name: 'Acme Talk', logoUrl: 'https://acme.example/logo.png', primaryColor: '#112233', secondaryColor: '', supportNumber: '+1 555 000 1234', topupUrl: 'https://acme.example/topup' },
      sip: { user: p.device.username, password: expect.any(String), domain: '127.0.0.1', proxy: 'sip.acme.example:5070', transport: 'udp' },
    });
    expect((await fs.authenticate({ method: 'REGISTER', user: body.sip.user, domain: '127.0.0.1', password: body.sip.password })).outcome).toBe('authorized');
    // Used: the same answer as an unknown code.
    const again = await redeem(p.code);
    expect(again.statusCode).toBe(404);
    const audit = await db.pool.query("SELECT action, ip FROM device_audit WHERE action LIKE 'provision.%' ORDER BY id");
    expect(audit.rows).toEqual(expect.arrayContaining([{ action: 'provision.redeem', ip: '198.51.100.7' }, { action: 'provision.failed', ip: '198.51.100.7' }]));
    // ...and in the console's audit log, by the client's address; neither the code nor the password is stored.
    const log = await db.pool.query("SELECT actor, action, object, status FROM audit_log WHERE action LIKE 'provision.%' AND actor = 'provision:198.51.100.7' ORDER BY id");
    expect(log.rows).toEqual(
      expect.arrayContaining([
        { actor: 'provision:198.51.100.7', action: 'provision.redeem', object: `device:${p.device.username}`, status: 200 },
        { actor: 'provision:198.51.100.7', action: 'provision.failed', object: null, status: 404 },
      ]),
    );
    const dump = JSON.stringify((await db.pool.query('SELECT actor, action, object, request::text, before::text, after::text FROM audit_log')).rows);
    expect(dump).not.toContain(body.sip.password);
    expect(dump).not.toContain(p.code);
    expect(dump).not.toContain(p.code.replace('-', ''));
  });

  it('each redemption sets a fresh password: the previous one stops working', async () => {
    const p = (await run('provision', 'create', '8-000000002', '--uses', '2', '--json')).json();
    const first = (await redeem(p.code)).json().sip;
    const second = (await redeem(p.code)).json().sip;
    expect(second.user).toBe(first.user);
    expect(second.password).not.toBe(first.password);
    expect((await fs.authenticate({ method: 'REGISTER', user: first.user, domain: '127.0.0.1', password: first.password })).outcome).toBe('forbidden');
    expect((await fs.authenticate({ method: 'REGISTER', user: first.user, domain: '127.0.0.1', password: second.password })).outcome).toBe('authorized');
    expect((await redeem(p.code)).statusCode).toBe(404);
  });

  it('used, expired, unknown and malformed codes get the same answer after the same delay', async () => {
    const used = (await run('provision', 'create', '8-000000002', '--json')).json().code;
    await redeem(used);
    const expired = (await run('provision', 'create', '8-000000002', '--json')).json().code;
    await db.pool.query("UPDATE provisioning_codes SET expires_at = now() - interval '1 second' WHERE expires_at > now() AND uses_left = 1");
    const answers = [];
    for (const code of [used, expired, 'ABCDE-FGHJK', 'not a code', 42]) {
      const t0 = Date.now();
      const r = await redeem(code, '198.51.100.8');
      answers.push({ status: r.statusCode, body: r.body, slow: Date.now() - t0 >= DELAY - 5 });
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toEqual({ status: 404, body: JSON.stringify({ error: { code: 'NOT_FOUND', message: 'unknown, used or expired provisioning code' } }), slow: true });
  });

  it('rate-limits redemptions per IP', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) statuses.push((await app.inject({ method: 'POST', url: '/provision', payload: { code: 'x' }, remoteAddress: '203.0.113.9' })).statusCode);
    expect(statuses.slice(0, 12).every((s) => s === 404)).toBe(true);
    expect(statuses.slice(12)).toEqual([429, 429]);
    expect((await redeem('x', '203.0.113.10')).statusCode).toBe(404);
  });

  it('the API issues codes and manages the brand; bad input is refused clearly', async () => {
    const auth = { authorization: `Bearer ${key}` };
    const c = await app.inject({ method: 'POST', url: '/v1/provision-codes', headers: auth, payload: { serial: '8-000000001', device: 'mobile', expires: '30m' } });
    expect(c.statusCode).toBe(201);
    expect(new Date(c.json().expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(30 * 60_000);
    expect((await app.inject({ method: 'POST', url: '/v1/provision-codes', headers: auth, payload: { serial: '8-000000001', expires: '7y' } })).json().error.message).toMatch(/expires: must be a duration/);
    expect((await run('provision', 'create', '8-000000001', '--uses', '0')).err).toMatch(/uses: must be at least 1/);
    const put = await app.inject({ method: 'PUT', url: '/v1/brand', headers: auth, payload: { name: 'Acme 2', sipTransport: 'tls' } });
    expect(put.json()).toMatchObject({ name: 'Acme 2', sipTransport: 'tls', primaryColor: '#112233' });
    expect((await app.inject({ method: 'PUT', url: '/v1/brand', headers: auth, payload: { logoUrl: 'javascript:alert(1)' } })).statusCode).toBe(400);
  });
});
