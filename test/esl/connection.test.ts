import { afterEach, describe, expect, it } from 'vitest';
import { DEFER_MAX_MS, EslConnection } from '../../src/esl/connection.ts';
import { isEslError, type EslErrorCode } from '../../src/esl/errors.ts';
import { commandReader, eventUuidOf, isReply, rx, silent, socketPair, splitFrames } from './helpers.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup(commandTimeoutMs = 2_000) {
  const pair = await socketPair();
  cleanups.push(pair.close);
  const conn = new EslConnection(pair.server, { logger: silent, commandTimeoutMs });
  const reader = commandReader(pair.peer);
  return { conn, peer: pair.peer, reader };
}

const reply = (text: string): string => `Content-Type: command/reply\nReply-Text: ${text}\n\n`;
const plainEvent = (lines: Record<string, string>): string => {
  const body = Object.entries(lines).map(([k, v]) => `${k}: ${encodeURIComponent(v)}`).join('\n') + '\n\n';
  return `Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`;
};

async function rejectsWith(p: Promise<unknown>, code: EslErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEslError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

/** The writes the connection's socket makes, as the number of chunks in each (a writev of 2 is one syscall). */
function countWrites(conn: EslConnection): number[] {
  const socket = conn.socket as unknown as {
    _writev: (chunks: unknown[], cb: unknown) => unknown;
    _write: (chunk: unknown, enc: unknown, cb: unknown) => unknown;
  };
  const writes: number[] = [];
  const writev = socket._writev.bind(socket);
  const write = socket._write.bind(socket);
  socket._writev = (chunks: unknown[], cb: unknown) => (writes.push(chunks.length), writev(chunks, cb));
  socket._write = (chunk: unknown, enc: unknown, cb: unknown) => (writes.push(1), write(chunk, enc, cb));
  return writes;
}

describe('EslConnection replies', () => {
  it('matches replies to commands in FIFO order with several in flight', async () => {
    const { conn, peer, reader } = await setup();
    const a = conn.command('myevents');
    const b = conn.api('uuid_exists 2e5a0914-572f-492b-91f7-e21f07baa210');
    const c = conn.command('linger');
    expect([await reader.next(), await reader.next(), await reader.next()]).toEqual([
      'myevents\n\n',
      'api uuid_exists 2e5a0914-572f-492b-91f7-e21f07baa210\n\n',
      'linger\n\n',
    ]);
    peer.write(`${reply('+OK Events Enabled')}Content-Type: api/response\nContent-Length: 5\n\nfalse${reply('+OK will linger')}`);
    expect((await a).text).toBe('+OK Events Enabled');
    expect(await b).toBe('false');
    expect((await c).text).toBe('+OK will linger');
  });

  it('commands issued in the same tick leave in one write', async () => {
    const { conn, peer, reader } = await setup();
    const writes = countWrites(conn);
    const a = conn.command('myevents json');
    const b = conn.command('linger');
    expect([await reader.next(), await reader.next()]).toEqual(['myevents json\n\n', 'linger\n\n']);
    expect(writes).toEqual([1]); // one socket write carrying both
    peer.write(`${reply('+OK Events Enabled')}${reply('+OK will linger')}`);
    await Promise.all([a, b]);
    const c = conn.command('exit');
    await reader.next();
    expect(writes).toEqual([1, 1]);
    peer.write(reply('+OK bye'));
    expect((await c).text).toBe('+OK bye');
  });

  it('a withNext execute leaves with the next command (replies still in order), or alone after DEFER_MAX_MS', async () => {
    const { conn, peer, reader } = await setup();
    const writes = countWrites(conn);

    const answered = conn.execute('answer', undefined, { timeoutMs: 5_000, withNext: true });
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]); // held back across ticks
    const digits = conn.execute('play_and_get_digits', '1 1 1 1000 # a.wav b.wav v \\d 100', { timeoutMs: 5_000 });
    const [first, second] = [await reader.next(), await reader.next()];
    expect(writes).toEqual([1]); // both in one socket write
    expect(first).toContain('execute-app-name: answer');
    expect(second).toContain('execute-app-name: play_and_get_digits');
    peer.write(
      reply('+OK') +
        reply('+OK') +
        plainEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'answer', 'Application-UUID': eventUuidOf(first) as string }) +
        plainEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'play_and_get_digits', 'Application-UUID': eventUuidOf(second) as string }),
    );
    expect((await answered).get('Application')).toBe('answer');
    expect((await digits).get('Application')).toBe('play_and_get_digits');

    // Nothing follows: it goes alone, DEFER_MAX_MS later.
    const t0 = Date.now();
    const alone = conn.execute('multiunset', 'b_leg_cdr', { timeoutMs: 5_000, withNext: true });
    const sent = await reader.next();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(DEFER_MAX_MS - 5);
    expect(writes).toEqual([1, 1]);
    peer.write(reply('+OK') + plainEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'multiunset', 'Application-UUID': eventUuidOf(sent) as string }));
    expect((await alone).get('Application')).toBe('multiunset');
  });

  it('a timed-out command still consumes its late reply, so the next command gets its own', async () => {
    const { conn, peer, reader } = await setup();
    const slow = conn.command('getvar ivr_destination', { timeoutMs: 30 });
    await rejectsWith(slow, 'ESL_TIMEOUT');
    const next = conn.command('linger');
    await reader.next();
    await reader.next();
    peer.write(reply('1555') + reply('+OK will linger'));
    expect((await next).text).toBe('+OK will linger');
  });

  it('rejects -ERR with ESL_COMMAND_FAILED and aborts with ESL_ABORTED', async () => {
    const { conn, peer, reader } = await setup();
    const bad = conn.command('nonsense');
    await reader.next();
    peer.write(reply('-ERR command not found'));
    await rejectsWith(bad, 'ESL_COMMAND_FAILED');

    const ac = new AbortController();
    const aborted = conn.command('linger', { signal: ac.signal });
    ac.abort();
    await rejectsWith(aborted, 'ESL_ABORTED');
    await rejectsWith(conn.command('linger', { signal: ac.signal }), 'ESL_ABORTED');
  });

  it('rejects every pending command with ESL_SOCKET_CLOSED when the socket closes', async () => {
    const { conn, peer } = await setup();
    const a = conn.command('linger');
    const b = conn.api('status');
    peer.destroy();
    await rejectsWith(a, 'ESL_SOCKET_CLOSED');
    await rejectsWith(b, 'ESL_SOCKET_CLOSED');
    await rejectsWith(conn.command('linger'), 'ESL_SOCKET_CLOSED');
    expect(conn.closed).toBe(true);
  });
});

describe('EslConnection execute', () => {
  it('writes the sendmsg exactly and refuses a newline in the argument before sending', async () => {
    const { conn, reader } = await setup();
    const p = conn.execute('playback', 'tone_stream://%(200,0,440)', { timeoutMs: 50 });
    const cmd = await reader.next();
    const uuid = eventUuidOf(cmd) as string;
    expect(cmd).toBe(
      `sendmsg\ncall-command: execute\nexecute-app-name: playback\nEvent-UUID: ${uuid}\nevent-lock: true\ncontent-type: text/plain\ncontent-length: 26\n\ntone_stream://%(200,0,440)`,
    );
    await rejectsWith(p, 'ESL_TIMEOUT');
    // A bridge goes without event-lock (a broadcast must be able to run during it).
    const b = conn.execute('bridge', 'sofia/gateway/carrier/1', { timeoutMs: 50, eventLock: false });
    expect(await reader.next()).not.toContain('event-lock');
    await rejectsWith(b, 'ESL_TIMEOUT');
    await rejectsWith(conn.execute('playback', 'a.wav\nexecute-app-name: hangup'), 'ESL_INVALID_ARGUMENT');
    expect(reader.all).toHaveLength(2);
  });

  it('resolves only on the EXECUTE_COMPLETE with ITS Application-UUID (h_sched_broadcast_warning order)', async () => {
    const { conn, peer, reader } = await setup();
    // The recording's frames from the bridge's +OK up to its EXECUTE_COMPLETE; the broadcast playback in between
    // completes with a FreeSWITCH-made Application-UUID.
    const frames = splitFrames(rx('h_sched_broadcast_warning')).map((f) => f.toString('latin1'));
    const recorded = 'c0abde8a-6477-4378-a87e-772d8f9c3c06';
    const start = frames.findIndex((f) => f.includes(`Event-Name: CHANNEL_EXECUTE\n`) && f.includes(`Application-UUID: ${recorded}`)) - 1;
    const end = frames.findIndex((f) => f.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE\n') && f.includes(`Application-UUID: ${recorded}`));
    expect(isReply(Buffer.from(frames[start] as string, 'latin1'))).toBe(true);

    const seen: string[] = [];
    conn.on('event', (e) => seen.push(`${e.name}:${e.get('Application') ?? ''}`));
    let settled = false;
    const bridge = conn.execute('bridge', 'sofia/gateway/carrier/15559991234', { timeoutMs: 5_000 });
    void bridge.finally(() => (settled = true));
    const mine = eventUuidOf(await reader.next()) as string;
    const swap = (f: string): Buffer => Buffer.from(f.split(recorded).join(mine), 'latin1');

    const upToPlaybackComplete = frames.slice(start, end - 1);
    expect(upToPlaybackComplete.at(-1)).toMatch(/Event-Name: CHANNEL_EXECUTE_COMPLETE\n[\s\S]*Application: playback\n/);
    expect(frames[end - 1]).toContain('Event-Name: CHANNEL_UNBRIDGE\n');
    peer.write(Buffer.concat(upToPlaybackComplete.map(swap)));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toContain('CHANNEL_EXECUTE_COMPLETE:playback');
    expect(settled).toBe(false);

    peer.write(Buffer.concat(frames.slice(end - 1, end + 1).map(swap)));
    const done = await bridge;
    expect(done.get('Application')).toBe('bridge');
    expect(done.get('Application-UUID')).toBe(mine);
    expect(done.get('Application-Response')).toBe('FILE PLAYED');
  });

  it('rejects with ESL_HANGUP on CHANNEL_HANGUP, or waits the grace period for the completion', async () => {
    const { conn, peer, reader } = await setup();
    const plain = conn.execute('playback', 'a.wav', { timeoutMs: 5_000 });
    const graced = conn.execute('bridge', 'sofia/gateway/carrier/1', { timeoutMs: 5_000, hangupGraceMs: 1_000 });
    const [c1, c2] = [await reader.next(), await reader.next()];
    peer.write(reply('+OK') + reply('+OK') + plainEvent({ 'Event-Name': 'CHANNEL_HANGUP', 'Hangup-Cause': 'NORMAL_CLEARING' }));
    await rejectsWith(plain, 'ESL_HANGUP');
    peer.write(
      plainEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'bridge', 'Application-UUID': eventUuidOf(c2) as string }),
    );
    expect((await graced).get('Application')).toBe('bridge');
    expect(eventUuidOf(c1)).not.toBe(eventUuidOf(c2));
    expect(conn.channelGone).toBe(true);
    await rejectsWith(conn.execute('answer', undefined), 'ESL_HANGUP');
  });

  it('a graced execute still rejects with ESL_HANGUP when the completion never comes', async () => {
    const { conn, peer, reader } = await setup();
    const graced = conn.execute('bridge', 'x', { timeoutMs: 5_000, hangupGraceMs: 40 });
    await reader.next();
    const t0 = Date.now();
    peer.write(reply('+OK') + 'Content-Type: text/disconnect-notice\nContent-Disposition: linger\nLinger-Time: -1\nContent-Length: 0\n\n');
    await rejectsWith(graced, 'ESL_HANGUP');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
  });

  it('a graced execute queued behind the hangup rejects at CHANNEL_HANGUP_COMPLETE, not after its grace', async () => {
    const { conn, peer, reader } = await setup();
    // A bridge sent behind an announcement: the caller hangs up during the announcement, so the bridge never runs.
    const said = conn.execute('playback', 'call_can_last.wav', { timeoutMs: 5_000 });
    const queued = conn.execute('bridge', 'x', { timeoutMs: 60_000, hangupGraceMs: 60_000 });
    const [c1] = [await reader.next(), await reader.next()];
    const t0 = Date.now();
    peer.write(
      reply('+OK') +
        reply('+OK') +
        plainEvent({ 'Event-Name': 'CHANNEL_HANGUP', 'Hangup-Cause': 'NORMAL_CLEARING' }) +
        plainEvent({ 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', Application: 'playback', 'Application-UUID': eventUuidOf(c1) as string }),
    );
    await rejectsWith(said, 'ESL_HANGUP');
    let settled = false;
    queued.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false); // CHANNEL_HANGUP alone leaves it its grace
    peer.write(plainEvent({ 'Event-Name': 'CHANNEL_HANGUP_COMPLETE', 'Hangup-Cause': 'NORMAL_CLEARING' }));
    await rejectsWith(queued, 'ESL_HANGUP');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('rejects an in-flight execute with ESL_SOCKET_CLOSED when the socket drops, ESL_ABORTED on abort, -ERR as ESL_COMMAND_FAILED', async () => {
    const { conn, peer, reader } = await setup();
    const ac = new AbortController();
    const aborted = conn.execute('playback', 'a.wav', { signal: ac.signal, timeoutMs: 5_000 });
    const failed = conn.execute('playback', 'b.wav', { timeoutMs: 5_000 });
    const dropped = conn.execute('playback', 'c.wav', { timeoutMs: 5_000 });
    await reader.next();
    await reader.next();
    await reader.next();
    peer.write(reply('+OK') + reply('-ERR no such channel') + reply('+OK'));
    ac.abort();
    await rejectsWith(aborted, 'ESL_ABORTED');
    await rejectsWith(failed, 'ESL_COMMAND_FAILED');
    await new Promise((r) => setTimeout(r, 20));
    peer.destroy();
    await rejectsWith(dropped, 'ESL_SOCKET_CLOSED');
  });

  it('rejects executes on a disconnect notice (disposition disconnect)', async () => {
    const { conn, peer, reader } = await setup();
    const p = conn.execute('playback', 'a.wav', { timeoutMs: 5_000, hangupGraceMs: 5_000 });
    await reader.next();
    const body = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';
    peer.write(reply('+OK') + `Content-Type: text/disconnect-notice\nContent-Disposition: disconnect\nContent-Length: ${body.length}\n\n${body}`);
    await rejectsWith(p, 'ESL_SOCKET_CLOSED');
  });
});

describe('EslConnection against malformed input', () => {
  it('keeps a malformed percent-escape raw and stays up', async () => {
    const { conn, peer, reader } = await setup();
    const got = new Promise<string | undefined>((r) => conn.on('event', (e) => r(e.variable('weird'))));
    const body = 'Event-Name: CUSTOM\nvariable_weird: %E0%A4%A and %zz\n\n';
    peer.write(`Content-Length: ${body.length}\nContent-Type: text/event-plain\n\n${body}`);
    expect(await got).toBe('%E0%A4%A and %zz');
    const p = conn.command('linger');
    await reader.next();
    peer.write(reply('+OK will linger'));
    expect((await p).text).toBe('+OK will linger');
  });

  it('drops the socket on garbage and rejects what was pending', async () => {
    const { conn, peer } = await setup();
    const p = conn.command('linger');
    const closed = new Promise<Error | undefined>((r) => conn.on('close', r));
    peer.write('\x00\x01 garbage without a colon\n\n');
    await rejectsWith(p, 'ESL_SOCKET_CLOSED');
    const cause = await closed;
    expect(isEslError(cause, 'ESL_PROTOCOL')).toBe(true);
  });

  it('a throwing listener does not break dispatch', async () => {
    const { conn, peer } = await setup();
    conn.on('event', () => {
      throw new Error('listener bug');
    });
    const got = new Promise<string>((r) => conn.on('event', (e) => r(e.name)));
    peer.write(plainEvent({ 'Event-Name': 'DTMF', 'DTMF-Digit': '5' }));
    expect(await got).toBe('DTMF');
    expect(conn.closed).toBe(false);
  });
});
