/**
 * The slice keeper (src/flow/slices.ts) on its own: when it extends, what it sends, and that it stops: a reply
 * `-ERR No such channel!` (the call is gone), a card that cannot fund more, stop() with a timer pending.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { CapRearm, Call, CarrierAnswer } from '../../src/flow/call.ts';
import type { CallServices, ExtendResult, Reservation } from '../../src/flow/services.ts';
import { extensionLeadSec, startSliceKeeper } from '../../src/flow/slices.ts';

const log = pino({ level: 'silent' });
const CARRIER = '0b0b0b0b-1111-4222-8333-444455556666';
const reservation: Reservation = { callId: CARRIER, cardId: 'c1', maxSeconds: 60, reserved: 100n, sliceSeconds: 60, announceSeconds: 600, ceilingSeconds: 3600 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** FreeSWITCH's clock: `talked` seconds after the answer, at x.5 s (answer on a whole second). */
function answerAt(talked: number): CarrierAnswer {
  const answeredUs = 1_800_000_000 * 1e6;
  return { carrierUuid: CARRIER, answeredUs, switchNowUs: () => answeredUs + talked * 1e6 + 500_000 };
}

function harness(extendReplies: ExtendResult[], rearmReply: 'ok' | 'gone' | Error = 'ok') {
  const extends_: Array<{ want: number; talked: number }> = [];
  const rearms: CapRearm[] = [];
  const services = {
    extend: async (_r: Reservation, want: number, talked: number) => {
      extends_.push({ want, talked });
      return extendReplies.shift() ?? { ok: false, reason: 'insufficient' };
    },
  } as unknown as CallServices;
  const call = {
    hungUp: false,
    rearmCap: async (r: CapRearm) => {
      rearms.push(r);
      if (rearmReply instanceof Error) throw rearmReply;
      return rearmReply;
    },
  } as unknown as Call;
  return { services, call, extends_, rearms };
}

describe('slice keeper', () => {
  it('extends before the warning and the cap, re-arming both to land on answer second + new cap', async () => {
    const h = harness([{ ok: true, maxSeconds: 120 }]);
    const k = startSliceKeeper({ call: h.call, services: h.services, reservation, log, warning: { file: '/s/w.wav', secondsBeforeEnd: 20, minLeadSec: 5 } });
    // 60 s cap, warning at 40 s, lead 10 s: due at 30 s; the clock says 45 s already, so it is tried at once.
    k.onAnswered(answerAt(45));
    await sleep(50);
    expect(h.extends_).toEqual([{ want: 120, talked: 45 }]);
    // +N from second 45: 120 - 45 = 75; the warning 20 s before it.
    expect(h.rearms).toEqual([{ carrierUuid: CARRIER, inSeconds: 75, warning: { file: '/s/w.wav', inSeconds: 55 } }]);
    expect(k.capSeconds).toBe(120);
    expect(k.extensions).toBe(1);
    k.stop();
    expect(k.ended).toBe('stopped');
  });

  it('-ERR No such channel! (the carrier leg is gone): stops, the cap is not taken as grown', async () => {
    const h = harness([{ ok: true, maxSeconds: 120 }, { ok: true, maxSeconds: 180 }], 'gone');
    const k = startSliceKeeper({ call: h.call, services: h.services, reservation, log });
    k.onAnswered(answerAt(58));
    await sleep(50);
    expect(h.rearms).toHaveLength(1);
    expect(k.ended).toBe('gone');
    expect(k.capSeconds).toBe(60);
    await sleep(50);
    expect(h.extends_).toHaveLength(1);
  });

  it('a card that cannot fund a second more: nothing is sent, the armed cap (and its warning) stays', async () => {
    const h = harness([{ ok: false, reason: 'insufficient' }]);
    const k = startSliceKeeper({ call: h.call, services: h.services, reservation, log });
    k.onAnswered(answerAt(55));
    await sleep(50);
    expect(h.extends_).toHaveLength(1);
    expect(h.rearms).toHaveLength(0);
    expect(k.ended).toBe('unfunded');
  });

  it('an ESL failure while re-arming: stops (the old cap holds), no retry', async () => {
    const h = harness([{ ok: true, maxSeconds: 120 }], new Error('ESL_TIMEOUT'));
    const k = startSliceKeeper({ call: h.call, services: h.services, reservation, log });
    k.onAnswered(answerAt(55));
    await sleep(50);
    expect(k.ended).toBe('error');
    expect(k.capSeconds).toBe(60);
  });

  it('stop() kills the pending timer: nothing runs after the call ended', async () => {
    const h = harness([{ ok: true, maxSeconds: 120 }]);
    const short: Reservation = { ...reservation, maxSeconds: 2, sliceSeconds: 2 };
    const k = startSliceKeeper({ call: h.call, services: h.services, reservation: short, log });
    // Cap 2 s, lead 1 s: due at 1.5 s of FreeSWITCH's clock, ~1 s from now.
    k.onAnswered(answerAt(0));
    k.stop();
    await sleep(1300);
    expect(h.extends_).toHaveLength(0);
    expect(k.ended).toBe('stopped');
  });

  it('without slices (or without the commands) it does nothing', () => {
    const h = harness([]);
    const k = startSliceKeeper({ call: h.call, services: h.services, reservation: { ...reservation, sliceSeconds: undefined }, log });
    k.onAnswered(answerAt(59));
    expect(k.ended).toBe('stopped');
    expect(extensionLeadSec(180)).toBe(10);
    expect(extensionLeadSec(6)).toBe(2);
  });
});
