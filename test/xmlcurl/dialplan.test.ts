import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { AccessNumberMap } from '../../src/store/access-number-map.ts';
import { addDid, editDid, removeDid } from '../../src/store/admin/dids.ts';
import { XmlCurlClient, postXmlCurl, encodeFields, dialplanFields } from '../../src/sim/xmlcurl.ts';
import type { XmlCurlOptions } from '../../src/api/routes/freeswitch.ts';

let db: TestDb;
let app: FastifyInstance;
let map: AccessNumberMap;
let fs: XmlCurlClient;
let base: string;
const keys = derivePinKeys('xmlcurl-test-secret-0123456789');
let opts: XmlCurlOptions;

const waitFor = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

beforeAll(async () => {
  db = await createTestDb();
  map = new AccessNumberMap({ pool: db.pool, debounceMs: 5 });
  await map.start();
  opts = {
    accessNumbers: map,
    contexts: ['public'],
    deviceContext: 'ccard_devices',
    sockets: ['127.0.0.1:8040', '10.0.0.12:8040'],
    soundsPrefix: '/usr/share/ccard/sounds',
    allowIps: ['127.0.0.1', '::1'],
  };
  app = buildApi({ pool: db.pool, pinKeys: keys, xmlCurl: opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/fs`;
  fs = new XmlCurlClient(base);
});
afterAll(async () => {
  await map?.stop();
  await app?.close();
  await db?.drop();
});

describe('mod_xml_curl dialplan binding', () => {
  it('routes an active access number to the socket, failover and respond 503, as the static dialplan', async () => {
    await addDid({ pool: db.pool, pinKeys: keys }, { did: '15550001111', gateway: 'carrier' });
    await waitFor(() => map.has('15550001111'));
    const r = await fs.dialplan({ destination: '15550001111', context: 'public' });
    expect(r).toEqual({
      outcome: 'route',
      context: 'public',
      extension: 'ccard',
      actions: [
        { application: 'set', data: 'sound_prefix=/usr/share/ccard/sounds/en' },
        { application: 'set', data: 'sound_prefix_enforced=true' },
        { application: 'set', data: 'continue_on_fail=true' },
        { application: 'set', data: 'hangup_after_bridge=false' },
        { application: 'socket', data: '127.0.0.1:8040 async full' },
        { application: 'socket', data: '10.0.0.12:8040 async full' },
        { application: 'respond', data: '503 Service Unavailable' },
      ],
    });
  });

  it('answers "not found" (static fallback) for unknown numbers and other contexts', async () => {
    expect(await fs.dialplan({ destination: '15550009876', context: 'public' })).toEqual({ outcome: 'fallback', why: 'not found' });
    expect((await fs.dialplan({ destination: '15550001111', context: 'default' })).outcome).toBe('fallback');
  });

  it('a DID disabled, enabled, removed or added takes effect on the next call', async () => {
    const ctx = { pool: db.pool, pinKeys: keys };
    await editDid(ctx, '15550001111', { enabled: false });
    await waitFor(() => !map.has('15550001111'));
    expect((await fs.dialplan({ destination: '15550001111', context: 'public' })).outcome).toBe('fallback');
    await editDid(ctx, '15550001111', { enabled: true });
    await waitFor(() => map.has('15550001111'));
    expect((await fs.dialplan({ destination: '15550001111', context: 'public' })).outcome).toBe('route');
    await removeDid(ctx, '15550001111');
    await waitFor(() => !map.has('15550001111'));
    expect((await fs.dialplan({ destination: '15550001111', context: 'public' })).outcome).toBe('fallback');
    await addDid(ctx, { did: '+442071234567', gateway: 'carrier' });
    await waitFor(() => map.has('+442071234567'));
    const r = await fs.dialplan({ destination: '+442071234567', context: 'public' });
    expect(r.outcome).toBe('route');
    // The '+' is escaped in the regular expression, so the document matches exactly the dialled number.
    expect(await fs.dialplan({ destination: '442071234567', context: 'public' })).toMatchObject({ outcome: 'fallback' });
  });

  it('a poll picks up changes when no NOTIFY arrives (PGlite)', async () => {
    const quiet = new AccessNumberMap({ pool: db.pool, pollMs: 30, listen: false });
    await quiet.start();
    try {
      await db.pool.query("INSERT INTO access_numbers (did, gateway) VALUES ('15557770000', 'carrier')");
      await waitFor(() => quiet.has('15557770000'));
      expect(quiet.has('15557770000')).toBe(true);
    } finally {
      await quiet.stop();
    }
  });

  it('routes any destination of an authenticated device in the device context, nothing else there', async () => {
    const dev = await fs.dialplan({ destination: '442071234500', context: 'ccard_devices', variables: { sip_authorized: 'true', cc_card_id: '1' } });
    expect(dev).toMatchObject({ outcome: 'route', extension: 'ccard_device' });
    expect((await fs.dialplan({ destination: '442071234500', context: 'ccard_devices' })).outcome).toBe('fallback');
    expect((await fs.dialplan({ destination: '44<x>', context: 'ccard_devices', variables: { sip_authorized: 'true' } })).outcome).toBe('fallback');
  });

  it('never echoes request fields: a hostile context or number gets "not found"', async () => {
    const r = await postXmlCurl(`${base}/dialplan`, encodeFields(dialplanFields({ destination: '"/><action application="system" data="rm', context: 'public"><x' })));
    expect(r.status).toBe(200);
    expect(r.body).toBe('<document type="freeswitch/xml"><section name="result"><result status="not found"/></section></document>');
  });

  it('refuses clients outside CCARD_XMLCURL_ALLOW and without the basic-auth credentials', async () => {
    opts.credentials = { user: 'fs', password: 'secret-pass' };
    const app2 = buildApi({ pool: db.pool, pinKeys: keys, xmlCurl: { ...opts, allowIps: ['10.1.1.1'] } });
    const app3 = buildApi({ pool: db.pool, pinKeys: keys, xmlCurl: opts });
    try {
      await app3.listen({ host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${(app3.server.address() as AddressInfo).port}/fs`;
      expect((await new XmlCurlClient(url).dialplan({ destination: '+442071234567', context: 'public' })).outcome).toBe('fallback');
      expect((await new XmlCurlClient(url, { credentials: 'fs:wrong-pass' }).dialplan({ destination: '+442071234567', context: 'public' })).outcome).toBe('fallback');
      expect((await new XmlCurlClient(url, { credentials: 'fs:secret-pass' }).dialplan({ destination: '+442071234567', context: 'public' })).outcome).toBe('route');
      const denied = await app2.inject({ method: 'POST', url: '/fs/dialplan', payload: 'section=dialplan', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(denied.statusCode).toBe(403);
    } finally {
      delete opts.credentials;
      await app2.close();
      await app3.close();
    }
  });
});
