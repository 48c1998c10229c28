import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BridgeResult, Call, DigitsRequest, DigitsResult } from '../../src/flow/call.ts';
import { CHANNEL_VARIABLES_KEPT, CallSession, callInfoFrom, parseCarrierCdr } from '../../src/esl/call-session.ts';
import { RESUME_VARIABLE } from '../../src/flow/resume.ts';
import { pagdArg, sendmsgExecute, sendmsgHangup } from '../../src/esl/commands.ts';
import { EslConnection } from '../../src/esl/connection.ts';
import { isEslError, type EslErrorCode } from '../../src/esl/errors.ts';
import { EslEvent } from '../../src/esl/parser.ts';
import { createEslServer, type EslServer } from '../../src/esl/server.ts';
import { FIXTURES, commandReader, eventUuidOf, replay, rx, silent, socketPair, splitFrames, tx } from './helpers.ts';
import { toBodyForm } from './helpers.ts';

// The recordings' probe did not ask for `resume` (README-resume.md): the handshake here is the recorded one.
const servers: EslServer[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  for (const s of servers.splice(0)) await s.close(1_000);
});

async function rejectsWith(p: Promise<unknown>, code: EslErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEslError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

/** The app argument the probe sent for `app` (n-th occurrence). */
function recordedArg(name: string, app: string, n = 0): string {
  const args = [...tx(name).matchAll(new RegExp(`execute-app-name: ${app}\\nexecute-app-arg: (.*)\\n`, 'g'))].map((m) => m[1] as string);
  return args[n] as string;
}

function pagdFrom(arg: string): DigitsRequest {
  const [min, max, tries, timeoutMs, terminators, prompt, invalidPrompt, variable, regex, digitTimeoutMs] = arg.split(' ') as string[];
  return {
    min: Number(min),
    max: Number(max),
    tries: Number(tries),
    timeoutMs: Number(timeoutMs),
    terminators: terminators as string,
    prompt: prompt as string,
    invalidPrompt: invalidPrompt as string,
    variable: variable as string,
    regex: regex as string,
    digitTimeoutMs: Number(digitTimeoutMs),
  };
}

const waitFor = async (cond: () => boolean, ms = 3_000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** Runs the server against a FreeSWITCH replaying NAME; returns the commands our side sent and the recorded ones. */
async function runReplay(name: string, eventFormat: 'json' | 'plain', onCall: (call: CallSession) => Promise<void>) {
  // The recordings were made without ccard's multiunset of b_leg_cdr after the bridge.
  const server = createEslServer({ port: 0, logger: silent, resume: false, eventFormat, onCall, lingerWaitMs: 2_000, dropCarrierCdr: false });
  servers.push(server);
  const { port } = await server.listen();
  const r = replay(name, port);
  await r.closed;
  await waitFor(() => server.activeSessions === 0);
  return r;
}

describe('CallSession over replayed recordings (byte-exact commands)', () => {
  it('a_success: answer, PAGD, bridge, then the server hangs up, waits for the linger notice and exits', async () => {
    let digits: DigitsResult | undefined;
    let bridged: BridgeResult | undefined;
    let info: Call['info'] | undefined;
    const r = await runReplay('a_success', 'plain', async (call) => {
      info = call.info;
      await call.answer();
      digits = await call.playAndGetDigits(pagdFrom(recordedArg('a_success', 'play_and_get_digits')));
      bridged = await call.bridge({ dialString: recordedArg('a_success', 'bridge'), timeoutMs: 60_000 });
    });
    expect(r.sent).toEqual(r.expected);
    expect(info).toEqual({ uuid: '2e5a0914-572f-492b-91f7-e21f07baa210', did: '15550001111', callerId: '15551230000', callerIdName: 'Probe Caller', callerIdWithheld: false });
    expect(digits).toEqual({ digits: '15557654321', success: true });
    expect(bridged).toEqual({ disposition: 'SUCCESS', hangupCause: 'NORMAL_CLEARING', answered: true, carrierCdr: undefined, callerHungUp: false });
  });

  it('a5_success_json: the same call with myevents json', async () => {
    let digits: DigitsResult | undefined;
    let bridged: BridgeResult | undefined;
    const r = await runReplay('a5_success_json', 'json', async (call) => {
      await call.answer();
      digits = await call.playAndGetDigits(pagdFrom(recordedArg('a5_success_json', 'play_and_get_digits')));
      bridged = await call.bridge({ dialString: recordedArg('a5_success_json', 'bridge'), timeoutMs: 60_000 });
    });
    expect(r.sent).toEqual(r.expected);
    expect(r.sent[1]).toBe('myevents json\n\n');
    expect(digits).toEqual({ digits: '15557654321', success: true });
    expect(bridged?.answered).toBe(true);
    expect(bridged?.disposition).toBe('SUCCESS');
  });

  it('f_copy_json_cdr (plain events): b_leg_cdr is read back exactly with uuid_getvar, never from the lossy header', async () => {
    let bridged: BridgeResult | undefined;
    const r = await runReplay('f_copy_json_cdr', 'plain', async (call) => {
      await call.answer();
      await call.playAndGetDigits(pagdFrom(recordedArg('f_copy_json_cdr', 'play_and_get_digits')));
      await call.setVariables([['hangup_after_bridge', 'false']]);
      bridged = await call.bridge({ dialString: recordedArg('f_copy_json_cdr', 'bridge'), timeoutMs: 60_000 });
    });
    expect(r.sent).toEqual(r.expected);
    const cdr = bridged?.carrierCdr;
    expect(cdr?.uuid).toBe('e3731e36-915f-4e79-827b-e200e2ea3f9f');
    expect(cdr?.billsec).toBe(3);
    expect(cdr?.billmsec).toBe(3000);
    expect(cdr?.answerUepoch).toBe(1795387090329613n);
    expect(cdr?.endUepoch).toBe(1795387093329563n);
    expect(cdr?.hangupCause).toBe('NORMAL_CLEARING');
    expect(cdr?.variables.cc_card_id).toBe('42');
    expect(cdr?.variables.execute_on_answer).toBe('sched_hangup +30 allotted_timeout');
    expect(cdr?.variables.answer_stamp).toBe('2026-11-22 22:38:10');
    expect(bridged?.callerHungUp).toBe(false);
  });

  it('d2: the caller hangs up while bridged; bridge waits past CHANNEL_HANGUP for its completion', async () => {
    let bridged: BridgeResult | undefined;
    let hungUp = false;
    let after: Promise<void> | undefined;
    const r = await runReplay('d2_caller_hangup_while_bridged', 'plain', async (call) => {
      await call.answer();
      await call.playAndGetDigits(pagdFrom(recordedArg('d2_caller_hangup_while_bridged', 'play_and_get_digits')));
      bridged = await call.bridge({ dialString: recordedArg('d2_caller_hangup_while_bridged', 'bridge'), timeoutMs: 60_000 });
      hungUp = call.hungUp && call.hangupSignal.aborted;
      after = call.playback('tone_stream://%(200,0,440)');
      after.catch(() => undefined);
      await call.hangup(); // never rejects, sends nothing after a hangup
    });
    expect(r.sent).toEqual(r.expected); // no sendmsg hangup: connect, myevents, linger, 3 executes, exit
    expect(bridged).toMatchObject({ answered: true, disposition: 'SUCCESS', hangupCause: 'NORMAL_CLEARING', callerHungUp: true });
    expect(hungUp).toBe(true);
    await rejectsWith(after as Promise<void>, 'ESL_HANGUP');
  });

  it('c_busy: FreeSWITCH hangs the IVR leg up with the failure cause; bridge still reports it', async () => {
    let bridged: BridgeResult | undefined;
    const r = await runReplay('c_busy', 'plain', async (call) => {
      await call.answer();
      await call.playAndGetDigits(pagdFrom(recordedArg('c_busy', 'play_and_get_digits')));
      bridged = await call.bridge({ dialString: recordedArg('c_busy', 'bridge'), timeoutMs: 60_000 });
    });
    expect(r.sent).toEqual(r.expected);
    expect(bridged).toEqual({ disposition: 'USER_BUSY', hangupCause: 'USER_BUSY', answered: false, carrierCdr: undefined, callerHungUp: true });
  });

  it('b_caller_hangup: PAGD rejects with ESL_HANGUP (no grace), later commands reject at once', async () => {
    let pagd: Promise<DigitsResult> | undefined;
    let later: Promise<void> | undefined;
    const r = await runReplay('b_caller_hangup', 'plain', async (call) => {
      await call.answer();
      pagd = call.playAndGetDigits(pagdFrom(recordedArg('b_caller_hangup', 'play_and_get_digits')));
      pagd.catch(() => undefined);
      await pagd.catch(() => undefined);
      later = call.answer();
      later.catch(() => undefined);
    });
    expect(r.sent).toEqual(r.expected);
    await rejectsWith(pagd as Promise<DigitsResult>, 'ESL_HANGUP');
    await rejectsWith(later as Promise<void>, 'ESL_HANGUP');
  });

  it('g_pagd_invalid_then_valid and i_say_currency: PAGD and say arguments as FreeSWITCH expects them', async () => {
    let pin: DigitsResult | undefined;
    const g = await runReplay('g_pagd_invalid_then_valid', 'plain', async (call) => {
      await call.answer();
      pin = await call.playAndGetDigits({
        min: 10, max: 10, tries: 3, timeoutMs: 5000, terminators: '#', prompt: 'tone_stream://%(200,0,440)',
        invalidPrompt: 'tone_stream://%(300,100,480,620)', variable: 'pin', regex: '^\\d{10}$', digitTimeoutMs: 3000,
      });
    });
    expect(g.sent).toEqual(g.expected);
    expect(pin).toEqual({ digits: '1234567890', success: true });

    const i = await runReplay('i_say_currency', 'plain', async (call) => {
      await call.answer();
      await call.say('en', 'CURRENCY', '4.37');
      await call.say('en', 'NUMBER', '27');
      await call.say('en', 'TIME_MEASUREMENT', '1620');
    });
    expect(i.sent).toEqual(i.expected);
  });
});

describe('CallSession with json events', () => {
  const exactCdr = readFileSync(`${FIXTURES}f_copy_json_cdr.b_leg_cdr.json`, 'utf8').trim();
  const jsonEvent = (obj: Record<string, string>): string => {
    const body = JSON.stringify(obj);
    return `Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-json\n\n${body}`;
  };

  async function session() {
    const pair = await socketPair();
    cleanups.push(pair.close);
    const conn = new EslConnection(pair.server, { logger: silent });
    const connect = splitFrames(rx('a5_success_json'))[0] as Buffer;
    const reader = commandReader(pair.peer);
    const connected = conn.command('connect');
    await reader.next();
    pair.peer.write(connect);
    const data = (await connected).channelData as EslEvent;
    const call = new CallSession(conn, data, { logger: silent, timeouts: { bridgeHangupGraceMs: 300 } });
    return { call, conn, peer: pair.peer, reader };
  }

  it('bridge reads b_leg_cdr from the json event (values url-encoded inside the JSON) after a caller hangup', async () => {
    const { call, peer, reader } = await session();
    const bridging = call.bridge({ dialString: 'sofia/gateway/carrier/15559991234', timeoutMs: 10_000 });
    const uuid = eventUuidOf(await reader.next()) as string;
    const vars = { variable_originate_disposition: 'SUCCESS', variable_b_leg_cdr: exactCdr };
    peer.write(
      'Content-Type: command/reply\nReply-Text: +OK\n\n' +
        jsonEvent({ 'Event-Name': 'CHANNEL_BRIDGE' }) +
        // broadcast playback during the bridge: not ours
        jsonEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'playback', 'Application-UUID': '31a4360e-2f6d-44a9-9419-0592a8aaf1c8' }) +
        jsonEvent({ 'Event-Name': 'CHANNEL_HANGUP', 'Hangup-Cause': 'NORMAL_CLEARING' }) +
        jsonEvent({ 'Event-Name': 'CHANNEL_UNBRIDGE', ...vars }) +
        jsonEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'bridge', 'Application-UUID': uuid, ...vars }),
    );
    const result = await bridging;
    expect(result.callerHungUp).toBe(true);
    expect(result.answered).toBe(true);
    expect(result.disposition).toBe('SUCCESS');
    expect(result.carrierCdr).toMatchObject({ uuid: 'e3731e36-915f-4e79-827b-e200e2ea3f9f', billsec: 3, billmsec: 3000, hangupCause: 'NORMAL_CLEARING' });
    expect(result.carrierCdr?.variables.start_stamp).toBe('2026-11-22 22:38:09');
    expect(reader.all).toHaveLength(2); // connect + bridge: no uuid_getvar needed with json events
  });

  it('after the grace period without a completion, bridge resolves with what it saw', async () => {
    const { call, peer, reader } = await session();
    const bridging = call.bridge({ dialString: 'sofia/gateway/carrier/1', timeoutMs: 10_000 });
    await reader.next();
    peer.write(
      'Content-Type: command/reply\nReply-Text: +OK\n\n' +
        jsonEvent({ 'Event-Name': 'CHANNEL_BRIDGE' }) +
        jsonEvent({ 'Event-Name': 'CHANNEL_HANGUP', 'Hangup-Cause': 'NORMAL_CLEARING' }) +
        jsonEvent({ 'Event-Name': 'CHANNEL_UNBRIDGE', variable_originate_disposition: 'SUCCESS', variable_b_leg_cdr: exactCdr }),
    );
    const result = await bridging;
    expect(result).toMatchObject({ answered: true, callerHungUp: true, disposition: 'SUCCESS' });
    expect(result.carrierCdr?.billsec).toBe(3);
  });

  it('after the grace without UNBRIDGE or completion, bridge reports what the last event it saw said', async () => {
    const { call, peer, reader } = await session();
    const bridging = call.bridge({ dialString: 'sofia/gateway/carrier/1', timeoutMs: 10_000 });
    await reader.next();
    peer.write(
      'Content-Type: command/reply\nReply-Text: +OK\n\n' +
        jsonEvent({ 'Event-Name': 'CHANNEL_BRIDGE', variable_originate_disposition: 'ANSWER' }) +
        jsonEvent({ 'Event-Name': 'CHANNEL_HANGUP', 'Hangup-Cause': 'NORMAL_CLEARING', variable_originate_disposition: 'SUCCESS', variable_bridge_hangup_cause: 'USER_BUSY' }),
    );
    const result = await bridging;
    expect(result).toMatchObject({ answered: true, callerHungUp: true, disposition: 'SUCCESS', hangupCause: 'USER_BUSY', carrierCdr: undefined });
  });

  it('keeps of CHANNEL_DATA only Unique-ID, the variables the flow reads and the headers asked for', async () => {
    const { conn } = await session();
    const data = new EslEvent(
      new Map(
        Object.entries({
          'Unique-ID': 'u-1',
          'Caller-Caller-ID-Number': '15551230000',
          'Caller-Destination-Number': '15550001111',
          'Answer-State': 'answered',
          variable_ccard_resume: 'sealed',
          variable_originate_causes: 'x;NONE',
          variable_sip_full_via: 'SIP/2.0/UDP 127.0.0.1',
          variable_foo: 'bar',
        }),
      ),
      undefined,
      'plain',
    );
    const call = new CallSession(conn, data, { logger: silent, keepHeaders: ['Answer-State'] });
    expect(call.info).toMatchObject({ uuid: 'u-1', callerId: '15551230000', did: '15550001111' });
    expect(call.channelVariable('ccard_resume')).toBe('sealed');
    expect(call.channelVariable('originate_causes')).toBe('x;NONE');
    expect(call.channelData.get('Answer-State')).toBe('answered');
    expect(call.channelData.get('Unique-ID')).toBe('u-1');
    // not kept: read them exactly with readVariable (uuid_getvar) instead
    expect(call.channelVariable('foo')).toBeUndefined();
    expect(call.channelVariable('sip_full_via')).toBeUndefined();
    expect([...call.channelData.headers.keys()].sort()).toEqual(['Answer-State', 'Unique-ID', 'variable_ccard_resume', 'variable_originate_causes']);
  });

  it('prepare(): answer and multiset leave with the next command; a failure of either fails that command', async () => {
    const { call, peer, reader } = await session();
    call.prepare({ answer: true, variables: [['sound_prefix', '/s/en'], ['continue_on_fail', 'true']] });
    await new Promise((r) => setTimeout(r, 5));
    const playing = call.playback('ccard/enter_pin.wav');
    const [answer, multiset, playback] = [await reader.next(), await reader.next(), await reader.next()];
    expect(answer).toContain('execute-app-name: answer');
    expect(multiset).toContain('execute-app-name: multiset');
    expect(multiset).toContain('sound_prefix=/s/en continue_on_fail=true');
    expect(playback).toContain('execute-app-name: playback');
    // FreeSWITCH refuses the answer: the playback that went with it reports it, and its media is stopped.
    peer.write('Content-Type: command/reply\nReply-Text: -ERR no reply\n\n' + 'Content-Type: command/reply\nReply-Text: +OK\n\n'.repeat(2));
    await rejectsWith(playing, 'ESL_COMMAND_FAILED');
    expect(await reader.next()).toBe(`api uuid_break ${call.info.uuid} all\n\n`);
  });

  it('hangup() sends the sendmsg hangup once and never rejects; abort of a playback breaks the media', async () => {
    const { call, peer, reader } = await session();
    const ac = new AbortController();
    const playing = call.playback('ivr/welcome.wav', ac.signal);
    await reader.next();
    peer.write('Content-Type: command/reply\nReply-Text: +OK\n\n');
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await rejectsWith(playing, 'ESL_ABORTED');
    expect(await reader.next()).toBe(`api uuid_break ${call.info.uuid} all\n\n`);
    const h = call.hangup('USER_BUSY');
    expect(await reader.next()).toBe(sendmsgHangup('USER_BUSY'));
    peer.write('Content-Type: api/response\nContent-Length: 3\n\n+OK' + 'Content-Type: command/reply\nReply-Text: +OK\n\n');
    await h;
    peer.destroy();
    await expect(call.hangup()).resolves.toBeUndefined();
    expect(call.hungUp).toBe(true);
  });
});

describe('pure pieces', () => {
  it('builds commands exactly as the probe sent them', () => {
    const uuid = 'ba9cb5b9-a324-407b-8353-b816e931592c';
    const g = tx('g_pagd_invalid_then_valid');
    const arg = pagdFrom('10 10 3 5000 # tone_stream://%(200,0,440) tone_stream://%(300,100,480,620) pin ^\\d{10}$ 3000');
    const recorded = g.split('\n\n').find((c) => c.includes('play_and_get_digits'))!;
    expect(sendmsgExecute('play_and_get_digits', pagdArg(arg), uuid, false)).toBe(toBodyForm(`${recorded.replace(/Event-UUID: \S+/, `Event-UUID: ${uuid}`)}\n\n`));
    expect(sendmsgExecute('answer', undefined, uuid, false)).toBe(`sendmsg\ncall-command: execute\nexecute-app-name: answer\nEvent-UUID: ${uuid}\n\n`);
    expect(sendmsgExecute('answer', undefined, uuid, true)).toBe(`sendmsg\ncall-command: execute\nexecute-app-name: answer\nEvent-UUID: ${uuid}\nevent-lock: true\n\n`);
    // The event-lock default lives in the connection only (EslConnection.execute: with the lock); the builder has none.
    // @ts-expect-error: the argument is required
    expect(() => sendmsgExecute('answer', undefined, uuid)).toThrow(/eventLock must be given/);
    expect(() => pagdArg({ ...arg, variable: 'Pin-1' })).toThrow(/variable/);
    expect(() => pagdArg({ ...arg, prompt: 'a b' })).toThrow(/prompt/);
    expect(() => sendmsgHangup('NORMAL_CLEARING\nx: y')).toThrow();
  });

  it('refuses the once-decoded event-plain b_leg_cdr and a doctored document', () => {
    const exact = readFileSync(`${FIXTURES}f_copy_json_cdr.b_leg_cdr.json`, 'utf8').trim();
    expect(parseCarrierCdr(exact)?.billsec).toBe(3);
    expect(parseCarrierCdr(decodeURIComponent(exact))).toBeUndefined(); // what text/event-plain delivers (observation 14)
    expect(parseCarrierCdr('{"variables":{"uuid":"x","billsec":"3s"}}')).toBeUndefined();
    expect(parseCarrierCdr('not json')).toBeUndefined();
  });

  it('keeps every channel variable the flow reads with channelVariable()', () => {
    const files = readdirSync('src/flow', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const read = files.flatMap((f) => [...readFileSync(`src/flow/${f}`, 'utf8').matchAll(/\.channelVariable(?:\?\.)?\(\s*([^)]+?)\s*\)/g)].map((m) => m[1]!));
    expect(read.length).toBeGreaterThan(0);
    const names = read.map((arg) => (arg === 'RESUME_VARIABLE' ? RESUME_VARIABLE : /^'([a-z_]+)'$/.exec(arg)?.[1] ?? `unresolved: ${arg}`));
    for (const n of names) expect(CHANNEL_VARIABLES_KEPT).toContain(n);
  });

  it('reads CallInfo and the withheld flag from CHANNEL_DATA', () => {
    const ev = (h: Record<string, string>) => new EslEvent(new Map(Object.entries(h)), undefined, 'plain');
    expect(callInfoFrom(ev({ 'Unique-ID': 'u', 'Caller-Destination-Number': '1555', 'Caller-Caller-ID-Number': 'anonymous' })).callerIdWithheld).toBe(true);
    expect(callInfoFrom(ev({ 'Caller-Caller-ID-Number': '15551230000', 'Caller-Privacy-Hide-Number': 'true' })).callerIdWithheld).toBe(true);
    expect(callInfoFrom(ev({ 'Caller-Caller-ID-Number': '' })).callerIdWithheld).toBe(true);
    expect(callInfoFrom(ev({ 'Caller-Caller-ID-Number': '15551230000', 'Caller-Privacy-Hide-Number': 'false' })).callerIdWithheld).toBe(false);
  });
});

describe('EslServer', () => {
  it('drops a connection that sends garbage or oversized frames and keeps serving others', async () => {
    let calls = 0;
    const server = createEslServer({ port: 0, logger: silent, resume: false, eventFormat: 'plain', onCall: async () => void calls++, lingerWaitMs: 2_000 });
    servers.push(server);
    const { port } = await server.listen();
    const bad = async (payload: string | Buffer): Promise<void> => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise((r) => s.once('data', r)); // "connect\n\n"
      s.write(payload);
      await new Promise((r) => s.on('close', r));
    };
    await Promise.all([
      bad('garbage line without colon\n\n'),
      bad(`Content-Type: api/response\nContent-Length: ${9 * 1024 * 1024}\n\n`),
      bad(Buffer.alloc(70 * 1024, 'a')),
    ]);
    await waitFor(() => server.activeSessions === 0);
    const r = replay('i_say_currency', port);
    await r.closed;
    await waitFor(() => server.activeSessions === 0);
    expect(calls).toBe(1);
    expect(r.sent.at(-1)).toBe('exit\n\n');
  });

  it('refuses a socket that is not "async full" without calling onCall', async () => {
    let calls = 0;
    // The default handshake: with `resume` (README-resume.md).
    const server = createEslServer({ port: 0, logger: silent, onCall: async () => void calls++ });
    servers.push(server);
    const { port } = await server.listen();
    const connect = (splitFrames(rx('a_success'))[0] as Buffer).toString('latin1').replace('Socket-Mode: async', 'Socket-Mode: static');
    const s = net.connect(port, '127.0.0.1');
    const reader = commandReader(s);
    expect(await reader.next()).toBe('connect\n\n');
    s.write(connect);
    await new Promise((r) => s.on('close', r));
    expect(calls).toBe(0);
    // The handshake went out in one write; nothing was ever executed on the channel.
    expect(reader.all[0]).toBe('connect\n\n');
    expect(reader.all.slice(1).map((c) => c.split(' ')[0]!.trim())).toEqual(['myevents', 'linger', 'resume']);
  });

  it('counts active sessions and close() waits for them, then drops what is left', async () => {
    let release!: () => void;
    const server = createEslServer({ port: 0, logger: silent, resume: false, onCall: () => new Promise<void>((r) => (release = r)), lingerWaitMs: 100 });
    const { port } = await server.listen();
    const r = replay('a5_success_json', port);
    await waitFor(() => server.activeSessions === 1 && release !== undefined);
    const t0 = Date.now();
    await server.close(200); // the handler ignores its hangupSignal: close() drops the socket and gives up waiting
    expect(Date.now() - t0).toBeLessThan(2_000);
    await r.closed;
    expect(server.activeSessions).toBe(1); // the handler is still running
    release();
    await waitFor(() => server.activeSessions === 0);
  });
});
