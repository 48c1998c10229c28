import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FreeSwitchSim, type CallResult, type CallScript } from '../../src/sim/index.ts';
import { FIXTURES, hv, recordedRx, replayClient, view, type EventView, type Frame } from './recorded.ts';

const CALLER: CallScript = { did: '15550001111', callerId: '15551230000', callerIdName: 'Probe Caller' };

async function run(scenario: string, script: CallScript, format: 'plain' | 'json' = 'plain') {
  let result: CallResult | undefined;
  const out = await replayClient(scenario, async (port) => {
    const sim = new FreeSwitchSim({ port, timeScale: 0, eventFormat: format, startUs: 1795387130000000 });
    result = await sim.call({ ...CALLER, ...script });
  });
  return { ...out, result: result!, events: out.frames.map(view) };
}

const key = (v: EventView, f: Frame) =>
  `${v.type}|${v.name}|${v.app}|${hv(f, 'Content-Disposition') ?? ''}`;
const seq = (frames: Frame[]) =>
  frames.map((f) => [view(f), f] as const).filter(([v]) => v.name !== 'CHANNEL_PARK').map(([v, f]) => key(v, f));
const nonVarNames = (v: EventView) => v.headers.map(([k]) => k).filter((k) => !k.startsWith('variable_'));

/** Same frames in the same order; per event the same non-variable header names in the same order. */
function expectLikeRecording(scenario: string, frames: Frame[]) {
  const rec = recordedRx(scenario).filter((f) => view(f).name !== 'CHANNEL_PARK');
  const sim = frames.filter((f) => view(f).name !== 'CHANNEL_PARK');
  expect(seq(sim)).toEqual(seq(rec));
  for (let i = 0; i < rec.length; i++) {
    const r = view(rec[i]!);
    const s = view(sim[i]!);
    expect(nonVarNames(s), `${scenario} frame ${i} ${r.name} ${r.app}`).toEqual(nonVarNames(r));
    // the variable block sits where FreeSWITCH puts it (after the channel headers, before Application*)
    const firstVar = (v: EventView) => v.headers.findIndex(([k]) => k.startsWith('variable_'));
    expect(firstVar(s) >= 0, `${scenario} frame ${i} has variables`).toBe(firstVar(r) >= 0);
  }
}

const vars = (v: EventView) => Object.fromEntries(v.headers.filter(([k]) => k.startsWith('variable_')).map(([k, x]) => [k.slice(9), x]));
const find = (events: EventView[], name: string, app?: string) => events.find((e) => e.name === name && (app === undefined || e.app === app))!;
const dec = (s: string | undefined) => (s === undefined ? undefined : decodeURIComponent(s));

describe('FreeSWITCH simulator vs recordings', () => {
  it('a_success: same frames, header names/order, encoding and connect reply as the real FreeSWITCH', async () => {
    const { frames, events, result } = await run('a_success', { digits: ['15557654321#'] });
    expectLikeRecording('a_success', frames);
    // connect reply: one block, no Content-Length, url-encoded values, command/reply tail
    const c = frames[0]!;
    expect(hv(c, 'Content-Length')).toBeUndefined();
    expect(c.headers.slice(-4)).toEqual([
      ['Content-Type', 'command/reply'],
      ['Reply-Text', '%2BOK%0A'],
      ['Socket-Mode', 'async'],
      ['Control', 'full'],
    ]);
    expect(hv(c, 'Channel-Name')).toBe('sofia/access/15551230000%40127.0.0.1');
    expect(c.headers.map(([k]) => k).filter((k) => !k.startsWith('variable_'))).toEqual(
      recordedRx('a_success')[0]!.headers.map(([k]) => k).filter((k) => !k.startsWith('variable_')),
    );
    // same plain encoding as FreeSWITCH for the same values
    const pagdExec = find(events, 'CHANNEL_EXECUTE', 'play_and_get_digits');
    const recExec = recordedRx('a_success').map(view).find((e) => e.name === 'CHANNEL_EXECUTE' && e.app === 'play_and_get_digits')!;
    expect(pagdExec.headers.find(([k]) => k === 'Application-Data')).toEqual(recExec.headers.find(([k]) => k === 'Application-Data'));
    expect(pagdExec.headers.find(([k]) => k === 'Event-Date-GMT')![1]).toMatch(/^[A-Z][a-z]{2},%20\d\d%20[A-Z][a-z]{2}%20\d{4}%20\d\d%3A\d\d%3A\d\d%20GMT$/);
    // the recorded Event-UUIDs come back as Application-UUID
    expect(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'bridge').headers).toContainEqual(['Application-UUID', 'ed2a97ad-d141-4ac1-b535-3c4fac7fac2f']);
    const pagd = vars(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits'));
    expect(pagd.ivr_destination).toBe('15557654321');
    expect(pagd.read_result).toBe('success');
    expect(pagd.read_terminator_used).toBe('%23');
    const ecBridge = vars(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'bridge'));
    expect(ecBridge.originate_disposition).toBe('SUCCESS');
    expect(ecBridge.last_bridge_hangup_cause).toBe('NORMAL_CLEARING');
    // HANGUP_COMPLETE: Hangup-Cause twice, billing variables
    const hc = find(events, 'CHANNEL_HANGUP_COMPLETE');
    expect(hc.headers.filter(([k]) => k === 'Hangup-Cause')).toEqual([
      ['Hangup-Cause', 'NORMAL_CLEARING'],
      ['Hangup-Cause', 'NORMAL_CLEARING'],
    ]);
    expect(Number(vars(hc).billsec)).toBe(result.billsec);
    expect(result.bLegs[0]).toMatchObject({ answered: true, billsec: 3, billmsec: 3000, hangupCause: 'NORMAL_CLEARING', number: '15557654321' });
    expect(result.apps.map((a) => a.name)).toEqual(['answer', 'play_and_get_digits', 'bridge']);
    expect(result.end).toBe('exit');
    // the last frame is the exit disconnect notice with the exact body
    const last = frames.at(-1)!;
    expect(hv(last, 'Content-Disposition')).toBe('disconnect');
    expect(last.body).toBe('Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n');
  });

  it('a5_success_json: myevents json gives text/event-json with the recorded key order and raw values', async () => {
    const { frames, events } = await run('a5_success_json', { digits: ['15557654321#'] }, 'plain');
    expectLikeRecording('a5_success_json', frames);
    const ec = find(events, 'CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits');
    expect(ec.type).toBe('text/event-json');
    expect(vars(ec).read_terminator_used).toBe('#');
    expect(ec.headers.find(([k]) => k === 'FreeSWITCH-IPv6')![1]).toBe('fd00::2');
    const hc = find(events, 'CHANNEL_HANGUP_COMPLETE');
    expect(hc.headers.filter(([k]) => k === 'Hangup-Cause')).toHaveLength(2);
  });

  it('c_busy: FreeSWITCH hangs the IVR leg up itself, CHANNEL_HANGUP before EXECUTE_COMPLETE(bridge)', async () => {
    const { frames, events, result } = await run('c_busy', { digits: ['15554861234#'] });
    expectLikeRecording('c_busy', frames);
    expect(find(events, 'CHANNEL_HANGUP').headers).toContainEqual(['Hangup-Cause', 'USER_BUSY']);
    expect(result.hangupBy).toBe('switch');
    const hc = find(events, 'CHANNEL_HANGUP_COMPLETE');
    expect(vars(hc).originate_disposition).toBe('USER_BUSY');
    expect(vars(hc).DIALSTATUS).toBe('BUSY');
  });

  it('c_busy_continue_on_fail: channel stays up, EXECUTE_COMPLETE(bridge) carries the failure variables', async () => {
    const { frames, events } = await run('c_busy_continue_on_fail', { digits: ['15554861234#'] });
    expectLikeRecording('c_busy_continue_on_fail', frames);
    const v = vars(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'bridge'));
    expect(v).toMatchObject({
      originate_disposition: 'USER_BUSY',
      DIALSTATUS: 'BUSY',
      last_bridge_hangup_cause: 'USER_BUSY',
      last_bridge_proto_specific_hangup_cause: 'sip%3A486',
    });
    expect(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'playback').headers).toContainEqual(['Application-Response', 'FILE%20PLAYED']);
    expect(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'socket').headers).toContainEqual(['Application-Response', 'FILE%20PLAYED']);
  });

  it('d_cap: sched_hangup caps the b-leg, ALLOTTED_TIMEOUT, billsec = cap, fires at floor(answer)+N', async () => {
    const { frames, events, result } = await run('d_cap', { digits: ['15559991234#'] });
    expectLikeRecording('d_cap', frames);
    const b = result.bLegs[0]!;
    expect(b.hangupCause).toBe('ALLOTTED_TIMEOUT');
    expect(b.billsec).toBe(5);
    expect(b.endUs).toBe((b.answerEpoch + 5) * 1e6);
    expect(b.billmsec).toBe(Math.floor((b.endUs - b.answerUs) / 1000));
    const unb = find(events, 'CHANNEL_UNBRIDGE');
    expect(vars(unb).last_bridge_hangup_cause).toBe('ALLOTTED_TIMEOUT');
    expect(Number(unb.headers.find(([k]) => k === 'Other-Leg-Channel-Answered-Time')![1])).toBe(b.answerUs);
  });

  it('b_caller_hangup: caller hangs up after 1555 -> read_result success, partial digits', async () => {
    const { frames, events, result } = await run('b_caller_hangup', {
      digits: ['1555'],
      hangupAt: { app: 'play_and_get_digits', afterKeys: 4, afterMs: 600 },
    });
    expectLikeRecording('b_caller_hangup', frames);
    const v = vars(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits'));
    expect(v.ivr_destination).toBe('1555');
    expect(v.read_result).toBe('success');
    expect(result.hangupBy).toBe('caller');
    expect(vars(find(events, 'CHANNEL_HANGUP_COMPLETE')).sip_hangup_disposition).toBe('recv_bye');
  });

  it('b4: fewer than min digits then hangup -> read_result failure, variable still "15"', async () => {
    const { frames, events } = await run('b4_caller_hangup_2digits', {
      digits: ['15'],
      hangupAt: { app: 'play_and_get_digits', afterKeys: 2, afterMs: 600 },
    });
    expectLikeRecording('b4_caller_hangup_2digits', frames);
    const v = vars(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits'));
    expect(v.ivr_destination).toBe('15');
    expect(v.read_result).toBe('failure');
  });

  it('e_no_digits: three timeouts -> failure, no variable, ~16.2 s of virtual time', async () => {
    const { frames, events, result } = await run('e_no_digits', { digits: [] });
    expectLikeRecording('e_no_digits', frames);
    const ec = find(events, 'CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits');
    const ex = find(events, 'CHANNEL_EXECUTE', 'play_and_get_digits');
    const v = vars(ec);
    expect(v.read_result).toBe('failure');
    expect(v.ivr_destination).toBeUndefined();
    const ts = (e: EventView) => Number(e.headers.find(([k]) => k === 'Event-Date-Timestamp')![1]);
    expect(ts(ec) - ts(ex)).toBe(3 * (200 + 5000 + 200) * 1000);
    expect(result.prompts).toHaveLength(6);
  });

  it('g: too-short entry then a valid one -> success, stale terminator, no <var>_invalid', async () => {
    const { frames, events } = await run('g_pagd_invalid_then_valid', {
      digits: [[{ keys: '12345#' }, { keys: '1234567890', afterMs: 1750 }]],
    });
    expectLikeRecording('g_pagd_invalid_then_valid', frames);
    const v = vars(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits'));
    expect(v).toMatchObject({ pin: '1234567890', read_result: 'success', read_terminator_used: '%23' });
    expect(v.pin_invalid).toBeUndefined();
  });

  it('f_copy_json_cdr: b_leg_cdr on UNBRIDGE and later events; exact via uuid_getvar; lossy in plain', async () => {
    const summary = JSON.parse(readFileSync(join(FIXTURES, 'f_copy_json_cdr.summary.json'), 'utf8')) as { ivrUuid: string };
    const { frames, events, result } = await run('f_copy_json_cdr', { digits: ['15557654321#'], uuid: summary.ivrUuid });
    expectLikeRecording('f_copy_json_cdr', frames);
    const b = result.bLegs[0]!;
    expect(vars(find(events, 'CHANNEL_BRIDGE')).b_leg_cdr).toBeUndefined();
    for (const e of ['CHANNEL_UNBRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE']) {
      expect(vars(find(events, e)).b_leg_cdr, e).toBeDefined();
      expect(vars(find(events, e))[`b_leg_cdr_${b.uuid}`], e).toBeDefined();
    }
    // api uuid_getvar returns the exact JSON
    const api = frames.find((f) => hv(f, 'Content-Type') === 'api/response')!;
    const doc = JSON.parse(api.body) as { variables: Record<string, string> };
    const cdr = Object.fromEntries(Object.entries(doc.variables).map(([k, v]) => [k, decodeURIComponent(v)]));
    expect(cdr).toMatchObject({
      uuid: b.uuid,
      billsec: '3',
      billmsec: '3000',
      hangup_cause: 'NORMAL_CLEARING',
      answer_uepoch: String(b.answerUs),
      end_uepoch: String(b.endUs),
      cc_card_id: '42',
      execute_on_answer: 'sched_hangup +30 allotted_timeout',
    });
    expect(cdr.cc_call_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(doc.variables.answer_stamp).toMatch(/^\d{4}-\d\d-\d\d%20\d\d%3A\d\d%3A\d\d$/);
    // event-plain: FreeSWITCH does not re-encode %XX, so one decode gives the values decoded too
    const plain = find(events, 'CHANNEL_UNBRIDGE').headers.find(([k]) => k === 'variable_b_leg_cdr')![1];
    expect(plain).toContain('%2022%3A');
    expect(dec(plain)).toBe(decodeURIComponent(api.body));
  });

  it('h2: sched_broadcast plays on the IVR leg during the bridge with a foreign Application-UUID', async () => {
    const { frames, events, result } = await run('h2_sched_broadcast_exec_on_answer', { digits: ['15559991234#'] });
    expectLikeRecording('h2_sched_broadcast_exec_on_answer', frames);
    const pb = find(events, 'CHANNEL_EXECUTE', 'playback');
    const sent = result.apps.filter((a) => !a.broadcast).map((a) => a.eventUuid);
    const appUuid = pb.headers.find(([k]) => k === 'Application-UUID')![1];
    expect(sent).not.toContain(appUuid);
    expect(find(events, 'CHANNEL_EXECUTE_COMPLETE', 'bridge').headers).toContainEqual(['Application-Response', 'FILE%20PLAYED']);
    expect(result.bLegs[0]).toMatchObject({ hangupCause: 'ALLOTTED_TIMEOUT', billsec: 12 });
  });
});
