import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEslError } from '../../src/esl/errors.ts';
import { EslEvent, FrameParser, jsonMember, parseJsonEvent, safeDecode, toFrame, type EslFrame, type RawFrame } from '../../src/esl/parser.ts';
import { outlineRx, rx, scenarios, splitFrames } from './helpers.ts';

const parseAll = (buf: Buffer): RawFrame[] => new FrameParser().push(buf);
const summary = (frames: RawFrame[]): string[] => frames.map((f) => `${JSON.stringify([...f.headers])}|${f.body.toString('base64')}`);

function feed(buf: Buffer, cuts: number[]): RawFrame[] {
  const p = new FrameParser();
  const out: RawFrame[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    out.push(...p.push(buf.subarray(prev, c)));
    prev = c;
  }
  return out;
}

const expectProtocolError = (fn: () => unknown): void => {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(isEslError(thrown, 'ESL_PROTOCOL')).toBe(true);
};

describe('FrameParser framing', () => {
  it('returns several frames from one read, with Content-Length 0 and bodies', () => {
    const buf = Buffer.from(
      'Content-Type: command/reply\nReply-Text: +OK\n\n' +
        'Content-Type: text/disconnect-notice\nContent-Disposition: linger\nContent-Length: 0\n\n' +
        'Content-Type: api/response\nContent-Length: 5\n\nfalse' +
        'Content-Type: command/reply\nReply-Text: +OK bye\n\n',
    );
    const frames = parseAll(buf);
    expect(frames.map((f) => f.headers.get('Content-Type'))).toEqual(['command/reply', 'text/disconnect-notice', 'api/response', 'command/reply']);
    expect(frames[1]?.body.length).toBe(0);
    expect(frames[2]?.body.toString()).toBe('false');
    expect(frames[3]?.headers.get('Reply-Text')).toBe('+OK bye');
  });

  it('counts Content-Length in bytes for a multi-byte UTF-8 body', () => {
    const body = 'Grüße — ☎ 通话';
    const bytes = Buffer.byteLength(body);
    expect(bytes).toBeGreaterThan(body.length);
    const buf = Buffer.from(`Content-Type: api/response\nContent-Length: ${bytes}\n\n${body}Content-Type: command/reply\nReply-Text: +OK\n\n`);
    for (let cut = 0; cut <= buf.length; cut++) {
      const frames = feed(buf, [cut]);
      expect(frames).toHaveLength(2);
      expect(frames[0]?.body.toString('utf8')).toBe(body);
    }
  });

  it('gives the same frames when the start of a recording is split at every byte offset', () => {
    const whole = rx('a_success');
    const frames = splitFrames(whole);
    const part = whole.subarray(0, frames.slice(0, 6).reduce((n, f) => n + f.length, 0));
    const expected = summary(parseAll(part));
    expect(expected).toHaveLength(6);
    const want = expected.join('\0');
    const bad: number[] = [];
    for (let cut = 0; cut <= part.length; cut++) if (summary(feed(part, [cut])).join('\0') !== want) bad.push(cut);
    expect(bad).toEqual([]);
  });

  it('gives the same frames byte by byte as from the whole buffer (json and plain recordings)', () => {
    for (const name of ['a5_success_json', 'h_sched_broadcast_warning']) {
      const whole = rx(name);
      const p = new FrameParser();
      const frames: RawFrame[] = [];
      for (let i = 0; i < whole.length; i++) frames.push(...p.push(whole.subarray(i, i + 1)));
      expect(summary(frames)).toEqual(summary(parseAll(whole)));
    }
  });

  it('gives the same frames for any random chunking of every recording', () => {
    const wholes = scenarios().map((n) => rx(n));
    const expected = wholes.map((w) => summary(parseAll(w)));
    fc.assert(
      fc.property(fc.nat(wholes.length - 1), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), (i, fractions) => {
        const whole = wholes[i] as Buffer;
        const cuts = fractions.map((f) => Math.floor(f * whole.length)).sort((a, b) => a - b);
        expect(summary(feed(whole, cuts))).toEqual(expected[i]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('FrameParser limits and garbage', () => {
  it('rejects a header block over 64 KiB even before it ends', () => {
    const p = new FrameParser();
    expectProtocolError(() => {
      for (let i = 0; i < 100; i++) p.push(Buffer.from(`X-Filler-${i}: ${'a'.repeat(1000)}\n`));
    });
    // once failed, the parser stays failed
    expectProtocolError(() => p.push(Buffer.from('Content-Type: command/reply\n\n')));
  });

  it('rejects a Content-Length over 8 MiB or not a number', () => {
    expectProtocolError(() => parseAll(Buffer.from(`Content-Type: api/response\nContent-Length: ${8 * 1024 * 1024 + 1}\n\n`)));
    expectProtocolError(() => parseAll(Buffer.from('Content-Type: api/response\nContent-Length: 12abc\n\n')));
    expect(parseAll(Buffer.from(`Content-Length: ${8 * 1024 * 1024}\n\n`))).toHaveLength(0); // allowed, waiting for the body
  });

  it('rejects a garbled header line', () => {
    expectProtocolError(() => parseAll(Buffer.from('this is not a header\n\n')));
    expectProtocolError(() => parseAll(Buffer.from(': no name\n\n')));
  });

  it('rejects an event body that is not JSON / a plain event with a garbled line', () => {
    const json = Buffer.from('{"Event-Name": "CHANNEL_ANSWER", oops}');
    expectProtocolError(() => toFrame({ headers: new Map([['Content-Type', 'text/event-json']]), body: json }));
    expectProtocolError(() => toFrame({ headers: new Map([['Content-Type', 'text/event-plain']]), body: Buffer.from('garbage line\n\n') }));
  });
});

describe('reading members of a JSON event without parsing it', () => {
  // Keys and values built to trip a byte search: quotes, backslashes, ',"key":"' inside values, unicode.
  const tricky = fc.oneof(
    fc.string(),
    fc.constantFrom('a,"Event-Name":"X"', '\\', '\\"', '",', ',"k":', '{"k":"v"}', 'x\\', '☎ é', '\u0000\n'),
    fc.string().map((s) => `${s}","k":"${s}`),
  );
  const key = fc.oneof(fc.constantFrom('k', 'Event-Name', 'variable_b_leg_cdr', 'Application-UUID'), fc.stringMatching(/^[A-Za-z_-][A-Za-z0-9_-]{0,12}$/));

  it('finds every member exactly as JSON.parse does, and nothing that is not a member', () => {
    fc.assert(
      fc.property(fc.dictionary(key, tricky, { maxKeys: 12 }), key, (obj, probe) => {
        const doc = { 'Event-Name': 'CHANNEL_EXECUTE_COMPLETE', ...obj };
        const raw = Buffer.from(JSON.stringify(doc));
        for (const [k, v] of Object.entries(doc)) expect(jsonMember(raw, k)).toBe(v);
        for (const [k, v] of Object.entries(doc)) expect(jsonMember(raw, k, true)).toBe(v); // searching from the end
        expect(jsonMember(raw, probe)).toBe(Object.hasOwn(doc, probe) ? (doc as Record<string, string>)[probe] : undefined);
        expect(jsonMember(raw, probe, true)).toBe(Object.hasOwn(doc, probe) ? (doc as Record<string, string>)[probe] : undefined);
        const ev = parseJsonEvent(raw);
        expect(ev.get(probe)).toBe(Object.hasOwn(doc, probe) ? (doc as Record<string, string>)[probe] : undefined);
        expect([...ev.headers.entries()]).toEqual(Object.entries(doc));
      }),
      { numRuns: 400 },
    );
  });

  it('reads the name from the first bytes exactly when FreeSWITCH\'s layout is there, else parses', () => {
    const layout = /^\{"Event-Name":"([A-Z_]{1,64})"[,}]/;
    const start = fc.oneof(
      fc.stringMatching(/^[A-Z_]{0,66}$/).map((n) => `{"Event-Name":"${n}"`),
      fc.constantFrom('{"Event-Name":"A', '{"Event-Name": "A"', '{ "Event-Name":"A"', '{"Event-Name":"a"', '{"Event-Namex":"A"'),
    );
    fc.assert(
      fc.property(start, fc.constantFrom(',"k":"v"}', '}', '"}', ' }', ''), (head, tail) => {
        const raw = Buffer.from(head + tail);
        const expected = layout.exec(raw.toString('latin1'))?.[1];
        let ev: EslEvent | undefined;
        try {
          ev = parseJsonEvent(raw);
        } catch {
          expect(expected).toBeUndefined(); // not FreeSWITCH's layout and not JSON either
          return;
        }
        if (expected !== undefined) expect(ev.name).toBe(expected);
        else expect(ev.name).toBe(String((JSON.parse(raw.toString()) as Record<string, unknown>)['Event-Name'] ?? ''));
      }),
      { numRuns: 500 },
    );
  });

  it('falls back to a full parse for members that are not strings, and reads _body as the body', () => {
    const raw = Buffer.from(JSON.stringify({ 'Event-Name': 'CUSTOM', list: ['a', 'b'], n: '1', _body: 'hello' }));
    const ev = parseJsonEvent(raw);
    expect(ev.get('list')).toBe('ARRAY::a|:b');
    expect(ev.get('n')).toBe('1');
    expect(ev.get('_body')).toBeUndefined();
    expect(ev.body).toBe('hello');
  });

  it('reads the name of a body that is cut short, and nothing else', () => {
    const ev = parseJsonEvent(Buffer.from('{"Event-Name":"CHANNEL_HANGUP","Hangup-Cause":"NORMAL_CLE'));
    expect(ev.name).toBe('CHANNEL_HANGUP');
    expect(ev.get('Hangup-Cause')).toBeUndefined();
    expect(ev.headers.get('Event-Name')).toBe('CHANNEL_HANGUP');
  });
});

describe('percent-decoding', () => {
  it('never throws and keeps the raw text of a malformed escape', () => {
    expect(safeDecode('%E0%A4%A')).toBe('%E0%A4%A');
    expect(safeDecode('100%zz')).toBe('100%zz');
    expect(safeDecode('sofia/access/1555%40127.0.0.1')).toBe('sofia/access/1555@127.0.0.1');
    expect(safeDecode('+OK')).toBe('+OK');
    fc.assert(fc.property(fc.string(), (s) => typeof safeDecode(s) === 'string'));
  });

  it('decodes event-plain values, keeping a malformed one raw', () => {
    const body = Buffer.from('Event-Name: CHANNEL_ANSWER\nCaller-Caller-ID-Name: Probe%20Caller\nvariable_bad: %E0%A4%A\nvariable_pct: 50%zz\n\n');
    const frame = toFrame({ headers: new Map([['Content-Type', 'text/event-plain']]), body });
    expect(frame.kind).toBe('event');
    const ev = (frame as Extract<EslFrame, { kind: 'event' }>).event;
    expect(ev.name).toBe('CHANNEL_ANSWER');
    expect(ev.get('Caller-Caller-ID-Name')).toBe('Probe Caller');
    expect(ev.variable('bad')).toBe('%E0%A4%A');
    expect(ev.variable('pct')).toBe('50%zz');
  });
});

describe('typed frames', () => {
  const typed = (name: string): EslFrame[] => parseAll(rx(name)).map(toFrame);

  it('decodes the connect reply: one header block, url-encoded values, CHANNEL_DATA first', () => {
    const [connect] = typed('a_success');
    expect(connect?.kind).toBe('command/reply');
    if (connect?.kind !== 'command/reply') return;
    expect(connect.reply).toBe('+OK');
    expect(connect.ok).toBe(true);
    const data = connect.channelData as EslEvent;
    expect(data.name).toBe('CHANNEL_DATA');
    expect(data.get('Channel-Name')).toBe('sofia/access/15551230000@127.0.0.1');
    expect(data.get('Caller-Caller-ID-Name')).toBe('Probe Caller');
    expect(data.get('Socket-Mode')).toBe('async');
    expect(data.get('Control')).toBe('full');
    expect(data.get('Unique-ID')).toBe('2e5a0914-572f-492b-91f7-e21f07baa210');
  });

  it('parses event-plain and event-json into the same kind of event', () => {
    const plain = typed('a_success').filter((f) => f.kind === 'event');
    const json = typed('a5_success_json').filter((f) => f.kind === 'event');
    for (const list of [plain, json]) {
      const complete = list.map((f) => (f as Extract<EslFrame, { kind: 'event' }>).event).find((e) => e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.get('Application') === 'play_and_get_digits');
      expect(complete?.variable('ivr_destination')).toBe('15557654321');
      expect(complete?.variable('read_result')).toBe('success');
      expect(complete?.variable('read_terminator_used')).toBe('#');
    }
    const hc = json.map((f) => (f as Extract<EslFrame, { kind: 'event' }>).event).find((e) => e.name === 'CHANNEL_HANGUP_COMPLETE');
    expect(hc?.format).toBe('json');
    expect(hc?.get('Hangup-Cause')).toBe('NORMAL_CLEARING'); // the key is repeated in the JSON text
  });

  it('reads an api/response body and a disconnect notice body', () => {
    const frames = typed('b3_commands_after_hangup');
    const api = frames.find((f) => f.kind === 'api/response');
    expect(api?.kind === 'api/response' && api.body).toBe('false');
    const notices = frames.filter((f) => f.kind === 'disconnect-notice');
    expect(notices.map((n) => n.kind === 'disconnect-notice' && n.disposition)).toEqual(['linger', 'disconnect']);
    const last = notices[1];
    expect(last?.kind === 'disconnect-notice' && last.body).toBe('Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n');
    const err = frames.find((f) => f.kind === 'command/reply' && f.reply.startsWith('-ERR'));
    expect(err?.kind === 'command/reply' && err.ok).toBe(false);
  });

  it('reads an event-plain body carried inside an event (Content-Length in the event)', () => {
    const body = Buffer.from('Event-Name: BACKGROUND_JOB\nJob-UUID: 1\nContent-Length: 7\n\n+OK ☎\n');
    const ev = (toFrame({ headers: new Map([['Content-Type', 'text/event-plain']]), body }) as Extract<EslFrame, { kind: 'event' }>).event;
    expect(ev.name).toBe('BACKGROUND_JOB');
    expect(ev.body).toBe('+OK ☎');
    const json = Buffer.from(JSON.stringify({ 'Event-Name': 'BACKGROUND_JOB', 'Content-Length': '6', _body: '+OK ok' }));
    const je = (toFrame({ headers: new Map([['Content-Type', 'text/event-json']]), body: json }) as Extract<EslFrame, { kind: 'event' }>).event;
    expect(je.body).toBe('+OK ok');
  });
});

describe('every recording matches its outline', () => {
  for (const name of scenarios()) {
    it(name, () => {
      const frames = parseAll(rx(name)).map(toFrame);
      const outline = outlineRx(name);
      expect(frames.length).toBe(outline.length);
      expect(frames.length).toBe(splitFrames(rx(name)).length);
      frames.forEach((frame, i) => {
        const line = outline[i] as (typeof outline)[number];
        switch (frame.kind) {
          case 'event': {
            expect(line.kind, `frame ${i}`).toBe('event');
            expect(frame.event.name, `frame ${i}`).toBe(line.name);
            if (line.fields.app !== undefined) expect(frame.event.get('Application')).toBe(line.fields.app);
            if (line.fields['Application-UUID'] !== undefined) expect(frame.event.get('Application-UUID')).toBe(line.fields['Application-UUID']);
            if (line.fields.uuid !== undefined) expect(frame.event.get('Unique-ID')?.startsWith(line.fields.uuid)).toBe(true);
            if (line.fields.digit !== undefined) expect(frame.event.get('DTMF-Digit')).toBe(line.fields.digit);
            break;
          }
          case 'command/reply':
            expect(line.kind, `frame ${i}`).toBe('command/reply');
            if (frame.channelData) expect(frame.channelData.name).toBe(line.json?.['Event-Name']);
            else expect(frame.reply).toBe(line.json?.['Reply-Text']);
            break;
          case 'api/response':
            expect(line.kind).toBe('api/response');
            expect(String(Buffer.byteLength(frame.body))).toBe(line.json?.['Content-Length']);
            break;
          case 'disconnect-notice':
            expect(line.kind).toBe('text/disconnect-notice');
            expect(frame.disposition).toBe(line.json?.['Content-Disposition']);
            break;
          default:
            throw new Error(`unexpected frame kind ${frame.kind} at ${i}`);
        }
      });
    });
  }
});
