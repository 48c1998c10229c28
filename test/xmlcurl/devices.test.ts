import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { cli, SECRET } from '../cli/helpers.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import { createSeries } from '../../src/store/admin/series.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { addDevice, editDevice, resetDevicePassword } from '../../src/store/admin/devices.ts';
import { verifyDeviceSignature } from '../../src/store/devices.ts';
import { XmlCurlClient, postXmlCurl, encodeFields, directoryFields } from '../../src/sim/xmlcurl.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let fs: XmlCurlClient;
let base: string;
let key: string;
const keys = derivePinKeys(SECRET); // the CLI helper's secret: devices added by either check the same signature
const DOMAIN = 'sip.example.com';
const NOT_FOUND = '<document type="freeswitch/xml"><section name="result"><result status="not found"/></section></document>';
let run: ReturnType<typeof cli>;

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  run = cli(db);
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.0123\n');
  await createSeries(ctx, { name: 'dev', number: '7', count: 4, balance: '10', rateTable: 'std', status: 'active' });
  key = (await createApiKey(ctx, 'devices-test')).key;
  app = buildApi({
    pool: db.pool,
    pinKeys: keys,
    sipDomain: DOMAIN,
    xmlCurl: {
      accessNumbers: { has: () => false },
      contexts: ['public'],
      deviceContext: 'ccard_devices',
      sockets: ['127.0.0.1:8040'],
      soundsPrefix: '/s',
      allowIps: ['127.0.0.1'],
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/fs`;
  fs = new XmlCurlClient(base);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const reg = (user: string, password: string, domain = DOMAIN) => fs.authenticate({ method: 'REGISTER', user, domain, password });
const inv = (user: string, password: string, destination = '442071234567') =>
  fs.authenticate({ method: 'INVITE', user, domain: DOMAIN, password, destination });

describe('directory endpoint (mod_xml_curl section=directory, action=sip_auth)', () => {
  it('authorizes the right password for REGISTER and INVITE, with the variables identifying the card', async () => {
    const d = await addDevice(ctx, { serial: '7-000000001', name: 'phone', lines: 2 }, DOMAIN);
    const r = await reg(d.username, d.password);
    expect(r.outcome).toBe('authorized');
    const i = await inv(d.username, d.password);
    if (i.outcome !== 'authorized') throw new Error(i.why);
    const card = await db.pool.query<{ id: bigint }>("SELECT id FROM cards WHERE serial = '7-000000001'");
    expect(i.variables).toMatchObject({
      cc_card_id: card.rows[0]!.id.toString(),
      cc_device_user: d.username,
      cc_device_lines: '2',
      user_context: 'ccard_devices',
    });
    expect(verifyDeviceSignature(keys, i.variables.cc_card_id!, i.variables.cc_device_id!, d.username, i.variables.cc_device_sig!)).toBe(true);
    expect(verifyDeviceSignature(keys, '999', i.variables.cc_device_id!, d.username, i.variables.cc_device_sig!)).toBe(false);
  });

  it('stores only the A1 hash, never the password', async () => {
    const d = await addDevice(ctx, { serial: '7-000000001', name: 'tablet' }, DOMAIN);
    const row = await db.pool.query('SELECT * FROM devices WHERE username = $1', [d.username]);
    expect(JSON.stringify(row.rows[0], (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain(d.password);
    expect(row.rows[0].a1_hash).toBe(createHash('md5').update(`${d.username}:${DOMAIN}:${d.password}`).digest('hex'));
  });

  it('refuses (403) a wrong password, an unknown user, another domain', async () => {
    const d = await addDevice(ctx, { serial: '7-000000002' }, DOMAIN);
    expect((await reg(d.username, 'wrong-password')).outcome).toBe('forbidden');
    expect((await inv(d.username, `${d.password}x`)).outcome).toBe('forbidden');
    expect((await reg('99999999', d.password)).outcome).toBe('forbidden');
    expect((await reg(d.username, d.password, 'other.example.com')).outcome).toBe('forbidden');
  });

  it('answers "not found" for a disabled device and for a card that is not active', async () => {
    const d = await addDevice(ctx, { serial: '7-000000003' }, DOMAIN);
    const body = () => postXmlCurl(`${base}/directory`, encodeFields(directoryFields({ method: 'REGISTER', user: d.username, domain: DOMAIN, password: d.password })));
    expect((await reg(d.username, d.password)).outcome).toBe('authorized');
    await editDevice(ctx, d.username, { enabled: false });
    expect((await body()).body).toBe(NOT_FOUND);
    await editDevice(ctx, d.username, { enabled: true });
    await db.pool.query("UPDATE cards SET status = 'disabled' WHERE serial = '7-000000003'");
    expect((await body()).body).toBe(NOT_FOUND);
    await db.pool.query("UPDATE cards SET status = 'active', expires_at = now() - interval '1 minute' WHERE serial = '7-000000003'");
    expect((await body()).body).toBe(NOT_FOUND);
    await db.pool.query("UPDATE cards SET expires_at = NULL WHERE serial = '7-000000003'");
    expect((await reg(d.username, d.password)).outcome).toBe('authorized');
  });

  it('a reset password replaces the old one at the next lookup', async () => {
    const d = await addDevice(ctx, { serial: '7-000000004' }, DOMAIN);
    const fresh = await resetDevicePassword(ctx, d.username, DOMAIN);
    expect(fresh.password).not.toBe(d.password);
    expect((await reg(d.username, d.password)).outcome).toBe('forbidden');
    expect((await reg(d.username, fresh.password)).outcome).toBe('authorized');
  });

  it('injection attempts in user and domain get "not found" and are never echoed', async () => {
    const d = await addDevice(ctx, { serial: '7-000000004', name: 'inj' }, DOMAIN);
    const hostile = [
      [`${d.username}"/><param name="password" value="x`, DOMAIN],
      [d.username, `${DOMAIN}"><user id="1`],
      [`${d.username}' OR '1'='1`, DOMAIN],
      [`<![CDATA[${d.username}]]>`, DOMAIN],
      [d.username, `${DOMAIN}\r\nX: y`],
      [`${d.username}%00`, DOMAIN],
    ];
    for (const [user, domain] of hostile) {
      const fields = directoryFields({ method: 'REGISTER', user: user!, domain: domain!, password: 'x' });
      const a = await postXmlCurl(`${base}/directory`, encodeFields(fields));
      expect(a.status).toBe(200);
      expect(a.body).toBe(NOT_FOUND);
    }
    // Upper-case domain is the same realm (host names are case-insensitive); the answer carries ccard's own spelling.
    const a = await postXmlCurl(`${base}/directory`, encodeFields(directoryFields({ method: 'REGISTER', user: d.username, domain: DOMAIN.toUpperCase(), password: 'x' })));
    expect(a.body).toContain(`<domain name="${DOMAIN}">`);
  });

  it('answers only sip_auth directory lookups', async () => {
    const d = await addDevice(ctx, { serial: '7-000000004', name: 'other-lookups' }, DOMAIN);
    const fields = directoryFields({ method: 'REGISTER', user: d.username, domain: DOMAIN, password: d.password }).map(
      ([k, v]) => [k, k === 'action' ? 'message-count' : v] as [string, string],
    );
    expect((await postXmlCurl(`${base}/directory`, encodeFields(fields))).body).toBe(NOT_FOUND);
  });
});

describe('ccard device (CLI)', () => {
  it('add, list, show, edit, disable, reset-password, remove', async () => {
    const add = await run('device', 'add', '7-000000002', '--name', 'softphone', '--lines', '3', '--json');
    expect(add.code).toBe(0);
    const d = add.json();
    expect(d).toMatchObject({ serial: '7-000000002', name: 'softphone', lines: 3, enabled: true, realm: '127.0.0.1' });
    expect(d.password).toMatch(/^[2-9A-HJ-NP-Za-km-z]{20}$/);
    const text = await run('device', 'add', '7-000000002', '--name', 'desk');
    expect(text.out).toMatch(/password .* shown only this once/is);
    expect((await run('device', 'add', '7-000000002', '--name', 'desk')).err).toMatch(/already has a device named "desk"/);
    expect((await run('device', 'add', '9-000000001')).err).toMatch(/unknown card 9-000000001/);
    expect((await run('device', 'add', '7-000000002', '--lines', '0')).err).toMatch(/lines: must be at least 1/);
    const list = (await run('device', 'list', '--serial', '7-000000002', '--json')).json();
    expect(list.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['softphone', 'desk']));
    expect(JSON.stringify(list)).not.toContain(d.password);
    expect((await run('device', 'show', d.username, '--json')).json()).toMatchObject({ username: d.username, lines: 3 });
    expect((await run('device', 'edit', d.username, '--lines', '1', '--json')).json()).toMatchObject({ lines: 1 });
    expect((await run('device', 'disable', d.username)).out).toMatch(/disabled device/);
    expect((await run('device', 'show', d.username, '--json')).json().enabled).toBe(false);
    const reset = (await run('device', 'reset-password', d.username, '--json')).json();
    expect(reset.password).not.toBe(d.password);
    expect((await run('device', 'remove', d.username)).code).toBe(0);
    const gone = await run('device', 'show', d.username);
    expect(gone.code).toBe(1);
    expect(gone.err).toBe(`ccard: error: unknown device ${d.username}\n`);
    expect((await run('device', 'show', 'abc')).err).toMatch(/device: must be the device's SIP user/);
    const audit = await db.pool.query("SELECT action FROM device_audit WHERE actor = 'cli' ORDER BY id");
    expect(audit.rows.map((r) => r.action)).toEqual(['device.add', 'device.add', 'device.edit', 'device.edit', 'device.reset_password', 'device.remove']);
    // The same events in the console's audit log (`ccard audit list`, GET /v1/audit).
    const log = await db.pool.query("SELECT action, object FROM audit_log WHERE actor = 'cli:local' AND object = $1 ORDER BY id", [`device:${d.username}`]);
    expect(log.rows.map((r) => r.action)).toEqual(['device.add', 'device.edit', 'device.edit', 'device.reset_password', 'device.remove']);
    const listed = await run('audit', 'list', '--object', `device:${d.username}`, '--json');
    expect(listed.code, listed.err).toBe(0);
    expect(listed.json().map((x: { action: string }) => x.action)).toEqual(['device.remove', 'device.reset_password', 'device.edit', 'device.edit', 'device.add']);
  });
});

describe('/v1/devices (API)', () => {
  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(payload !== undefined && { payload: payload as never }) });

  it('adds with the password in that answer only, lists, edits, disables, resets, removes', async () => {
    const add = await req('POST', '/v1/devices', { serial: '7-000000003', name: 'api phone', lines: 2 });
    expect(add.statusCode).toBe(201);
    const d = add.json();
    expect(d).toMatchObject({ serial: '7-000000003', name: 'api phone', realm: DOMAIN, lines: 2 });
    expect((await reg(d.username, d.password)).outcome).toBe('authorized');
    const list = await req('GET', '/v1/devices?serial=7-000000003');
    expect(list.json().items.some((x: { username: string }) => x.username === d.username)).toBe(true);
    expect(list.body).not.toContain(d.password);
    expect((await req('PATCH', `/v1/devices/${d.username}`, { lines: 5 })).json().lines).toBe(5);
    expect((await req('PATCH', `/v1/devices/${d.username}`, { colour: 'red' })).statusCode).toBe(400);
    expect((await req('POST', `/v1/devices/${d.username}/disable`)).json().enabled).toBe(false);
    expect((await reg(d.username, d.password)).outcome).toBe('forbidden');
    await req('PATCH', `/v1/devices/${d.username}`, { enabled: true });
    const reset = (await req('POST', `/v1/devices/${d.username}/reset-password`)).json();
    expect((await reg(d.username, reset.password)).outcome).toBe('authorized');
    expect((await req('DELETE', `/v1/devices/${d.username}`)).statusCode).toBe(204);
    const gone = await req('GET', `/v1/devices/${d.username}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toEqual({ error: { code: 'NOT_FOUND', message: `unknown device ${d.username}` } });
    expect((await req('POST', '/v1/devices', { serial: 'nope' })).json().error.code).toBe('INVALID_INPUT');
    // Each change is in the audit log once (the API's hook, with the key as actor), passwords redacted.
    const audit = (await req('GET', `/v1/audit?object=device:${d.username}`)).json().items as Array<{ actor: string; action: string; after: unknown }>;
    expect(audit.map((a) => a.action)).toEqual([
      'DELETE /v1/devices/:user',
      'POST /v1/devices/:user/reset-password',
      'PATCH /v1/devices/:user',
      'POST /v1/devices/:user/disable',
      'PATCH /v1/devices/:user',
    ]);
    expect(new Set(audit.map((a) => a.actor))).toEqual(new Set(['apikey:devices-test']));
    const all = (await req('GET', '/v1/audit?actor=apikey:devices-test&limit=100')).body;
    expect(all).toContain('POST /v1/devices');
    expect(all).not.toContain(d.password);
    expect(all).not.toContain(reset.password);
  });
});
