import { describe, expect, it } from 'vitest';
import { FreeSwitchSim, carrier, parseDialString } from '../../src/sim/index.ts';
import { replayClient, view } from './recorded.ts';

describe('simulator knobs', () => {
  it('duplicates an event and injects raw garbage on request', async () => {
    const out = await replayClient('b_caller_hangup', async (port) => {
      await new FreeSwitchSim({ port }).call({
        digits: ['1555'],
        hangupAt: { app: 'play_and_get_digits', afterKeys: 4 },
        inject: [{ at: { afterEvent: 'CHANNEL_HANGUP' }, duplicate: true }],
      });
    });
    expect(out.frames.map(view).filter((v) => v.name === 'CHANNEL_HANGUP')).toHaveLength(2);
  });

  it('scripted carrier: answer after 2 s, talk 7 s, billsec from whole epoch seconds', async () => {
    let billsec = -1;
    await replayClient('a_success', async (port) => {
      const r = await new FreeSwitchSim({ port, startUs: 1_795_387_130_900_000 }).call({
        digits: ['15557654321#'],
        carrier: () => carrier.answer(2000, 7000),
      });
      billsec = r.bLegs[0]!.billsec;
      expect(r.bLegs[0]!.billmsec).toBe(7000);
      expect(billsec).toBe(r.bLegs[0]!.endEpoch - r.bLegs[0]!.answerEpoch);
    });
    expect(billsec).toBeGreaterThanOrEqual(7);
  });

  it('parses dial-string variables with quotes', () => {
    expect(parseDialString("{a=1,execute_on_answer='sched_hangup +5 allotted_timeout',b=x}sofia/gateway/carrier/15551234567")).toEqual({
      vars: [
        ['a', '1'],
        ['execute_on_answer', 'sched_hangup +5 allotted_timeout'],
        ['b', 'x'],
      ],
      endpoint: 'sofia/gateway/carrier/15551234567',
      number: '15551234567',
    });
  });
});
