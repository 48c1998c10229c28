import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import pino from 'pino';

export const FIXTURES = fileURLToPath(new URL('../fixtures/freeswitch/', import.meta.url));
export const silent = pino({ level: 'silent' });

export const scenarios = (): string[] =>
  readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.rx.raw'))
    .map((f) => f.slice(0, -'.rx.raw'.length))
    .sort();

export const rx = (name: string): Buffer => readFileSync(`${FIXTURES}${name}.rx.raw`);
export const tx = (name: string): string => readFileSync(`${FIXTURES}${name}.tx.raw`, 'latin1');
export const fixtureText = (file: string): string => readFileSync(`${FIXTURES}${file}`, 'utf8');

/** Independent, minimal splitter of a recording into whole frames (bytes), to cross-check the parser. */
export function splitFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf('\n\n', pos);
    if (end < 0) throw new Error(`trailing bytes at ${pos}`);
    const head = buf.subarray(pos, end).toString('latin1');
    const m = /^Content-Length: (\d+)$/m.exec(head);
    const next = end + 2 + (m ? Number(m[1]) : 0);
    out.push(buf.subarray(pos, next));
    pos = next;
  }
  return out;
}

export const isReply = (frame: Buffer): boolean => /^Content-Type: (command\/reply|api\/response)$/m.test(frame.subarray(0, frame.indexOf('\n\n')).toString('latin1'));

export interface OutlineRx {
  kind: string;
  name?: string;
  fields: Record<string, string>;
  json?: Record<string, string>;
}

/** The RX lines of NAME.outline.txt. */
export function outlineRx(name: string): OutlineRx[] {
  const lines = fixtureText(`${name}.outline.txt`).split('\n').filter((l) => / RX /.test(l));
  return lines.map((line) => {
    const rest = line.slice(line.indexOf(' RX ') + 4);
    const [kind = '', second = ''] = rest.split(' ');
    const fields: Record<string, string> = {};
    for (const m of rest.matchAll(/(\S+?)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
      const [, k = '', v = ''] = m;
      fields[k] = v.startsWith('"') ? (JSON.parse(v) as string) : v;
    }
    const brace = rest.indexOf(' {');
    let json: Record<string, string> | undefined;
    if (kind !== 'event' && brace >= 0) {
      const end = rest.indexOf('}', brace);
      try {
        json = JSON.parse(rest.slice(brace + 1, end + 1)) as Record<string, string>;
      } catch {
        json = undefined;
      }
    }
    return { kind, name: kind === 'event' ? second : undefined, fields, json };
  });
}

/** A connected pair of sockets: `server` is what an ESL server gets, `peer` plays FreeSWITCH. */
export async function socketPair(): Promise<{ server: net.Socket; peer: net.Socket; close(): void }> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const peer = net.connect(port, '127.0.0.1');
  const server = await accepted;
  await new Promise<void>((r) => (peer.readyState === 'open' ? r() : peer.once('connect', () => r())));
  listener.close();
  return {
    server,
    peer,
    close() {
      peer.destroy();
      server.destroy();
    },
  };
}

/** Collects "\n\n"-terminated commands written by the client under test. */
export function commandReader(socket: net.Socket): { next(): Promise<string>; all: string[] } {
  let buf = '';
  const all: string[] = [];
  const waiters: ((c: string) => void)[] = [];
  const queue: string[] = [];
  socket.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      // A command may carry a body (an execute's argument as text/plain): content-length bytes after the blank line.
      const length = Number(/^content-length: (\d+)$/im.exec(buf.slice(0, i))?.[1] ?? 0);
      if (Buffer.byteLength(buf.slice(i + 2)) < length) break;
      const end = i + 2 + Buffer.from(buf.slice(i + 2)).subarray(0, length).toString('utf8').length;
      const cmd = buf.slice(0, end);
      buf = buf.slice(end);
      all.push(cmd);
      const w = waiters.shift();
      if (w) w(cmd);
      else queue.push(cmd);
    }
  });
  return {
    all,
    next: () => {
      const q = queue.shift();
      return q !== undefined ? Promise.resolve(q) : new Promise((r) => waiters.push(r));
    },
  };
}

export const eventUuidOf = (cmd: string): string | undefined => /^Event-UUID: (\S+)$/m.exec(cmd)?.[1];

/**
 * The recorded probe sent execute arguments as an `execute-app-arg` header; ccard sends them as a text/plain body
 * (FreeSWITCH takes the body when the header is absent). Rewrites a recorded command into ccard's form.
 */
export function toBodyForm(cmd: string): string {
  const m = /^execute-app-arg: (.*)\n/m.exec(cmd);
  if (!m) return cmd;
  const arg = m[1] as string;
  const head = cmd.replace(m[0], '').replace(/\n\n$/, '\n');
  return `${head}content-type: text/plain\ncontent-length: ${Buffer.byteLength(arg)}\n\n${arg}`;
}

/**
 * A recorded command as ccard sends it: the argument as a body (toBodyForm), and `event-lock: true` on every execute
 * but bridge (the probe queued one execute at a time and needed none; see sendmsgExecute).
 */
export function toCcardForm(cmd: string): string {
  const locked = /^call-command: execute$/m.test(cmd) && !/^execute-app-name: bridge$/m.test(cmd);
  const withLock = locked ? cmd.replace(/^(Event-UUID: \S+\n)/m, '$1event-lock: true\n') : cmd;
  return toBodyForm(withLock);
}

export interface ReplayResult {
  /** Commands the client sent, with its fresh Event-UUIDs put back to the recorded ones. */
  sent: string[];
  expected: string[];
  closed: Promise<void>;
}

/**
 * Plays FreeSWITCH from a recording: connects to `port`, and for each command the client sends, answers with the
 * recorded frames up to its reply plus the events that followed it, with the recorded Event-UUIDs replaced by the
 * client's (same length, so every Content-Length stays exact). Ends the socket after the last frame.
 */
export function replay(name: string, port: number): ReplayResult {
  const frames = splitFrames(rx(name));
  const expected = tx(name).split('\n\n').filter((c) => c !== '').map((c) => toCcardForm(`${c}\n\n`));
  const socket = net.connect(port, '127.0.0.1');
  const reader = commandReader(socket);
  const sent: string[] = [];
  const uuidMap = new Map<string, string>();
  let cursor = 0;
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.on('error', () => undefined);
  void (async () => {
    while (cursor < frames.length) {
      const cmd = await reader.next();
      const k = sent.length;
      const rec = expected[k];
      const mine = eventUuidOf(cmd);
      const theirs = rec ? eventUuidOf(rec) : undefined;
      if (mine && theirs) uuidMap.set(theirs, mine);
      sent.push(mine && theirs ? cmd.replace(mine, theirs) : cmd);
      const out: Buffer[] = [];
      let sawReply = false;
      while (cursor < frames.length) {
        const f = frames[cursor] as Buffer;
        if (isReply(f)) {
          if (sawReply) break;
          sawReply = true;
        }
        out.push(f);
        cursor++;
      }
      let text = Buffer.concat(out).toString('latin1');
      for (const [from, to] of uuidMap) text = text.split(from).join(to);
      socket.write(Buffer.from(text, 'latin1'));
    }
    socket.end();
  })();
  return { sent, expected, closed };
}
