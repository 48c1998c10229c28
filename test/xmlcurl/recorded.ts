/** Test helpers: the recorded mod_xml_curl exchanges (test/fixtures/freeswitch/xml_curl) and a replaying HTTP peer. */
import net from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../sim/recorded.ts';
import type { HttpAnswer } from '../../src/sim/xmlcurl.ts';

export const XMLCURL = join(FIXTURES, 'xml_curl');

export const raw = (file: string) => readFileSync(join(XMLCURL, file));

/** The decoded fields of a recorded request, in order (own decoder, independent of src/sim). */
export function recordedFields(file: string): Array<[string, string]> {
  const text = raw(file).toString('latin1');
  return text
    .slice(text.indexOf('\r\n\r\n') + 4)
    .split('&')
    .map((p) => [decodeURIComponent(p.slice(0, p.indexOf('='))), decodeURIComponent(p.slice(p.indexOf('=') + 1))]);
}

/** A recorded answer as the simulator's interpreters take it. */
export function recordedAnswer(file: string): HttpAnswer {
  const text = raw(file).toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end).split('\r\n');
  return {
    status: Number(head[0]!.split(' ')[1]),
    contentType: head.find((h) => /^content-type:/i.test(h))?.split(':')[1]?.trim() ?? '',
    body: text.slice(end + 4),
  };
}

export const requestFiles = (dir = '') =>
  readdirSync(join(XMLCURL, dir))
    .filter((f) => f.endsWith('.http') && !f.endsWith('.response.http') && !f.startsWith('cdr-'))
    .map((f) => (dir ? `${dir}/${f}` : f));

/** A TCP peer that records each request's bytes and answers with the given bytes, then closes. */
export async function replayPeer(answer: Buffer | ((req: Buffer) => Buffer)): Promise<{ url: string; requests: Buffer[]; close(): Promise<void> }> {
  const requests: Buffer[] = [];
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      requests.push(buf);
      sock.end(typeof answer === 'function' ? answer(buf) : answer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}
