/** Test helpers: a minimal ESL server side that replays a recorded client (NAME.tx.raw) against the simulator, and frame outlines. */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/freeswitch');

export interface Frame {
  headers: Array<[string, string]>;
  body: string;
}

/** Own tiny splitter (independent of src/esl and src/sim): header block, then Content-Length bytes. */
export function splitFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let i = 0;
  while (i < buf.length) {
    const end = buf.indexOf('\n\n', i);
    if (end < 0) break;
    const headers = buf
      .subarray(i, end)
      .toString('utf8')
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)] as [string, string]);
    i = end + 2;
    const len = Number(headers.find(([k]) => k === 'Content-Length')?.[1] ?? 0);
    out.push({ headers, body: buf.subarray(i, i + len).toString('utf8') });
    i += len;
  }
  return out;
}

export const hv = (f: Frame, k: string) => f.headers.find(([n]) => n === k)?.[1];

export interface EventView {
  type: string;
  name: string;
  app: string;
  /** [name, raw value] in wire order; for json the parsed keys in order. */
  headers: Array<[string, string]>;
}

export function view(f: Frame): EventView {
  const type = hv(f, 'Content-Type') ?? '';
  let headers: Array<[string, string]> = [];
  if (type === 'text/event-plain') {
    headers = f.body
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)] as [string, string]);
  } else if (type === 'text/event-json') {
    // keys in order, duplicates kept (Hangup-Cause twice)
    headers = [...f.body.matchAll(/"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, JSON.parse(`"${m[2]}"`) as string]);
  } else if (type === 'command/reply' && hv(f, 'Event-Name') === 'CHANNEL_DATA') {
    headers = f.headers;
  }
  const get = (k: string) => headers.find(([n]) => n === k)?.[1] ?? '';
  return { type, name: get('Event-Name'), app: get('Application'), headers };
}

export const recordedRx = (name: string) => splitFrames(readFileSync(join(FIXTURES, `${name}.rx.raw`)));
export const recordedTx = (name: string) => splitFrames(readFileSync(join(FIXTURES, `${name}.tx.raw`)));

/** Listens once; replays the recorded client commands, waiting where the recorded client waited. */
export async function replayClient(scenario: string, start: (port: number) => Promise<unknown>): Promise<{ rx: Buffer; frames: Frame[] }> {
  const tx = readFileSync(join(FIXTURES, `${scenario}.tx.raw`)).toString('utf8').split('\n\n').filter((c) => c.trim());
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const conn = new Promise<{ rx: Buffer; frames: Frame[] }>((resolve, reject) => {
    server.once('connection', (sock) => {
      let buf = Buffer.alloc(0);
      let frames: Frame[] = [];
      const waiters: Array<() => boolean> = [];
      const check = () => {
        for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!()) waiters.splice(i, 1);
      };
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        frames = splitFrames(buf);
        check();
      });
      const until = (pred: () => boolean) =>
        new Promise<void>((r, j) => {
          const t = setTimeout(() => j(new Error(`timeout in ${scenario}`)), 10_000);
          waiters.push(() => (pred() ? (clearTimeout(t), r(), true) : false));
          check();
        });
      const replies = () => frames.filter((f) => ['command/reply', 'api/response'].includes(hv(f, 'Content-Type') ?? '')).length;
      const events = () => frames.map(view);
      const hungUp = () => events().some((e) => e.name === 'CHANNEL_HANGUP_COMPLETE');
      const lingerSeen = () => frames.some((f) => hv(f, 'Content-Disposition') === 'linger');
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      void (async () => {
        let sent = 0;
        let lingered = false;
        for (const cmd of tx) {
          if (cmd.startsWith('exit') && lingered) await until(lingerSeen);
          sock.write(cmd + '\n\n');
          sent++;
          const n = sent;
          await until(() => replies() >= n);
          if (cmd.startsWith('linger')) lingered = true;
          const eu = /Event-UUID: (\S+)/.exec(cmd)?.[1];
          if (/call-command: execute/.test(cmd) && eu)
            await until(() => hungUp() || events().some((e) => e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.headers.some(([k, v]) => k === 'Application-UUID' && v === eu)));
          if (/call-command: hangup/.test(cmd)) await until(hungUp);
        }
        await closed;
        resolve({ rx: buf, frames });
      })().catch(reject);
    });
  });
  const simDone = start(port);
  const out = await conn;
  await simDone;
  server.close();
  return out;
}
