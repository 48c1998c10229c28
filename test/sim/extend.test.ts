/**
 * The simulator re-arms a carrier leg's cap exactly as README-extend.md observed on FreeSWITCH 1.11.3: replies of
 * sched_del / sched_hangup / sched_broadcast, the new cap counted from when the API ran (whole-second tick), the old
 * cap gone, the warning broadcast played, and `-ERR No such channel!` once the leg is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createEslServer, type EslServer } from '../../src/esl/server.ts';
import type { EslEvent } from '../../src/esl/parser.ts';
import { FreeSwitchSim, carrier } from '../../src/sim/index.ts';

const silent = pino({ level: 'silent' });
const SCALE = 0.05; // real ms per virtual ms
const virtual = (ms: number) => new Promise((r) => setTimeout(r, ms * SCALE));

let server: EslServer | undefined;
afterEach(async () => {
  await server?.close(1000);
  server = undefined;
});

async function run(
  talkMs: number,
  steer: (api: (cmd: string) => Promise<string>, bUuid: string) => Promise<void>,
): Promise<{ replies: string[]; result: Awaited<ReturnType<FreeSwitchSim['call']>> }> {
  const replies: string[] = [];
  let steering: Promise<void> = Promise.resolve();
  server = createEslServer({
    port: 0,
    logger: silent,
    eventFormat: 'json',
    onCall: async (session) => {
      const c = session.connection;
      const bUuid = '0b0b0b0b-1111-4222-8333-444455556666';
      const off = c.on('event', (e: EslEvent) => {
        if (e.name !== 'CHANNEL_BRIDGE') return;
        steering = steer(async (cmd) => {
          const r = await c.api(cmd);
          replies.push(r);
          return r;
        }, bUuid);
      });
      await c.execute('answer', undefined, { timeoutMs: 5000 });
      await c.execute(
        'bridge',
        `{origination_uuid=${bUuid},execute_on_answer_1='sched_hangup +12 allotted_timeout'}sofia/gateway/carrier/15559990000`,
        { timeoutMs: 60_000, eventLock: false },
      );
      off();
      await steering;
      // The leg is gone now.
      replies.push(await c.api(`sched_hangup +20 ${bUuid} allotted_timeout`));
    },
  });
  const { port } = await server.listen();
  const result = await new FreeSwitchSim({ port, timeScale: SCALE }).call({ carrier: () => carrier.answer(100, talkMs) });
  return { replies, result };
}

describe('simulator: extending the cap of a running call (README-extend.md)', () => {
  it('sched_del + sched_hangup + sched_broadcast 5 s after the bridge: ends 25 s after answer, ALLOTTED_TIMEOUT', async () => {
    const { replies, result } = await run(60_000, async (api, b) => {
      await virtual(5000);
      // One write, as ccard sends them: the call is never without a cap in between.
      const sent = Promise.all([api(`sched_del ${b}`), api(`sched_del ${b}`), api(`sched_hangup +20 ${b} allotted_timeout`), api(`sched_broadcast +15 ${b} /tmp/warn.wav both`)]);
      await sent;
    });
    expect(replies).toEqual(['+OK Deleted: 1\n', '+OK Deleted: 0\n', '+OK\n', '+OK Message scheduled\n', '-ERR No such channel!\n']);
    const leg = result.bLegs[0]!;
    expect(leg.hangupCause).toBe('ALLOTTED_TIMEOUT');
    // +20 from when the API ran (~5 s after answer; timers jitter under load), on a whole-second tick.
    expect(leg.billsec).toBeGreaterThanOrEqual(25);
    expect(leg.billsec).toBeLessThanOrEqual(27);
    expect(leg.billsec).toBe(leg.endEpoch - leg.answerEpoch);
    // The warning played during the bridge, before the cap.
    const warn = result.apps.find((a) => a.broadcast && a.arg === '/tmp/warn.wav');
    expect(warn).toBeDefined();
    expect(warn!.startUs).toBeLessThan(leg.endUs);
  });

  it('the original cap fires when nothing re-arms it, and sched_del clears the cap and the warning together', async () => {
    const kept = await run(60_000, async () => {});
    expect(kept.result.bLegs[0]!.billsec).toBe(12);
    expect(kept.result.bLegs[0]!.hangupCause).toBe('ALLOTTED_TIMEOUT');

    const cleared = await run(20_000, async (api, b) => {
      await virtual(2000);
      await api(`sched_broadcast +4 ${b} /tmp/w.wav both`);
      await api(`sched_del ${b}`);
    });
    // Cap and broadcast both deleted: the carrier ends the call (20 s) and nothing was broadcast.
    expect(cleared.replies.slice(0, 2)).toEqual(['+OK Message scheduled\n', '+OK Deleted: 2\n']);
    expect(cleared.result.bLegs[0]!.hangupCause).toBe('NORMAL_CLEARING');
    expect(cleared.result.bLegs[0]!.billsec).toBe(20);
    expect(cleared.result.apps.some((a) => a.broadcast)).toBe(false);
  });

  it('an unknown uuid: sched_hangup says -ERR No such channel!, sched_del deletes nothing', async () => {
    const { replies } = await run(3000, async (api) => {
      await api('sched_hangup +5 11111111-2222-4333-8444-555566667777 allotted_timeout');
      await api('sched_del 11111111-2222-4333-8444-555566667777');
    });
    expect(replies).toEqual(['-ERR No such channel!\n', '+OK Deleted: 0\n', '-ERR No such channel!\n']);
  });

  it('CallSession.rearmCap: ok while the leg lives (sched_del, sched_hangup, sched_broadcast in order), gone once it ended', async () => {
    const outcomes: string[] = [];
    const b = '0c0c0c0c-1111-4222-8333-444455556666';
    server = createEslServer({
      port: 0,
      logger: silent,
      onCall: async (session) => {
        let rearming: Promise<void> | undefined;
        const off = session.connection.on('event', (e) => {
          if (e.name === 'CHANNEL_BRIDGE')
            rearming = session.rearmCap({ carrierUuid: b, inSeconds: 3, warning: { file: '/tmp/w.wav', inSeconds: 1 } }).then((r) => void outcomes.push(r));
        });
        await session.connection.execute('bridge', `{origination_uuid=${b},execute_on_answer_1='sched_hangup +30 allotted_timeout'}sofia/gateway/carrier/15559990000`, {
          timeoutMs: 60_000,
          eventLock: false,
        });
        off();
        await rearming;
        outcomes.push(await session.rearmCap({ carrierUuid: b, inSeconds: 20 }));
      },
    });
    const { port } = await server.listen();
    const r = await new FreeSwitchSim({ port, timeScale: SCALE }).call({ carrier: () => carrier.answer(100, 60_000) });
    expect(outcomes).toEqual(['ok', 'gone']);
    const api = r.commands.filter((c) => c.startsWith('api sched_'));
    expect(api.slice(0, 3)).toEqual([`api sched_del ${b}`, `api sched_hangup +3 ${b} allotted_timeout`, `api sched_broadcast +1 ${b} /tmp/w.wav both`]);
    expect(r.bLegs[0]!.hangupCause).toBe('ALLOTTED_TIMEOUT');
    expect(r.bLegs[0]!.billsec).toBeLessThanOrEqual(5);
    expect(r.apps.some((a) => a.broadcast && a.arg === '/tmp/w.wav')).toBe(true);
  });
});
