import { describe, expect, it } from 'vitest';
import { classifyBridge } from '../../src/flow/bridge-outcome.ts';
import { buildDialString, DialStringError, type DialParts } from '../../src/flow/dial-string.ts';
import { resolveFlowOptions } from '../../src/flow/options.ts';
import { durationItems } from '../../src/flow/machine.ts';
import { answeredBridge, failedBridge } from './fake-call.ts';

const ID = '6f1c2b7e-0d4a-4c55-9b1e-3c2d1a0f9e88';
const base: DialParts = {
  gateway: 'carrier',
  number: '15557654321',
  callId: ID,
  cardId: '42',
  originateTimeoutSec: 60,
  maxSeconds: 300,
};

describe('buildDialString', () => {
  it('puts the cap on the carrier leg', () => {
    expect(buildDialString(base)).toBe(
      `{origination_uuid=${ID},cc_call_id=${ID},cc_card_id=42,copy_json_cdr=true,originate_timeout=60,` +
        `execute_on_answer_1='sched_hangup +300 allotted_timeout'}sofia/gateway/carrier/15557654321`,
    );
  });

  it('adds the warning as a second execute_on_answer (recording h2)', () => {
    expect(buildDialString({ ...base, warning: { file: '/snd/en/ccard/8000/low_balance_warning.wav', secondsBeforeEnd: 60 } })).toContain(
      `execute_on_answer_1='sched_hangup +300 allotted_timeout',execute_on_answer_2='sched_broadcast +240 /snd/en/ccard/8000/low_balance_warning.wav both'}`,
    );
  });

  it.each<[string, Partial<DialParts>]>([
    ['number with ;', { number: '1555;rm' }],
    ['number with +', { number: '+15557654321' }],
    ['number too long', { number: '1'.repeat(21) }],
    ['gateway with a comma', { gateway: 'carrier,foo=bar' }],
    ['gateway with a slash', { gateway: 'carrier/1555' }],
    ['gateway with a brace', { gateway: 'carrier}' }],
    ['empty gateway', { gateway: '' }],
    ['call id not a uuid', { callId: `${ID},x=y` }],
    ['card id with a quote', { cardId: "42'" }],
    ['fractional cap', { maxSeconds: 1.5 }],
    ['zero cap', { maxSeconds: 0 }],
    ['negative originate timeout', { originateTimeoutSec: -1 }],
    ['warning file with a space', { warning: { file: '/snd/x y.wav', secondsBeforeEnd: 60 } }],
    ['warning file going up', { warning: { file: '/snd/../etc/passwd', secondsBeforeEnd: 60 } }],
    ['warning after the cap', { warning: { file: '/snd/w.wav', secondsBeforeEnd: 300 } }],
  ])('refuses %s', (_, over) => {
    expect(() => buildDialString({ ...base, ...over })).toThrow(DialStringError);
  });
});

describe('classifyBridge', () => {
  it('answered wins over any cause', () => {
    expect(classifyBridge({ ...answeredBridge(5), hangupCause: 'ALLOTTED_TIMEOUT' })).toBe('answered');
  });
  it('looks at the disposition, then the hangup cause', () => {
    expect(classifyBridge(failedBridge('USER_BUSY', undefined))).toBe('busy');
    expect(classifyBridge({ ...failedBridge('NORMAL_CLEARING', 'NO_ANSWER') })).toBe('no_answer');
    expect(classifyBridge(failedBridge('DESTINATION_OUT_OF_ORDER'))).toBe('congestion');
    expect(classifyBridge(failedBridge('NORMAL_CIRCUIT_CONGESTION'))).toBe('congestion');
    expect(classifyBridge(failedBridge('constructor'))).toBe('failed');
    expect(classifyBridge({ disposition: undefined, hangupCause: undefined, answered: false, carrierCdr: undefined, callerHungUp: false })).toBe('failed');
  });
});

describe('durationItems', () => {
  it('never says zero minutes', () => {
    expect(durationItems(0)).toEqual([{ prompt: 'less_than_one_minute' }]);
    expect(durationItems(59)).toEqual([{ prompt: 'less_than_one_minute' }]);
    expect(durationItems(60)).toEqual([{ prompt: 'call_can_last' }, { say: 'NUMBER', text: '1' }, { prompt: 'minute' }]);
    expect(durationItems(1619)).toEqual([{ prompt: 'call_can_last' }, { say: 'NUMBER', text: '26' }, { prompt: 'minutes' }]);
  });
});

describe('resolveFlowOptions', () => {
  it('fills the defaults and strips a trailing slash', () => {
    expect(resolveFlowOptions({ soundsPrefix: '/usr/share/ccard/sounds/' })).toMatchObject({
      soundsPrefix: '/usr/share/ccard/sounds',
      pinTimeoutMs: 5000,
      digitTimeoutMs: 3000,
      destTries: 3,
      originateTimeoutSec: 60,
      warningSecondsBeforeEnd: 60,
    });
  });
  it.each(['relative/sounds', '/a b', '/a,b', "/a'b", '/a/../b'])('refuses soundsPrefix %j', (soundsPrefix) => {
    expect(() => resolveFlowOptions({ soundsPrefix })).toThrow(RangeError);
  });
  it('refuses non-integer timeouts', () => {
    expect(() => resolveFlowOptions({ soundsPrefix: '/s', destTries: 0 })).toThrow(/destTries/);
    expect(() => resolveFlowOptions({ soundsPrefix: '/s', originateTimeoutSec: 1.5 })).toThrow(/originateTimeoutSec/);
  });
});
