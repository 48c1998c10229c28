/**
 * POST /cdr as mod_json_cdr uses it: only the content types it sends, at most 1 MiB, its `cred` as Basic auth
 * (else loopback clients only), 503 when the database is down (so it retries), CDRs of other legs counted, and the
 * option of serving it alone on its own listener.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pool } from 'pg';
import { buildHttp, type HttpServer } from '../../src/app/http.ts';
import type { CcardCallServices } from '../../src/app/call-services.ts';
import { cdrCounters } from '../../src/cdr/counters.ts';
import type { IngestResult } from '../../src/cdr/json-cdr.ts';
import { ServiceUnavailableError } from '../../src/flow/services.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { derivePinKeys } from '../../src/store/pin.ts';

const CRED = 'freeswitch:s3cret-pass';
const DOC = '{"variables":{"uuid":"6f0f0c52-1d49-4a8e-9a6f-2c1d3e4f5a6b"}}';

let server: HttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function services(ingest: (body: string) => Promise<IngestResult>): { svc: CcardCallServices; bodies: string[] } {
  const bodies: string[] = [];
  const svc = {
    ingestJsonCdr: async (body: string) => {
      bodies.push(body);
      return ingest(body);
    },
  } as unknown as CcardCallServices;
  return { svc, bodies };
}

const ignored = async (): Promise<IngestResult> => ({ status: 'ignored', reason: 'not_a_ccard_leg', uuid: undefined });

async function start(svc: CcardCallServices, cdr: { credentials?: string; ownListener?: boolean } = {}) {
  server = await buildHttp({ pool: {} as Pool, pinKeys: derivePinKeys('cdr-route-test-secret'), live: new MemoryLiveBalance(), logger: pino({ level: 'silent' }), services: svc, cdr });
  const api = await server.listen('127.0.0.1', 0);
  const own = cdr.ownListener ? await server.listenCdr('127.0.0.1', 0) : undefined;
  return { api: `http://127.0.0.1:${api.port}`, cdr: own && `http://127.0.0.1:${own.port}` };
}

const post = (base: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${base}/cdr?uuid=x`, { method: 'POST', headers, body });
const basic = (cred: string) => `Basic ${Buffer.from(cred).toString('base64')}`;

describe('POST /cdr', () => {
  it('takes what mod_json_cdr sends (application/json, form-base64) and nothing a web page could post cross-site', async () => {
    const { svc, bodies } = services(ignored);
    const { api } = await start(svc);
    expect((await post(api, DOC)).status).toBe(200);
    expect((await post(api, DOC, { 'content-type': 'application/json; charset=utf-8' })).status).toBe(200);
    expect((await post(api, `cdr=${Buffer.from(DOC).toString('base64')}`, { 'content-type': 'application/x-www-form-base64-encoded' })).status).toBe(200);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/csv']) {
      const r = await post(api, DOC, { 'content-type': type });
      expect(r.status, type).toBe(415);
      expect((await r.json()).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(bodies).toHaveLength(3);
  });

  it('refuses bodies over 1 MiB with 413 (a real CDR is ~20 KB)', async () => {
    const { svc, bodies } = services(ignored);
    const { api } = await start(svc);
    const big = JSON.stringify({ variables: { pad: 'x'.repeat(1024 * 1024) } });
    const r = await post(api, big);
    expect(r.status).toBe(413);
    expect((await r.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    const fits = JSON.stringify({ variables: { pad: 'x'.repeat(900 * 1024) } });
    expect((await post(api, fits)).status).toBe(200);
    expect(bodies).toHaveLength(1);
  });

  it('with CCARD_CDR_CREDENTIALS: Basic auth (mod_json_cdr cred + auth-scheme basic) is required', async () => {
    const { svc, bodies } = services(ignored);
    const { api } = await start(svc, { credentials: CRED });
    const none = await post(api, DOC);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect((await none.json()).error.code).toBe('UNAUTHORIZED');
    expect((await post(api, DOC, { 'content-type': 'application/json', authorization: basic('freeswitch:wrong-pass') })).status).toBe(401);
    expect((await post(api, DOC, { 'content-type': 'application/json', authorization: `Bearer ${CRED}` })).status).toBe(401);
    expect((await post(api, DOC, { 'content-type': 'application/json', authorization: basic(CRED) })).status).toBe(200);
    expect(bodies).toHaveLength(1);
  });

  it('without credentials only loopback clients may post', async () => {
    const { buildApi } = await import('../../src/api/server.ts');
    const app = buildApi({ pool: {} as Pool, pinKeys: derivePinKeys('cdr-route-test-secret'), onJsonCdr: async () => ({ status: 200, body: {} }) });
    const from = (remoteAddress: string) =>
      app.inject({ method: 'POST', url: '/cdr', remoteAddress, headers: { 'content-type': 'application/json' }, payload: DOC });
    expect((await from('127.0.0.1')).statusCode).toBe(200);
    expect((await from('::1')).statusCode).toBe(200);
    expect((await from('::ffff:127.0.0.1')).statusCode).toBe(200);
    const far = await from('10.1.2.3');
    expect(far.statusCode).toBe(403);
    expect(far.json().error.code).toBe('FORBIDDEN');
    await app.close();
  });

  it('answers 503 when the database is down, so that mod_json_cdr retries (then keeps the file)', async () => {
    const { svc } = services(async () => {
      throw new ServiceUnavailableError('ingestJsonCdr: connect ECONNREFUSED 127.0.0.1:5432');
    });
    const { api } = await start(svc);
    const r = await post(api, DOC);
    expect(r.status).toBe(503);
    expect((await r.json()).error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'the database is unavailable; retry later' });
  });

  it('counts CDRs of legs ccard did not reserve (and keeps ignoring them)', async () => {
    const { svc } = services(ignored);
    const { api } = await start(svc);
    const before = cdrCounters.notOurs.json_cdr;
    const r = await post(api, DOC);
    expect(await r.json()).toMatchObject({ status: 'ignored', reason: 'not_a_ccard_leg' });
    expect(cdrCounters.notOurs.json_cdr).toBe(before + 1);
  });

  it('answers a debit with its amounts as decimal strings', async () => {
    const { svc } = services(async () => ({
      status: 'debited',
      callId: '1ec5a13c-ce58-42e5-945c-74e8c1b77a37',
      cardId: '7',
      billedSeconds: 61,
      cost: 12_345_678_901_234_567n,
      uncollected: 0n,
    }));
    const { api } = await start(svc);
    const r = await post(api, DOC);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      status: 'debited',
      callId: '1ec5a13c-ce58-42e5-945c-74e8c1b77a37',
      cardId: '7',
      billedSeconds: 61,
      cost: '12345678901234567',
      uncollected: '0',
    });
  });

  it('CCARD_CDR_PORT: served alone on its own listener, and no longer on the API port', async () => {
    const { svc, bodies } = services(ignored);
    const { api, cdr } = await start(svc, { ownListener: true, credentials: CRED });
    const onApi = await post(api, DOC, { 'content-type': 'application/json', authorization: basic(CRED) });
    expect(onApi.status).toBe(404);
    expect((await post(cdr!, DOC, { 'content-type': 'application/json', authorization: basic(CRED) })).status).toBe(200);
    expect((await post(cdr!, DOC)).status).toBe(401);
    // Nothing else is reachable there.
    const other = await fetch(`${cdr}/v1/series`);
    expect(other.status).toBe(404);
    expect(bodies).toHaveLength(1);
  });
});
