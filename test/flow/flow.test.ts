import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EslError } from '../../src/esl/errors.ts';
import type { FlowOptions } from '../../src/flow/options.ts';
import { runCallFlow } from '../../src/flow/run.ts';
import { ServiceUnavailableError, type Reservation, type ReserveResult } from '../../src/flow/services.ts';
import { parseMoney } from '../../src/money/money.ts';
import { answeredBridge, failedBridge, FakeCall, type FakeCallScript } from './fake-call.ts';
import { FakeServices } from './fake-services.ts';

const SOUNDS = '/usr/share/ccard/sounds';
const PIN = '1234567890';
const DEST = '15557654321';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function run(
  script: FakeCallScript,
  services = new FakeServices(),
  opts: Partial<FlowOptions> = {},
  onCall: (call: FakeCall) => void = () => {},
) {
  const call = new FakeCall(script);
  onCall(call);
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const started = Date.now();
  const outcome = await runCallFlow(call, services, { soundsPrefix: SOUNDS, ...opts }, logger);
  return { call, services, outcome, lines, ms: Date.now() - started };
}

const settles = (s: FakeServices) => s.callsOf('settle') as Array<[Reservation, unknown]>;

describe('call flow: the successful PIN call', () => {
  it('answers, authenticates, announces, bridges with the cap, settles and says goodbye', async () => {
    const { call, services, outcome, lines } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(187)] });

    // The answer and the call's variables are not waited for: they go out with the PIN prompt (no signal of
    // their own, sent after the lookups).
    expect(call.commands.slice(0, 3).map((c) => c.cmd)).toEqual(['answer', 'set', 'playAndGetDigits']);
    expect(call.commands[0]!.signal).toBeUndefined();
    expect(services.calls.findIndex((c) => c.method === 'accessNumber')).toBe(0);
    expect(call.sets()).toEqual([
      ['sound_prefix', `${SOUNDS}/en`],
      ['continue_on_fail', 'true'],
      ['hangup_after_bridge', 'false'],
    ]);
    expect(call.audio()).toEqual([
      'pagd:enter_pin',
      'you_have',
      'say:CURRENCY:4.37',
      'pagd:enter_destination',
      'call_can_last',
      'say:NUMBER:72',
      'minutes',
      'remaining_balance',
      'say:CURRENCY:4.18',
      'goodbye',
    ]);
    expect(call.commands.at(-1)!.cmd).toBe('hangup');
    expect(call.commands.filter((c) => c.cmd === 'say').every((c) => c.args[0] === 'en')).toBe(true);
    // The balance goes out with the destination prompt, and the balance after the call with the goodbye: one
    // effect (one AbortSignal) each, so the ESL layer sends each group in one write.
    const signalOf = (i: number) => call.commands[i]!.signal;
    const at = (pred: (c: (typeof call.commands)[number]) => boolean) => call.commands.findIndex(pred);
    const youHave = at((c) => c.args[0] === 'ccard/you_have.wav');
    const destPrompt = at((c) => c.cmd === 'playAndGetDigits' && (c.args[0] as { variable: string }).variable === 'ivr_destination');
    expect(signalOf(youHave)).toBe(signalOf(destPrompt));
    expect(signalOf(youHave + 1)).toBe(signalOf(destPrompt));
    const remaining = at((c) => c.args[0] === 'ccard/remaining_balance.wav');
    const goodbye = at((c) => c.args[0] === 'ccard/goodbye.wav');
    expect(signalOf(remaining)).toBe(signalOf(goodbye));

    const [pinReq, destReq] = call.digitRequests();
    expect(pinReq).toMatchObject({ min: 10, max: 10, tries: 1, terminators: '#', regex: '^\\d{10}$', prompt: 'ccard/enter_pin.wav' });
    expect(destReq).toMatchObject({ min: 1, max: 18, tries: 1, terminators: '#', regex: '^(\\d+|\\*)$', variable: 'ivr_destination' });

    const reserve = services.callsOf('reserve');
    expect(reserve).toEqual([['card-1', DEST, { ivrUuid: call.info.uuid, did: '15550001111', callerId: '15551230000' }]]);
    // Reserve gets the card as authorized and what it could spend then: it reads neither again.
    expect(services.reserveHints[0]).toMatchObject({ card: { id: 'card-1' }, available: parseMoney('4.37') });
    // The balance after the call is the one the debit returned: no extra read.
    expect(services.callsOf('balance')).toEqual([]);

    const [s] = settles(services);
    expect(settles(services)).toHaveLength(1);
    const callId = s![0].callId;
    expect(callId).toMatch(UUID_RE);
    expect(s![1]).toEqual(answeredBridge(187));
    expect(call.bridgeRequests()).toEqual([
      {
        dialString:
          `{origination_uuid=${callId},cc_call_id=${callId},cc_card_id=card-1,copy_json_cdr=true,originate_timeout=60,` +
          `execute_on_answer_1='sched_hangup +4370 allotted_timeout',` +
          `execute_on_answer_2='sched_broadcast +4310 ${SOUNDS}/en/ccard/8000/low_balance_warning.wav both'}` +
          `sofia/gateway/carrier/${DEST}`,
        timeoutMs: (60 + 4370 + 30) * 1000,
      },
    ]);

    expect(outcome).toMatchObject({ ended: 'completed', callerHungUp: false, cardId: 'card-1', language: 'en' });
    expect(outcome.calls).toEqual([
      expect.objectContaining({
        callId,
        number: DEST,
        gateway: 'carrier',
        maxSeconds: 4370,
        outcome: 'answered',
        settle: { billedSeconds: 187, cost: parseMoney('0.187'), balance: parseMoney('4.183') },
      }),
    ]);
    expect(outcome.played).toEqual([
      'enter_pin', 'you_have', 'say:CURRENCY:4.37', 'enter_destination', 'call_can_last', 'say:NUMBER:72', 'minutes',
      'remaining_balance', 'say:CURRENCY:4.18', 'goodbye',
    ]);
    expect(services.held.size).toBe(0);

    expect(lines.length).toBeGreaterThan(5);
    expect(lines.every((l) => l.uuid === call.info.uuid)).toBe(true);
  });

  it('announces amounts with two decimals ("12.50", never "12.5")', async () => {
    const services = new FakeServices();
    services.cards.get('card-1')!.balance = parseMoney('12.5');
    const { call } = await run({ digits: [PIN] }, services);
    expect(call.audio()).toContain('say:CURRENCY:12.50');
  });

  it('plays the DID language (es) and falls back to en for a language not shipped', async () => {
    const es = new FakeServices();
    es.setNumber({ language: 'es' });
    const a = await run({ digits: [PIN] }, es);
    expect(a.call.sets()[0]).toEqual(['sound_prefix', `${SOUNDS}/es`]);
    expect(a.call.commands.find((c) => c.cmd === 'say')!.args[0]).toBe('es');

    const fr = new FakeServices();
    fr.setNumber({ language: 'fr' });
    const b = await run({ digits: [PIN] }, fr);
    expect(b.call.sets()[0]).toEqual(['sound_prefix', `${SOUNDS}/en`]);
    expect(b.outcome.language).toBe('en');
  });
});

describe('call flow: number and caller checks', () => {
  it('unknown or disabled DID: number_not_in_service, hang up', async () => {
    const services = new FakeServices();
    services.numbers.clear();
    const { call, outcome, lines } = await run({}, services);
    expect(call.sets()).toEqual([['sound_prefix', `${SOUNDS}/en`]]);
    expect(call.audio()).toEqual(['number_not_in_service']);
    expect(call.count('hangup')).toBe(1);
    expect(call.count('playAndGetDigits')).toBe(0);
    expect(outcome.ended).toBe('number_not_in_service');
    expect(lines.some((l) => l.msg === 'access number unknown or disabled')).toBe(true);
  });

  it('locked out caller: locked_out, no PIN asked', async () => {
    const services = new FakeServices();
    services.lockedOut = true;
    const { call, outcome } = await run({ digits: [PIN] }, services);
    expect(services.callsOf('isLockedOut')).toEqual([['15550001111', '15551230000']]);
    expect(call.audio()).toEqual(['locked_out']);
    expect(call.count('playAndGetDigits')).toBe(0);
    expect(outcome.ended).toBe('locked_out');
  });
});

describe('call flow: PIN', () => {
  it('three wrong PINs: invalid_pin, too_many_attempts, three recorded failures', async () => {
    const { call, services, outcome } = await run({ digits: ['1111111111', '2222222222', '3333333333'] });
    expect(call.audio()).toEqual([
      'pagd:enter_pin', 'invalid_pin', 'pagd:enter_pin', 'invalid_pin', 'pagd:enter_pin', 'too_many_attempts',
    ]);
    expect(services.callsOf('recordPinFailure')).toEqual(Array(3).fill(['15550001111', '15551230000']));
    expect(services.callsOf('authorize')).toEqual([]);
    expect(call.count('hangup')).toBe(1);
    expect(outcome.ended).toBe('too_many_attempts');
  });

  it('partial digits are never looked up, even with read_result=success; a failure flag voids full digits', async () => {
    const { call, services, outcome } = await run({
      digits: [{ digits: '12345', success: true }, { digits: PIN, success: false }, PIN],
    });
    expect(services.callsOf('authorizeByPin')).toEqual([[PIN]]);
    expect(call.audio().slice(0, 5)).toEqual(['pagd:enter_pin', 'invalid_pin', 'pagd:enter_pin', 'invalid_pin', 'pagd:enter_pin']);
    expect(outcome.cardId).toBe('card-1');
  });

  it('nothing keyed counts as a try', async () => {
    const { outcome, services } = await run({ digits: [] });
    expect(outcome.ended).toBe('too_many_attempts');
    expect(services.callsOf('authorizeByPin')).toEqual([]);
  });

  it('honours the DID pin length and tries', async () => {
    const services = new FakeServices();
    services.setNumber({ pinLength: 4, pinTries: 1 });
    services.pins.set('4321', 'card-1');
    const { call, outcome } = await run({ digits: ['1234'] }, services);
    expect(call.digitRequests()[0]).toMatchObject({ min: 4, max: 4, regex: '^\\d{4}$' });
    expect(outcome.ended).toBe('too_many_attempts');
  });
});

describe('call flow: CLI', () => {
  it('pinless CLI: no PIN asked', async () => {
    const services = new FakeServices();
    services.setNumber({ authMode: 'cli' });
    services.clis.set('15551230000', 'card-1');
    const { call, outcome } = await run({ digits: [] }, services);
    expect(services.callsOf('cardIdByCli')).toEqual([['15551230000']]);
    expect(call.audio().slice(0, 3)).toEqual(['you_have', 'say:CURRENCY:4.37', 'pagd:enter_destination']);
    expect(outcome.cardId).toBe('card-1');
  });

  it('pinless CLI with the card read together with the access number: no separate lookup', async () => {
    const services = new FakeServices();
    services.cliWithNumber = true;
    services.setNumber({ authMode: 'cli-then-pin' });
    services.clis.set('15551230000', 'card-1');
    const { call, outcome } = await run({ digits: [] }, services);
    expect(services.callsOf('cardIdByCli')).toEqual([]);
    expect(services.callsOf('authorize')).toEqual([['card-1']]);
    expect(call.audio().slice(0, 3)).toEqual(['you_have', 'say:CURRENCY:4.37', 'pagd:enter_destination']);
    expect(outcome.cardId).toBe('card-1');

    // No card for that caller ID: straight to the PIN, still no separate lookup.
    const other = new FakeServices();
    other.cliWithNumber = true;
    other.setNumber({ authMode: 'cli-then-pin' });
    const second = await run({ digits: [PIN, DEST], bridges: [answeredBridge(5)] }, other);
    expect(other.callsOf('cardIdByCli')).toEqual([]);
    expect(second.call.audio()[0]).toBe('pagd:enter_pin');
    expect(second.outcome.ended).toBe('completed');
  });

  it('unknown CLI: card_unknown, hang up', async () => {
    const services = new FakeServices();
    services.setNumber({ authMode: 'cli' });
    const { call, outcome } = await run({}, services);
    expect(call.audio()).toEqual(['card_unknown']);
    expect(outcome.ended).toBe('card_unknown');
  });

  it.each([
    ['anonymous', false],
    ['', false],
    ['0000000000', false],
    ['15551230000', true],
  ])('caller id %j (withheld=%s) never authenticates by CLI', async (callerId, withheld) => {
    const services = new FakeServices();
    services.setNumber({ authMode: 'cli' });
    services.clis.set(callerId, 'card-1');
    const { call, outcome } = await run({ info: { callerId, callerIdWithheld: withheld } }, services);
    expect(services.callsOf('cardIdByCli')).toEqual([]);
    expect(call.audio()).toEqual(['card_unknown']);
    expect(outcome.cardId).toBeUndefined();
  });

  it('cli-then-pin: unknown CLI falls back to PIN, offers binding, binds on 1', async () => {
    const services = new FakeServices();
    services.setNumber({ authMode: 'cli-then-pin', bindCliAfterPin: true });
    const { call, outcome } = await run({ digits: [PIN, '1'] }, services);
    expect(services.callsOf('cardIdByCli')).toEqual([['15551230000']]);
    expect(call.audio().slice(0, 4)).toEqual(['pagd:enter_pin', 'pagd:bind_cli_offer', 'cli_bound', 'you_have']);
    expect(call.digitRequests()[1]).toMatchObject({ min: 1, max: 1 });
    expect(services.bound).toEqual([['15551230000', 'card-1']]);
    expect(outcome.cardId).toBe('card-1');
  });

  it('cli-then-pin: a known CLI skips the PIN; declining the offer binds nothing', async () => {
    const known = new FakeServices();
    known.setNumber({ authMode: 'cli-then-pin', bindCliAfterPin: true });
    known.clis.set('15551230000', 'card-1');
    const a = await run({ digits: [] }, known);
    expect(a.call.audio()[0]).toBe('you_have');

    const decline = new FakeServices();
    decline.setNumber({ authMode: 'cli-then-pin', bindCliAfterPin: true });
    const b = await run({ digits: [PIN, '2'] }, decline);
    expect(b.call.audio().slice(0, 3)).toEqual(['pagd:enter_pin', 'pagd:bind_cli_offer', 'you_have']);
    expect(decline.bound).toEqual([]);
  });

  it('cli-then-pin with an anonymous caller: straight to PIN, no binding offer', async () => {
    const services = new FakeServices();
    services.setNumber({ authMode: 'cli-then-pin', bindCliAfterPin: true });
    const { call } = await run({ info: { callerId: 'anonymous' }, digits: [PIN] }, services);
    expect(services.callsOf('cardIdByCli')).toEqual([]);
    expect(call.audio().slice(0, 2)).toEqual(['pagd:enter_pin', 'you_have']);
  });
});

describe('call flow: card status', () => {
  it.each([
    ['disabled', 'card_disabled'],
    ['expired', 'card_expired'],
  ] as const)('%s card: %s, hang up', async (status, prompt) => {
    const services = new FakeServices();
    services.cards.get('card-1')!.status = status;
    const { call, outcome } = await run({ digits: [PIN] }, services);
    expect(call.audio()).toEqual(['pagd:enter_pin', prompt]);
    expect(outcome.ended).toBe(prompt);
    expect(call.count('hangup')).toBe(1);
  });

  it('no balance: no_balance, hang up', async () => {
    const services = new FakeServices();
    services.cards.get('card-1')!.balance = 0n;
    const { call, outcome } = await run({ digits: [PIN] }, services);
    expect(call.audio()).toEqual(['pagd:enter_pin', 'no_balance']);
    expect(outcome.ended).toBe('no_balance');
  });

  it('caller ID bound to a card that authorize does not know: card_unknown', async () => {
    const services = new FakeServices();
    services.setNumber({ authMode: 'cli' });
    services.clis.set('15551230000', 'card-gone');
    const { call, outcome } = await run({}, services);
    expect(call.audio()).toEqual(['card_unknown']);
    expect(outcome.ended).toBe('card_unknown');
  });

  it('first use activates the card: card_activated before the balance', async () => {
    const services = new FakeServices();
    services.cards.get('card-1')!.status = 'pending';
    const { call } = await run({ digits: [PIN] }, services);
    expect(call.audio().slice(0, 3)).toEqual(['pagd:enter_pin', 'card_activated', 'you_have']);
  });
});

describe('call flow: destination', () => {
  it('* replays the balance without using a try', async () => {
    const { call, services, outcome } = await run(
      { digits: [PIN, '*', '*', DEST], bridges: [answeredBridge(10)] },
      new FakeServices(),
      { destTries: 1 },
    );
    expect(call.audio().slice(0, 8)).toEqual([
      'pagd:enter_pin', 'you_have', 'say:CURRENCY:4.37', 'pagd:enter_destination',
      'you_have', 'say:CURRENCY:4.37', 'pagd:enter_destination', 'you_have',
    ]);
    expect(services.callsOf('balance').length).toBeGreaterThanOrEqual(2);
    expect(outcome.calls).toHaveLength(1);
  });

  it('invalid entries are retried, then goodbye', async () => {
    const { call, services, outcome } = await run({ digits: [PIN, '12', '999999999999999999', { digits: '1555765', success: true }] });
    expect(call.audio().filter((a) => a === 'invalid_destination')).toHaveLength(3);
    expect(call.audio().at(-1)).toBe('goodbye');
    expect(services.callsOf('reserve')).toEqual([]);
    expect(outcome.ended).toBe('destination_tries_exhausted');
  });

  it('an invalid entry then a valid one goes on to the call', async () => {
    const { call, outcome } = await run({ digits: [PIN, '0', DEST], bridges: [answeredBridge(5)] });
    expect(call.audio()).toContain('invalid_destination');
    expect(outcome.calls).toHaveLength(1);
  });

  it('normalises national and international forms to E.164 before rating', async () => {
    const s1 = new FakeServices();
    await run({ digits: [PIN, '5557654321'], bridges: [answeredBridge(1)] }, s1);
    expect(s1.callsOf('reserve')[0]![1]).toBe(DEST);
    const s2 = new FakeServices();
    await run({ digits: [PIN, '011442079460000'], bridges: [answeredBridge(1)] }, s2);
    expect(s2.callsOf('reserve')[0]![1]).toBe('442079460000');
  });

  it('denied prefix (premium 1900): destination_not_allowed', async () => {
    const { call, services } = await run({ digits: [PIN, '19005551234'] });
    expect(call.audio()).toContain('destination_not_allowed');
    expect(services.callsOf('reserve')).toEqual([]);
  });

  it('allow list without a match: destination_not_allowed', async () => {
    const services = new FakeServices();
    services.setNumber({ allowedPrefixes: ['44'] });
    const { call } = await run({ digits: [PIN, DEST, '00442079460000'], bridges: [answeredBridge(1)] }, services);
    expect(call.audio().filter((a) => a === 'destination_not_allowed')).toHaveLength(1);
    expect(services.callsOf('reserve').map(([card, number]) => [card, number])).toEqual([['card-1', '442079460000']]);
  });

  it('no rate: no_rate and the destination is asked again', async () => {
    const services = new FakeServices();
    services.rateFor.set('15551112222', { ok: false, reason: 'no_rate' });
    const { call, outcome } = await run({ digits: [PIN, '15551112222', DEST], bridges: [answeredBridge(1)] }, services);
    expect(call.audio().slice(3, 6)).toEqual(['pagd:enter_destination', 'no_rate', 'pagd:enter_destination']);
    expect(outcome.calls).toHaveLength(1);
  });

  it('insufficient balance for that destination: insufficient_balance', async () => {
    const services = new FakeServices();
    services.rateFor.set(DEST, { ok: false, reason: 'insufficient' });
    const { call, services: s } = await run({ digits: [PIN, DEST] }, services);
    expect(call.audio()).toContain('insufficient_balance');
    // Refused before anything was said about the call's length, and nothing bridged or settled.
    expect(call.audio()).not.toContain('call_can_last');
    expect(call.count('bridge')).toBe(0);
    expect(s.callsOf('settle')).toEqual([]);
  });

  it('injection attempts in the destination never reach a command', async () => {
    const { call, services } = await run({
      digits: [PIN, { digits: '1555;rm', success: true }, { digits: "1555' both", success: true }, { digits: '1555,x=y', success: true }],
    });
    expect(call.audio().filter((a) => a === 'invalid_destination')).toHaveLength(3);
    expect(services.callsOf('reserve')).toEqual([]);
    expect(call.count('bridge')).toBe(0);
  });
});

describe('call flow: announcements of the call length', () => {
  it('under a minute: less_than_one_minute, never "0", and no warning on a short call', async () => {
    const services = new FakeServices();
    services.cards.get('card-1')!.balance = parseMoney('0.045');
    const { call } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(10)] }, services);
    expect(call.audio()).toContain('less_than_one_minute');
    expect(call.audio().some((a) => a.startsWith('say:NUMBER'))).toBe(false);
    const dial = call.bridgeRequests()[0]!.dialString;
    expect(dial).toContain("execute_on_answer_1='sched_hangup +45 allotted_timeout'");
    expect(dial).not.toContain('sched_broadcast');
  });

  it('one minute: "minute"', async () => {
    const services = new FakeServices();
    // 89 s: one minute, and not more than warningSecondsBeforeEnd (60) + warningMinLeadSec (30): no warning.
    services.cards.get('card-1')!.balance = parseMoney('0.089');
    const { call } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(10)] }, services);
    expect(call.audio()).toEqual(expect.arrayContaining(['call_can_last', 'say:NUMBER:1', 'minute']));
    expect(call.bridgeRequests()[0]!.dialString).not.toContain('sched_broadcast');
  });

  it('the warning is scheduled warningSecondsBeforeEnd before the cap once the call is long enough', async () => {
    const services = new FakeServices();
    services.cards.get('card-1')!.balance = parseMoney('0.091');
    const { call } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(10)] }, services);
    expect(call.bridgeRequests()[0]!.dialString).toContain(
      `execute_on_answer_2='sched_broadcast +31 ${SOUNDS}/en/ccard/8000/low_balance_warning.wav both'`,
    );
  });
});

describe('call flow: reservation refused', () => {
  it('too many calls: too_many_calls, hang up, nothing to settle', async () => {
    const services = new FakeServices();
    services.reserveQueue.push({ ok: false, reason: 'too_many_calls' });
    const { call, outcome } = await run({ digits: [PIN, DEST] }, services);
    expect(call.audio().slice(-1)).toEqual(['too_many_calls']);
    expect(call.count('bridge')).toBe(0);
    expect(services.callsOf('settle')).toEqual([]);
    expect(outcome.ended).toBe('too_many_calls');
  });

  it.each([
    ['card_disabled', 'card_disabled'],
    ['card_expired', 'card_expired'],
    ['card_unknown', 'card_unknown'],
  ] as const)('card changed during the IVR (%s): its own prompt, not "balance too low", and the call ends', async (reason, prompt) => {
    const services = new FakeServices();
    services.reserveQueue.push({ ok: false, reason });
    const { call, outcome } = await run({ digits: [PIN, DEST, DEST] }, services);
    expect(call.audio().slice(-1)).toEqual([prompt]);
    expect(call.audio()).not.toContain('insufficient_balance');
    expect(call.count('bridge')).toBe(0);
    expect(services.callsOf('reserve')).toHaveLength(1);
    expect(services.callsOf('settle')).toEqual([]);
    expect(outcome.ended).toBe(reason);
  });

  it.each([
    ['insufficient', 'insufficient_balance'],
    ['no_rate', 'no_rate'],
    ['retry', 'try_again'],
  ] as const)('reserve %s: %s and the destination is asked again', async (reason, prompt) => {
    const services = new FakeServices();
    services.reserveQueue.push({ ok: false, reason });
    const { call, outcome } = await run({ digits: [PIN, DEST, DEST], bridges: [answeredBridge(3)] }, services);
    expect(call.audio()).toContain(prompt);
    expect(outcome.calls).toHaveLength(1);
  });
});

describe('call flow: carrier outcomes', () => {
  it.each([
    ['USER_BUSY', 'busy'],
    ['NO_ANSWER', 'no_answer'],
    ['NO_USER_RESPONSE', 'no_answer'],
    ['ALLOTTED_TIMEOUT', 'no_answer'],
    ['UNALLOCATED_NUMBER', 'invalid_number'],
    ['INVALID_NUMBER_FORMAT', 'invalid_number'],
    ['NO_ROUTE_DESTINATION', 'invalid_number'],
    ['NORMAL_TEMPORARY_FAILURE', 'congestion'],
    ['GATEWAY_DOWN', 'congestion'],
    ['CALL_REJECTED', 'call_failed'],
  ])('%s: %s, released at no cost', async (cause, prompt) => {
    const { call, services, outcome } = await run({ digits: [PIN, DEST], bridges: [failedBridge(cause)] });
    expect(call.audio().slice(-2)).toEqual([prompt, 'goodbye']);
    expect(call.audio()).not.toContain('remaining_balance');
    expect(settles(services)).toHaveLength(1);
    expect(settles(services)[0]![1]).toEqual(failedBridge(cause));
    expect(outcome.calls[0]!.settle).toEqual({ billedSeconds: 0, cost: 0n, balance: parseMoney('4.37') });
    expect(services.held.size).toBe(0);
  });

  it('congestion with a failover gateway: release, reserve again with a new call id, dial the failover', async () => {
    const services = new FakeServices();
    services.setNumber({ failoverGateway: 'backup-gw' });
    const { call, outcome } = await run(
      { digits: [PIN, DEST], bridges: [failedBridge('NORMAL_TEMPORARY_FAILURE'), answeredBridge(60)] },
      services,
    );
    const [first, second] = call.bridgeRequests();
    expect(first!.dialString).toMatch(/sofia\/gateway\/carrier\/15557654321$/);
    expect(second!.dialString).toMatch(/sofia\/gateway\/backup-gw\/15557654321$/);
    expect(services.callsOf('reserve')).toHaveLength(2);
    const s = settles(services);
    expect(s).toHaveLength(2);
    expect(s[0]![0].callId).not.toBe(s[1]![0].callId);
    expect(s[0]![1]).toEqual(failedBridge('NORMAL_TEMPORARY_FAILURE'));
    expect(second!.dialString).toContain(`origination_uuid=${s[1]![0].callId}`);
    expect(call.audio()).not.toContain('congestion');
    expect(call.audio()).toContain('remaining_balance');
    expect(outcome.calls.map((c) => [c.gateway, c.outcome])).toEqual([
      ['carrier', 'congestion'],
      ['backup-gw', 'answered'],
    ]);
    expect(call.sets().filter(([n]) => n === 'continue_on_fail')).toHaveLength(1);
  });

  it('congestion on the failover too: congestion, no third attempt', async () => {
    const services = new FakeServices();
    services.setNumber({ failoverGateway: 'backup-gw' });
    const { call, outcome } = await run(
      { digits: [PIN, DEST], bridges: [failedBridge('SWITCH_CONGESTION'), failedBridge('GATEWAY_DOWN')] },
      services,
    );
    expect(call.count('bridge')).toBe(2);
    expect(call.audio().slice(-2)).toEqual(['congestion', 'goodbye']);
    expect(outcome.calls).toHaveLength(2);
    expect(settles(services)).toHaveLength(2);
  });

  it('another call loop up to maxCallsPerSession', async () => {
    const services = new FakeServices();
    services.setNumber({ maxCallsPerSession: 2 });
    const { call, outcome } = await run(
      { digits: [PIN, DEST, '1', '15551112222'], bridges: [answeredBridge(60), failedBridge('USER_BUSY')] },
      services,
    );
    expect(call.audio().filter((a) => a === 'pagd:another_call')).toHaveLength(1);
    expect(call.audio().slice(-2)).toEqual(['busy', 'goodbye']);
    expect(outcome.calls.map((c) => c.number)).toEqual([DEST, '15551112222']);
    expect(outcome.ended).toBe('completed');
    expect(settles(services)).toHaveLength(2);
    // The first reservation starts from what the card could spend when authorized; the second from the live store
    // (the first call's debit made that figure stale).
    expect(services.reserveHints.map((h) => h?.available)).toEqual([parseMoney('4.37'), undefined]);
  });

  it('another call declined (timeout) ends with goodbye', async () => {
    const services = new FakeServices();
    services.setNumber({ maxCallsPerSession: 5 });
    const { call, outcome } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(60)] }, services);
    expect(call.audio().slice(-2)).toEqual(['pagd:another_call', 'goodbye']);
    expect(outcome.calls).toHaveLength(1);
  });
});

describe('call flow: caller hangs up', () => {
  it('during the PIN: ends at once, nothing to settle', async () => {
    const { call, services, outcome, ms } = await run({ hangupAt: { cmd: 'playAndGetDigits' } });
    expect(outcome).toMatchObject({ ended: 'caller_hangup', callerHungUp: true });
    expect(services.callsOf('authorizeByPin')).toEqual([]);
    expect(services.callsOf('settle')).toEqual([]);
    expect(call.commands.at(-1)!.cmd).toBe('hangup');
    expect(ms).toBeLessThan(1000);
  });

  it('aborts the command in flight when it leaves the state', async () => {
    const { call } = await run({ hangupAt: { cmd: 'playAndGetDigits' } });
    const pagd = call.commands.find((c) => c.cmd === 'playAndGetDigits')!;
    expect(pagd.signal?.aborted).toBe(true);
  });

  it('while the reservation is being made: the reservation is still settled once', async () => {
    let call: FakeCall | undefined;
    class HangupDuringReserve extends FakeServices {
      override async reserve(...args: Parameters<FakeServices['reserve']>) {
        call!.callerHangsUp();
        await new Promise((r) => setTimeout(r, 5));
        return super.reserve(...args);
      }
    }
    const services = new HangupDuringReserve();
    call = new FakeCall({ digits: [PIN, DEST], bridges: [answeredBridge(1)] });
    const outcome = await runCallFlow(call, services, { soundsPrefix: SOUNDS }, pino({ level: 'silent' }));
    expect(call.count('bridge')).toBe(0);
    expect(settles(services)).toHaveLength(1);
    expect(services.held.size).toBe(0);
    expect(outcome.ended).toBe('caller_hangup');
  });

  it('during the destination: nothing reserved, nothing settled', async () => {
    const { services, outcome } = await run({ digits: [PIN], hangupAt: { cmd: 'playAndGetDigits', nth: 2 } });
    expect(outcome.ended).toBe('caller_hangup');
    expect(services.callsOf('reserve')).toEqual([]);
    expect(services.callsOf('settle')).toEqual([]);
  });

  it('after the reservation, before the bridge: released exactly once', async () => {
    // The caller hangs up while the reservation is being made: nothing runs on the call between it and the bridge.
    const services = new FakeServices();
    let call!: FakeCall;
    services.onReserve = () => call.callerHangsUp();
    const running = run({ digits: [PIN, DEST] }, services, {}, (c) => (call = c));
    const { outcome } = await running;
    expect(call.count('bridge')).toBe(0);
    expect(settles(services)).toHaveLength(1);
    // Never dialled: settled as not bridged, so the hold is released now, not at its deadline.
    expect(settles(services)[0]![1]).toMatchObject({ answered: false, disposition: 'NOT_BRIDGED', carrierCdr: undefined });
    expect(outcome.calls[0]).toMatchObject({ outcome: 'not_bridged', settle: { billedSeconds: 0 } });
    expect(services.held.size).toBe(0);
  });

  it('during the duration announcement (queued ahead of the bridge): the bridge never runs, the hold is released', async () => {
    const { call, services, outcome } = await run({ digits: [PIN, DEST], hangupAt: { cmd: 'playback', nth: 2 } });
    expect(call.audio()).toContain('call_can_last');
    // The announcement and the bridge went out together (one effect, one write).
    const announced = call.commands.findIndex((c) => c.args[0] === 'ccard/call_can_last.wav');
    const bridged = call.commands.findIndex((c) => c.cmd === 'bridge');
    expect(bridged).toBeGreaterThan(announced);
    expect(call.commands[bridged]!.signal).toBe(call.commands[announced]!.signal);
    expect(services.callsOf('reserve')).toHaveLength(1);
    expect(settles(services)).toHaveLength(1);
    expect(settles(services)[0]![1]).toMatchObject({ answered: false, carrierCdr: undefined, callerHungUp: true });
    expect(services.held.size).toBe(0);
    expect(outcome).toMatchObject({ ended: 'caller_hangup', callerHungUp: true });
  });

  it('during the bridge: settled exactly once with the bridge result (carrier CDR)', async () => {
    const { call, services, outcome, ms } = await run({
      digits: [PIN, DEST],
      bridges: [answeredBridge(42)],
      hangupAt: { cmd: 'bridge' },
    });
    const s = settles(services);
    expect(s).toHaveLength(1);
    expect(s[0]![1]).toEqual({ ...answeredBridge(42), callerHungUp: true });
    expect(outcome.calls[0]!.settle!.billedSeconds).toBe(42);
    expect(call.audio()).not.toContain('remaining_balance');
    expect(outcome).toMatchObject({ ended: 'caller_hangup', callerHungUp: true });
    expect(ms).toBeLessThan(1000);
  });

  it('during the bridge, the bridge rejecting ESL_HANGUP: settled once without a result', async () => {
    const { services, outcome } = await run({
      digits: [PIN, DEST],
      bridges: [answeredBridge(42)],
      hangupAt: { cmd: 'bridge', bridge: 'reject' },
    });
    expect(settles(services)).toHaveLength(1);
    expect(settles(services)[0]![1]).toBeUndefined();
    expect(outcome.ended).toBe('caller_hangup');
  });

  it('during the bridge, the bridge never ending: settled once after the grace time', async () => {
    const { services, outcome, ms } = await run(
      { digits: [PIN, DEST], bridges: [answeredBridge(42)], hangupAt: { cmd: 'bridge', bridge: 'never' } },
      new FakeServices(),
      { bridgeHangupGraceMs: 30 },
    );
    expect(settles(services)).toHaveLength(1);
    expect(settles(services)[0]![1]).toBeUndefined();
    expect(outcome.ended).toBe('caller_hangup');
    expect(ms).toBeLessThan(1000);
  });

  it('during the remaining balance announcement: the call is already settled once', async () => {
    const { services, outcome } = await run({
      digits: [PIN, DEST],
      bridges: [answeredBridge(42)],
      hangupAt: { cmd: 'playback', nth: 4 },
    });
    expect(settles(services)).toHaveLength(1);
    // The remaining balance goes out with the goodbye (one write): the call had completed.
    expect(outcome).toMatchObject({ ended: 'completed', callerHungUp: true });
  });
});

describe('call flow: effects can be swapped by name', () => {
  it('a provided reserve effect replaces the service', async () => {
    const reserve = async (): Promise<ReserveResult> => ({ ok: false, reason: 'no_rate' });
    const call = new FakeCall({ digits: [PIN, DEST] });
    const services = new FakeServices();
    const outcome = await runCallFlow(call, services, { soundsPrefix: SOUNDS }, pino({ level: 'silent' }), { effects: { reserve } });
    expect(services.callsOf('reserve')).toEqual([]);
    expect(call.audio().filter((a) => a === 'no_rate')).toHaveLength(1);
    expect(outcome.ended).toBe('destination_tries_exhausted');
  });
});

describe('call flow: failing closed', () => {
  it('a prepared answer that FreeSWITCH refuses fails the first prompt: the call ends as an error', async () => {
    const { call, outcome } = await run({ digits: [PIN], failAt: { cmd: 'answer', error: new Error('-ERR answer refused') } });
    expect(call.digitRequests()).toHaveLength(1);
    expect(call.count('bridge')).toBe(0);
    expect(outcome).toMatchObject({ ended: 'error', error: '-ERR answer refused' });
  });

  it('a DID lookup that fails before the answer: answered with the apology, then hung up', async () => {
    const services = new FakeServices();
    services.failing.set('accessNumber', new ServiceUnavailableError('postgres down'));
    const { call } = await run({}, services);
    expect(call.commands.map((c) => c.cmd)).toEqual(['answer', 'set', 'playback', 'hangup']);
  });

  it('ServiceUnavailableError at the DID lookup: service_unavailable, hang up', async () => {
    const services = new FakeServices();
    services.failing.set('accessNumber', new ServiceUnavailableError('postgres down'));
    const { call, outcome } = await run({}, services);
    expect(call.audio()).toEqual(['service_unavailable']);
    expect(call.count('hangup')).toBe(1);
    expect(outcome).toMatchObject({ ended: 'service_unavailable', error: 'postgres down' });
  });

  it('ServiceUnavailableError at the reservation: service_unavailable', async () => {
    const services = new FakeServices();
    services.failing.set('reserve', new ServiceUnavailableError('redis down'));
    const { call, outcome } = await run({ digits: [PIN, DEST] }, services);
    expect(call.audio().slice(-1)).toEqual(['service_unavailable']);
    expect(outcome.ended).toBe('service_unavailable');
  });

  it('ServiceUnavailableError when settling after the call: settle tried once, service_unavailable', async () => {
    const services = new FakeServices();
    services.failing.set('settle', new ServiceUnavailableError('postgres down'));
    const { call, outcome } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(9)] }, services);
    expect(services.callsOf('settle')).toHaveLength(1);
    expect(call.audio().slice(-1)).toEqual(['service_unavailable']);
    expect(outcome.calls[0]!.settleError).toBe('postgres down');
    expect(outcome.ended).toBe('service_unavailable');
  });

  it('unexpected bridge error: logged, released once, hung up', async () => {
    const { call, services, outcome, lines } = await run({
      digits: [PIN, DEST],
      failAt: { cmd: 'bridge', error: new EslError('ESL_TIMEOUT', 'no reply') },
    });
    expect(settles(services)).toHaveLength(1);
    expect(settles(services)[0]![1]).toBeUndefined();
    expect(call.commands.at(-1)!.cmd).toBe('hangup');
    expect(outcome).toMatchObject({ ended: 'error', error: 'no reply' });
    expect(lines.some((l) => l.level === 50 && l.msg === 'call flow error')).toBe(true);
  });

  it.each(['carrier,origination_caller_id_number=1', 'carrier/15559990000', "carrier'", 'car rier'])(
    'gateway %j is refused: no bridge, reservation released, hung up',
    async (gateway) => {
      const services = new FakeServices();
      services.setNumber({ gateway });
      const { call, outcome } = await run({ digits: [PIN, DEST], bridges: [answeredBridge(1)] }, services);
      expect(call.count('bridge')).toBe(0);
      expect(settles(services)).toHaveLength(1);
      // Never dialled: settled as not bridged, so the hold is released now, not at its deadline.
      expect(settles(services)[0]![1]).toMatchObject({ answered: false, disposition: 'NOT_BRIDGED', carrierCdr: undefined });
      expect(call.count('hangup')).toBe(1);
      expect(outcome.ended).toBe('error');
      expect(outcome.error).toMatch(/gateway/);
    },
  );

  it('refuses a sounds prefix that could smuggle arguments', async () => {
    const call = new FakeCall();
    await expect(
      runCallFlow(call, new FakeServices(), { soundsPrefix: '/tmp/x both,y' }, pino({ level: 'silent' })),
    ).rejects.toThrow(/soundsPrefix/);
  });
});
