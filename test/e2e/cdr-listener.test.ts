/**
 * POST /cdr on its own listener with credentials, wired through the service (CCARD_CDR_PORT,
 * CCARD_CDR_CREDENTIALS): the simulated mod_json_cdr posts with its `cred` (Basic) and the carrier leg is billed
 * once; the API port no longer answers /cdr; a POST without the credentials is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

const CRED = 'freeswitch:a-long-cdr-password';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { CCARD_CDR_CREDENTIALS: CRED }, service: { cdrPort: 0 } });
}, 30_000);
afterAll(async () => {
  await h?.close();
});

describe('POST /cdr on its own listener, with credentials', () => {
  it('bills the carrier leg from the authenticated POST; refuses it elsewhere and without credentials', async () => {
    const cdrPort = h.service.cdr!.port;
    expect(cdrPort).not.toBe(h.service.http.port);
    h.sim.options.jsonCdrUrl = `http://127.0.0.1:${cdrPort}/cdr`;
    h.sim.options.jsonCdrCred = CRED;
    h.sim.options.jsonCdrDelayMs = 50;
    const card = h.data.cards.rich;
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: '15551230077',
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(500, 3000),
    });
    const callId = outcome.calls[0]!.callId;
    await waitFor('the mod_json_cdr POST', async () => result.bLegs[0]!.cdrPostStatus);
    expect(result.bLegs[0]!.cdrPostStatus).toBe(200);
    const cdrs = await h.service.pool.query('SELECT source FROM cdrs WHERE call_id = $1', [callId]);
    expect(cdrs.rows).toHaveLength(1);

    const body = JSON.stringify({ variables: { uuid: callId } });
    const onApi = await fetch(`http://127.0.0.1:${h.service.http.port}/cdr`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(onApi.status).toBe(404);
    const noCred = await fetch(`http://127.0.0.1:${cdrPort}/cdr`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(noCred.status).toBe(401);
  });
});
