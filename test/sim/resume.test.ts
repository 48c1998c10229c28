/**
 * The simulator when the application's socket dies mid-call, as README-resume.md observed on FreeSWITCH 1.11.3:
 * without socket_resume the channel is hung up (NORMAL_TEMPORARY_FAILURE), a bridge runs on until one side hangs
 * up; with socket_resume and a second `socket` action the same channel (same uuid, answered, its variables)
 * connects again and the new application runs its flow.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createEslServer, type EslServer } from '../../src/esl/server.ts';
import type { CallSession } from '../../src/esl/call-session.ts';
import { FreeSwitchSim, carrier, type SimOptions } from '../../src/sim/index.ts';

const silent = pino({ level: 'silent' });
let server: EslServer | undefined;
afterEach(async () => {
  await server?.close(1000);
  server = undefined;
});

const PAGD = '4 12 1 5000 # silence_stream://10 silence_stream://10 ivr_destination \\d+ 3000';

/** Each connection runs `handlers[n]` (the nth socket for the call). */
async function serve(
  handlers: Array<(s: CallSession, data: Map<string, string | undefined>) => Promise<void>>,
  sim: Partial<SimOptions> = {},
  resume = false,
) {
  let n = 0;
  const seen: Array<Map<string, string | undefined>> = [];
  server = createEslServer({
    port: 0,
    logger: silent,
    resume,
    keepHeaders: ['Answer-State', 'variable_ccard_marker', 'variable_socket_resume'],
    onCall: async (session) => {
      const data = new Map<string, string | undefined>();
      for (const k of ['Unique-ID', 'Answer-State', 'variable_ccard_marker', 'variable_socket_resume']) data.set(k, session.channelData.get(k));
      seen.push(data);
      await handlers[n++]!(session, data);
    },
  });
  const { port } = await server.listen();
  const result = await new FreeSwitchSim({ port, timeScale: 0.02, ...sim }).call({ digits: ['15557654321#', '15557654321#'], carrier: () => carrier.answer(100, 3000) });
  return { result, seen };
}

const dieDuringPagd = async (s: CallSession) => {
  await s.setVariables([['ccard_marker', 'abc'], ['hangup_after_bridge', 'false']]);
  await s.answer();
  const pagd = s.connection.execute('play_and_get_digits', PAGD, { timeoutMs: 10_000 }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 5));
  s.connection.destroy(); // the process dies
  await pagd;
};

describe('simulator: the application socket dies mid-call (README-resume.md)', () => {
  it('without socket_resume: the caller is hung up with NORMAL_TEMPORARY_FAILURE', async () => {
    const { result, seen } = await serve([dieDuringPagd]);
    expect(seen).toHaveLength(1);
    expect(result.hangupCause).toBe('NORMAL_TEMPORARY_FAILURE');
    expect(result.end).toBe('dropped');
    expect(result.resumes ?? 0).toBe(0);
  });

  it('a bridged call is not cut: the bridge runs on to its end, then the caller leg is hung up', async () => {
    const { result } = await serve([
      async (s) => {
        await s.setVariables([['hangup_after_bridge', 'false'], ['continue_on_fail', 'true']]);
        await s.answer();
        const off = s.connection.on('event', (e) => {
          if (e.name === 'CHANNEL_BRIDGE') s.connection.destroy();
        });
        await s.connection
          .execute('bridge', "{execute_on_answer_1='sched_hangup +60 allotted_timeout'}sofia/gateway/carrier/15557654321", { timeoutMs: 10_000, eventLock: false })
          .catch(() => undefined);
        off();
      },
    ]);
    expect(result.bLegs[0]!.answered).toBe(true);
    expect(result.bLegs[0]!.hangupCause).toBe('NORMAL_CLEARING');
    expect(result.bLegs[0]!.billsec).toBe(3);
    expect(result.hangupCause).toBe('NORMAL_TEMPORARY_FAILURE');
  });

  it('with socket_resume and a second socket action: the same answered channel connects again with its variables', async () => {
    let secondRan = false;
    const { result, seen } = await serve(
      [
        dieDuringPagd,
        async (s) => {
          secondRan = true;
          await s.answer(); // a no-op on an answered channel
          await s.playAndGetDigits({
            min: 4, max: 12, tries: 1, timeoutMs: 5000, terminators: '#', prompt: 'silence_stream://10',
            invalidPrompt: 'silence_stream://10', variable: 'ivr_destination', regex: '\\d+', digitTimeoutMs: 3000,
          });
          await s.hangup();
        },
      ],
      { dialplan: { sockets: 2, socketResume: true } },
    );
    expect(secondRan).toBe(true);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.get('Unique-ID')).toBe(seen[0]!.get('Unique-ID'));
    expect(seen[1]!.get('Answer-State')).toBe('answered');
    // Set through the first socket, on the channel: the second connect reply carries it.
    expect(seen[1]!.get('variable_ccard_marker')).toBe('abc');
    expect(result.resumes).toBe(1);
    expect(result.hangupCause).toBe('NORMAL_CLEARING');
    expect(result.hangupBy).toBe('client');
    expect(result.apps.filter((a) => a.name === 'answer')).toHaveLength(2);
  });

  it('the `resume` command (ccard sends it in its handshake) sets socket_resume=true: enough with a second socket action', async () => {
    const { result, seen } = await serve(
      [
        async (s) => {
          await dieDuringPagd(s);
        },
        async (s) => {
          await s.hangup();
        },
      ],
      { dialplan: { sockets: 2 } },
      true,
    );
    expect(result.commands.slice(0, 5)).toContain('resume');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.get('variable_socket_resume')).toBe('true');
    expect(result.resumes).toBe(1);
  });
});
