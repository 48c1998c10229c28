import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createEslServer, type CallSession } from '../../src/esl/index.ts';
import { FreeSwitchSim } from '../../src/sim/index.ts';

/** A one-app call through the real ESL server with the given unsubscribe list; returns what FreeSWITCH received. */
async function callWith(unsubscribe: string[]) {
  const seen: string[] = [];
  const server = createEslServer({
    port: 0,
    logger: pino({ level: 'silent' }),
    unsubscribe,
    lingerWaitMs: 1000,
    onCall: async (call: CallSession) => {
      call.connection.on('event', (e) => seen.push(e.name));
      await call.answer();
      await call.playAndGetDigits({
        min: 4, max: 4, tries: 1, timeoutMs: 5000, terminators: '#', prompt: 'silence_stream://10',
        invalidPrompt: 'silence_stream://10', variable: 'pin', regex: '^\\d{4}$', digitTimeoutMs: 3000,
      });
    },
  });
  const { port } = await server.listen();
  try {
    const result = await new FreeSwitchSim({ port }).call({ digits: ['1234#'] });
    return { result, seen };
  } finally {
    await server.close(1000);
  }
}

describe('nixevent (FreeSWITCH clears event kinds from the listener)', () => {
  it('unsubscribed kinds are not sent; the rest of the call is unchanged', async () => {
    const full = await callWith([]);
    expect(full.seen).toContain('DTMF');
    expect(full.seen).toContain('CHANNEL_EXECUTE');
    const quiet = await callWith(['DTMF', 'CHANNEL_EXECUTE']);
    expect(quiet.result.commands).toContain('nixevent DTMF CHANNEL_EXECUTE');
    expect(quiet.seen).not.toContain('DTMF');
    expect(quiet.seen).not.toContain('CHANNEL_EXECUTE');
    expect(quiet.seen.filter((n) => n === 'CHANNEL_EXECUTE_COMPLETE').length).toBe(full.seen.filter((n) => n === 'CHANNEL_EXECUTE_COMPLETE').length);
    expect(quiet.result.digits[0]).toMatchObject({ value: '1234', readResult: 'success' });
  });

  it('a refused nixevent (-ERR no keywords supplied) is not fatal: the call goes on with every event', async () => {
    const r = await callWith(['not-an-event']);
    expect(r.result.commands).toContain('nixevent not-an-event');
    expect(r.seen).toContain('DTMF');
    expect(r.result.digits[0]).toMatchObject({ value: '1234' });
  });
});
