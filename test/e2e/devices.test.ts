/**
 * Calls from a device (a card's SIP account), end to end: FreeSWITCH's directory lookup and dialplan lookup through
 * ccard's HTTP port (the simulator speaking the recorded mod_xml_curl bytes), then the device's call on the real
 * ESL server with the variables FreeSWITCH put on the channel. Billed exactly once; forged claims refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier, FreeSwitchSim } from '../../src/sim/index.ts';
import { XmlCurlClient, deviceChannelVariables } from '../../src/sim/xmlcurl.ts';
import { addDevice, editDevice } from '../../src/store/admin/devices.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

describe('device calls (cards as SIP accounts)', () => {
  let h: Harness;
  let fs: XmlCurlClient;
  let serial: string;

  beforeAll(async () => {
    h = await startHarness({ jsonCdr: true, env: { CCARD_DEVICE_DID: '15550001111' } });
    expect(h.data.did).toBe('15550001111');
    fs = new XmlCurlClient(`http://127.0.0.1:${h.service.http.port}/fs`);
    serial = (await h.service.pool.query<{ serial: string }>('SELECT serial FROM cards WHERE id = $1', [h.data.cards.rich.id])).rows[0]!.serial;
  });
  afterAll(async () => {
    await h?.close();
  });

  async function device(name: string) {
    const d = await addDevice({ pool: h.service.pool, pinKeys: h.service.pinKeys }, { serial, name }, '127.0.0.1');
    return d;
  }

  async function authenticatedVariables(user: string, password: string, destination: string) {
    const auth = await fs.authenticate({ method: 'INVITE', user, domain: '127.0.0.1', password, destination });
    if (auth.outcome !== 'authorized') throw new Error(`not authorized: ${auth.why}`);
    return deviceChannelVariables({ user, domain: '127.0.0.1', variables: auth.variables });
  }

  const ledgerRows = async (callId: string) =>
    (await h.service.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM ledger WHERE reason = 'call' AND ref = $1", [callId])).rows[0]!.n;

  it('a device call goes through the directory and the dialplan to ccard, with no prompts, and is billed once', async () => {
    const d = await device('softphone');
    const destination = '15551234567';
    const vars = await authenticatedVariables(d.username, d.password, destination);
    // The dialplan binding routes the authenticated device's call, in the directory's user_context, to ccard.
    const route = await fs.dialplan({ destination, context: vars.user_context!, variables: vars });
    expect(route).toMatchObject({ outcome: 'route', extension: 'ccard_device' });
    if (route.outcome !== 'route') return;
    expect(route.actions.find((a) => a.application === 'socket')?.data).toBe(`127.0.0.1:${h.service.esl.port} async full`);

    const before = await h.balance(h.data.cards.rich.id);
    const { result, outcome } = await h.place({ did: destination, callerId: d.username, channelVariables: vars, carrier: () => carrier.answer(200, 65_000) });
    expect(outcome.ended).toBe('completed');
    expect(outcome.cardId).toBe(h.data.cards.rich.id);
    expect(result.dialStrings).toHaveLength(1);
    expect(result.dialStrings[0]).toMatch(/sofia\/gateway\/carrier\/15551234567$/);
    // Silent: no PIN, no destination prompt, no balance or duration announcement (the balance is not low).
    expect(outcome.played).toEqual([]);
    expect(result.prompts.filter((p) => /enter_pin|enter_destination|you_have/.test(p))).toEqual([]);
    const attempt = outcome.calls[0]!;
    expect(attempt.settle!.cost).toBeGreaterThan(0n);
    // The socket's settle and the JSON CDR of the carrier leg both arrive: one debit.
    await waitFor('the JSON CDR', async () => ((await h.service.pool.query('SELECT 1 FROM cdrs WHERE call_id = $1', [attempt.callId])).rowCount ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    expect(await ledgerRows(attempt.callId)).toBe(1);
    expect(await h.balance(h.data.cards.rich.id)).toBe(before - attempt.settle!.cost);
  });

  it('a forged cc_card_id without sip_authorized is refused; so is a bad signature or another account', async () => {
    const d = await device('forge-test');
    const vars = await authenticatedVariables(d.username, d.password, '15551234567');
    const { sip_authorized: _dropped, ...withoutAuth } = vars;
    const cases = [
      withoutAuth,
      { ...vars, cc_card_id: h.data.cards.poor.id },
      { ...vars, cc_device_sig: '0'.repeat(32) },
      { ...vars, sip_auth_username: '12345678' },
      { cc_card_id: h.data.cards.rich.id, sip_authorized: 'true' },
    ];
    for (const channelVariables of cases) {
      const { result, outcome } = await h.place({ did: '15551234567', callerId: d.username, channelVariables });
      expect(outcome.ended).toBe('card_unknown');
      expect(result.dialStrings).toEqual([]);
      expect(outcome.calls).toEqual([]);
    }
  });

  it('X- headers or a caller ID naming a card are not a device: the dialled number is not an access number', async () => {
    const { result, outcome } = await h.place({
      did: '15551234567',
      callerId: '70001',
      channelVariables: { 'sip_h_X-cc_card_id': h.data.cards.rich.id, sip_h_X_cc_card_id: h.data.cards.rich.id },
    });
    expect(outcome.ended).toBe('number_not_in_service');
    expect(result.dialStrings).toEqual([]);
  });

  it('a device disabled after it authenticated, or of a disabled card, hears the refusal', async () => {
    const d = await device('later-disabled');
    const vars = await authenticatedVariables(d.username, d.password, '15551234567');
    await editDevice({ pool: h.service.pool, pinKeys: h.service.pinKeys }, d.username, { enabled: false });
    expect((await h.place({ did: '15551234567', channelVariables: vars })).outcome.ended).toBe('card_unknown');
    await editDevice({ pool: h.service.pool, pinKeys: h.service.pinKeys }, d.username, { enabled: true });
    await h.service.pool.query("UPDATE cards SET status = 'disabled' WHERE id = $1", [h.data.cards.rich.id]);
    try {
      const { result, outcome } = await h.place({ did: '15551234567', channelVariables: vars });
      expect(outcome.ended).toBe('card_disabled');
      expect(outcome.played).toContain('card_disabled');
      expect(result.dialStrings).toEqual([]);
    } finally {
      await h.service.pool.query("UPDATE cards SET status = 'active' WHERE id = $1", [h.data.cards.rich.id]);
    }
  });

  it('a device call in progress counts toward the card\'s simultaneous-call limit', async () => {
    const { rich } = h.data.cards;
    await h.service.pool.query('UPDATE cards SET max_concurrent_calls = 1 WHERE id = $1', [rich.id]);
    try {
      const d = await device('long-call');
      const vars = await authenticatedVariables(d.username, d.password, '15557654321');
      const n = h.outcomes.length;
      // A simulator on a running clock for the device's call: it talks 10 virtual minutes (3 s).
      const slow = new FreeSwitchSim({ port: h.service.esl.port, timeScale: 0.005 });
      const long = slow.call({ did: '15557654321', callerId: d.username, channelVariables: vars, carrier: () => carrier.answer(0, 10 * 60_000) });
      await waitFor('the device call to reserve', async () => ((await h.service.live.reservations(rich.id)).length > 0 ? true : undefined));
      const second = await h.sim.call({ did: h.data.did, callerId: '15551110099', digits: [`${rich.pin}#`, '15557654321#'] });
      expect(second.prompts).toContain('ccard/too_many_calls.wav');
      expect(second.dialStrings).toHaveLength(0);
      const first = await long;
      await slow.drain();
      expect(first.bLegs[0]!.answered).toBe(true);
      const outs = (await h.waitOutcomes(n + 2)).slice(n);
      expect(outs.map((o) => o.ended).sort()).toEqual(['completed', 'too_many_calls']);
    } finally {
      await h.service.pool.query('UPDATE cards SET max_concurrent_calls = NULL WHERE id = $1', [rich.id]);
    }
  }, 20_000);

  it('a device takes at most --lines calls at once; the line is freed when the call ends', async () => {
    const { rich } = h.data.cards;
    await h.service.pool.query('UPDATE cards SET max_concurrent_calls = 5 WHERE id = $1', [rich.id]);
    try {
      const d = await device('one-line');
      const vars = await authenticatedVariables(d.username, d.password, '15557654321');
      const slow = new FreeSwitchSim({ port: h.service.esl.port, timeScale: 0.005 });
      const long = slow.call({ did: '15557654321', callerId: d.username, channelVariables: vars, carrier: () => carrier.answer(0, 10 * 60_000) });
      await waitFor('the device call to reserve', async () => ((await h.service.live.reservations(rich.id)).length > 0 ? true : undefined));
      const second = await h.place({ did: '15551234567', channelVariables: vars });
      expect(second.outcome.ended).toBe('too_many_calls');
      expect(second.result.dialStrings).toEqual([]);
      // (Another device of the card would get a line, but the running call holds what the balance buys.)
      await long;
      await slow.drain();
      await waitFor('the line to be freed', async () => ((await h.service.pool.query('SELECT 1 FROM device_calls')).rowCount === 0 ? true : undefined));
      expect((await h.place({ did: '15551234567', channelVariables: vars, carrier: () => carrier.answer(0, 1000) })).outcome.ended).toBe('completed');
    } finally {
      await h.service.pool.query('UPDATE cards SET max_concurrent_calls = NULL WHERE id = $1', [rich.id]);
    }
  }, 20_000);

  it('with CCARD_DEVICE_DID disabled, device calls hear "not in service"', async () => {
    const d = await device('no-service');
    const vars = await authenticatedVariables(d.username, d.password, '15551234567');
    await h.service.pool.query('UPDATE access_numbers SET enabled = false WHERE did = $1', [h.data.did]);
    try {
      const { result, outcome } = await h.place({ did: '15551234567', channelVariables: vars });
      expect(outcome.ended).toBe('number_not_in_service');
      expect(result.dialStrings).toEqual([]);
    } finally {
      await h.service.pool.query('UPDATE access_numbers SET enabled = true WHERE did = $1', [h.data.did]);
    }
  });

  it('a refused destination is said once, then the call ends', async () => {
    const d = await device('refused');
    const vars = await authenticatedVariables(d.username, d.password, '1900555');
    const { result, outcome } = await h.place({ did: '1900555', channelVariables: vars });
    expect(result.dialStrings).toEqual([]);
    expect(outcome.ended).toBe('destination_tries_exhausted');
    expect(outcome.played).toEqual(['invalid_destination', 'goodbye']);
  });
});

describe('the device leg CDR (cdr-device-leg.http)', () => {
  it('is not a carrier leg: ccard ignores it and debits nothing', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { XMLCURL } = await import('../xmlcurl/recorded.ts');
    const h = await startHarness();
    try {
      const text = readFileSync(join(XMLCURL, 'cdr-device-leg.http'), 'utf8');
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      expect(JSON.parse(body).variables).toMatchObject({ cc_card_id: '42', sip_authorized: 'true' });
      expect(await h.service.services.ingestJsonCdr(body)).toMatchObject({ status: 'ignored', reason: 'not_a_ccard_leg' });
    } finally {
      await h.close();
    }
  });
});
