/**
 * The flow of a call handed over by a dead ccard process (src/flow/resume.ts): recognised only from the state sealed
 * on the channel for this uuid; no PIN again; a reservation settled from the carrier CDR (then the remaining balance
 * and the offer) or, never bridged, its hold given back.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { runCallFlow } from '../../src/flow/run.ts';
import { RESUME_VARIABLE, resumeKey, sealResume, type ResumeState } from '../../src/flow/resume.ts';
import type { BridgeResult, Call } from '../../src/flow/call.ts';
import type { Reservation } from '../../src/flow/services.ts';
import { answeredBridge, FakeCall, type FakeCallScript } from './fake-call.ts';
import { FakeServices } from './fake-services.ts';

const SOUNDS = '/usr/share/ccard/sounds';
const KEY = resumeKey('flow-test-secret-0123456789');
const CALL_ID = 'd0004b13-8661-4a02-ac6a-3b4ae546a2bf';

async function run(script: FakeCallScript, channel: Record<string, string>, exact: Record<string, string> = {}) {
  const services = new FakeServices();
  services.setNumber({ maxCallsPerSession: 3 });
  const call = new FakeCall(script);
  const c = call as unknown as Call;
  c.channelVariable = (name) => channel[name];
  c.readVariable = async (name) => exact[name];
  const outcome = await runCallFlow(call, services, { soundsPrefix: SOUNDS, resumeKey: KEY, menuTimeoutMs: 100 }, pino({ level: 'silent' }));
  return { call, services, outcome };
}

const sealed = (call: { info: { uuid: string } } | string, s: ResumeState) =>
  sealResume(KEY, typeof call === 'string' ? call : call.info.uuid, s);
const IVR = new FakeCall().info.uuid;

function carrierCdrJson(billsec: number): string {
  const answer = BigInt(Date.now() - billsec * 1000) * 1000n;
  return JSON.stringify({
    variables: {
      uuid: CALL_ID,
      cc_call_id: CALL_ID,
      billsec: String(billsec),
      billmsec: String(billsec * 1000),
      answer_uepoch: String(answer),
      end_uepoch: String(answer + BigInt(billsec) * 1_000_000n),
      hangup_cause: 'NORMAL_CLEARING',
    },
  });
}

describe('a call handed over after a crash', () => {
  it('authorized before the crash: no PIN, the balance and the destination prompt', async () => {
    const { call, services, outcome } = await run(
      { digits: ['15557654321'], bridges: [answeredBridge(30)] },
      { [RESUME_VARIABLE]: sealed(IVR, { stage: 'a', cardId: 'card-1', sessionCalls: 0 }) },
    );
    expect(call.audio()[0]).toBe('you_have');
    expect(call.audio()).not.toContain('pagd:enter_pin');
    expect(services.callsOf('authorizeByPin')).toHaveLength(0);
    expect(services.callsOf('authorize')).toEqual([['card-1']]);
    expect(outcome.calls).toHaveLength(1);
    expect(outcome.ended).toBe('completed');
  });

  it('reserved and bridged: settled from the carrier CDR on the channel, then the remaining balance and the offer', async () => {
    const { call, services, outcome } = await run(
      { digits: [''] },
      { [RESUME_VARIABLE]: sealed(IVR, { stage: 'r', cardId: 'card-1', callId: CALL_ID, sessionCalls: 0 }), originate_causes: `${CALL_ID};NONE` },
      { [`b_leg_cdr_${CALL_ID}`]: carrierCdrJson(30) },
    );
    const settles = services.callsOf('settle') as Array<[Reservation, BridgeResult]>;
    expect(settles).toHaveLength(1);
    expect(settles[0]![0]).toMatchObject({ callId: CALL_ID, cardId: 'card-1' });
    expect(settles[0]![1].answered).toBe(true);
    expect(settles[0]![1].carrierCdr?.billsec).toBe(30);
    expect(call.audio().slice(0, 3)).toEqual(['remaining_balance', expect.stringMatching(/^say:CURRENCY:/), 'pagd:another_call']);
    expect(call.audio()).not.toContain('pagd:enter_pin');
    expect(outcome.calls[0]).toMatchObject({ callId: CALL_ID, outcome: 'answered' });
    expect(outcome.ended).toBe('completed');
  });

  it('reserved but never dialled: the hold is given back, then the balance and the destination prompt', async () => {
    const { call, services } = await run(
      { digits: ['15557654321'], bridges: [answeredBridge(5)] },
      { [RESUME_VARIABLE]: sealed(IVR, { stage: 'r', cardId: 'card-1', callId: CALL_ID, sessionCalls: 0 }) },
    );
    const settles = services.callsOf('settle') as Array<[Reservation, BridgeResult]>;
    expect(settles[0]![0].callId).toBe(CALL_ID);
    expect(settles[0]![1]).toMatchObject({ answered: false, disposition: 'NOT_BRIDGED', carrierCdr: undefined });
    expect(call.audio().slice(0, 3)).toEqual(['you_have', 'say:CURRENCY:4.37', 'pagd:enter_destination']);
    // The new call is reserved and settled as usual.
    expect(settles).toHaveLength(2);
  });

  it('a state sealed for another channel (or none) is ignored: the PIN is asked as for any call', async () => {
    const { call, services } = await run(
      { digits: ['1234567890', ''] },
      { [RESUME_VARIABLE]: sealed('ffffffff-9d6f-4b7a-8f43-2f1f6d1e0c11', { stage: 'a', cardId: 'card-1', sessionCalls: 0 }) },
    );
    expect(call.audio()[0]).toBe('pagd:enter_pin');
    expect(services.callsOf('settle')).toHaveLength(0);
  });

  it('the flow seals its state with the commands it sends: authorized, then the reservation with the bridge', async () => {
    const { call } = await run({ digits: ['1234567890', '15557654321', ''], bridges: [answeredBridge(20)] }, {});
    const marks = call.sets().filter(([k]) => k === RESUME_VARIABLE).map(([, v]) => v.split('.').slice(0, 5).join('.'));
    expect(marks[0]).toBe('1.a.card-1.-.0');
    expect(marks[1]).toMatch(/^1\.r\.card-1\.[0-9a-f-]{36}\.0$/);
    expect(marks[2]).toBe('1.m.card-1.-.1');
  });
});
