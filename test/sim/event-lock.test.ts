/**
 * event-lock (see sendmsgExecute): a real FreeSWITCH parses a channel's queued commands inside the media loop of the
 * app that runs, so two executes queued at once run nested, out of order, unless the running one holds the event
 * lock. The simulator runs them in order either way and reports what FreeSWITCH would have nested.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendmsgHangup } from '../../src/esl/commands.ts';
import { EslConnection } from '../../src/esl/connection.ts';
import { FreeSwitchSim } from '../../src/sim/index.ts';
import { silent } from '../esl/helpers.ts';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/**
 * A client that queues `apps` in one write (each with or without event-lock), then hangs up: once they completed,
 * or (hangupWithThem) in that same write.
 */
async function queueing(apps: Array<[string, string, boolean]>, hangupWithThem = false) {
  const server = net.createServer((socket) => {
    const conn = new EslConnection(socket, { logger: silent });
    void (async () => {
      await Promise.all([conn.command('connect'), conn.command('myevents json'), conn.command('linger')]);
      const ran = Promise.allSettled(apps.map(([app, arg, eventLock]) => conn.execute(app, arg, { timeoutMs: 5_000, eventLock })));
      if (!hangupWithThem) await ran;
      await conn.sendmsg(sendmsgHangup('NORMAL_CLEARING')).catch(() => undefined);
      await ran;
      setTimeout(() => socket.destroy(), 50);
    })().catch(() => socket.destroy());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sim = new FreeSwitchSim({ port: (server.address() as net.AddressInfo).port, timeScale: 0 });
  return sim.call({ did: '15550001111', callerId: '15551230000' });
}

describe('simulator: commands queued behind a running app', () => {
  it('without event-lock, a playback queued behind a playback would run nested: reported', async () => {
    const result = await queueing([
      ['playback', 'a.wav', false],
      ['playback', 'b.wav', false],
    ]);
    expect(result.nestedExecutes).toEqual([{ outer: 'playback', inner: 'playback' }]);
  });

  it('with event-lock on the running one, they run in order: nothing reported', async () => {
    const result = await queueing([
      ['playback', 'a.wav', true],
      ['say', 'en NUMBER PRONOUNCED 5', true],
      ['play_and_get_digits', '1 1 1 100 # a.wav b.wav v \\d 100', true],
    ]);
    expect(result.nestedExecutes).toEqual([]);
    expect(result.apps.map((a) => a.name)).toEqual(['playback', 'say', 'play_and_get_digits']);
  });

  it('a hangup sent with a prompt: after it when the prompt holds the lock, at once (cutting it) when not', async () => {
    const order = (r: Awaited<ReturnType<typeof queueing>>) =>
      r.rx
        .map((f) => f.toString('utf8'))
        .map((f) => (f.includes('"Event-Name":"CHANNEL_HANGUP"') ? 'hangup' : f.includes('"Event-Name":"CHANNEL_EXECUTE_COMPLETE"') && f.includes('"Application":"playback"') ? 'played' : ''))
        .filter(Boolean);
    const locked = await queueing([['playback', 'goodbye.wav', true]], true);
    expect(order(locked)).toEqual(['played', 'hangup']);
    expect(locked.hangupBy).toBe('client');
    const unlocked = await queueing([['playback', 'goodbye.wav', false]], true);
    expect(order(unlocked)).toEqual(['hangup', 'played']); // observation 6: CHANNEL_HANGUP, then the cut app's completion
  });

  it('answer and multiset parse nothing: what follows them never nests, lock or not', async () => {
    const result = await queueing([
      ['answer', '', false],
      ['multiset', 'a=1 b=2', false],
      ['playback', 'a.wav', true],
    ]);
    expect(result.nestedExecutes).toEqual([]);
  });
});
