/**
 * ESL framing and parsing, on Buffers, with no IO.
 *
 * A frame is a header block ending in "\n\n", then Content-Length BYTES of body when that header is present.
 * FrameParser is incremental: feed it reads of any size (a frame split at any byte, several frames per read).
 * toFrame() turns a raw frame into a typed one; events (text/event-plain, text/event-json) become EslEvent.
 */
import { EslError } from './errors.ts';

export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export type Headers = ReadonlyMap<string, string>;

export interface RawFrame {
  /** Outer header values exactly as sent (not percent-decoded; see toFrame). */
  headers: Headers;
  body: Buffer;
}

const NL = 0x0a;
const EMPTY = Buffer.alloc(0);

export interface FrameParserLimits {
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
}

export class FrameParser {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Header state: the last buffered byte was "\n" (the terminator may straddle two reads). */
  private prevNL = false;
  /** Body state: the headers of the frame whose body is being collected. */
  private head: { headers: Headers; length: number } | undefined;
  private failed: EslError | undefined;
  private readonly maxHeader: number;
  private readonly maxBody: number;

  constructor(limits: FrameParserLimits = {}) {
    this.maxHeader = limits.maxHeaderBytes ?? MAX_HEADER_BYTES;
    this.maxBody = limits.maxBodyBytes ?? MAX_BODY_BYTES;
  }

  /** Returns the frames completed by this read. Throws EslError('ESL_PROTOCOL'); the parser is then unusable. */
  push(chunk: Buffer): RawFrame[] {
    if (this.failed) throw this.failed;
    try {
      return this.consume(chunk);
    } catch (err) {
      this.failed = err instanceof EslError ? err : new EslError('ESL_PROTOCOL', String(err), { cause: err });
      this.chunks = [];
      throw this.failed;
    }
  }

  private consume(chunk: Buffer): RawFrame[] {
    const out: RawFrame[] = [];
    let data = chunk;
    for (;;) {
      if (!this.head) {
        const end = this.findHeaderEnd(data);
        if (end < 0) {
          this.append(data);
          if (this.size > this.maxHeader) throw protocol(`header block larger than ${this.maxHeader} bytes`);
          return out;
        }
        const block = this.take(data.subarray(0, end + 1));
        data = data.subarray(end + 1);
        this.prevNL = false;
        if (block.length > this.maxHeader) throw protocol(`header block larger than ${this.maxHeader} bytes`);
        const headers = parseHeaderLines(block);
        if (headers.size === 0) continue; // stray blank lines between frames
        const length = contentLength(headers, this.maxBody);
        if (length === 0) {
          out.push({ headers, body: EMPTY });
          continue;
        }
        this.head = { headers, length };
      }
      const need = this.head.length - this.size;
      if (data.length < need) {
        this.append(data);
        return out;
      }
      out.push({ headers: this.head.headers, body: this.take(data.subarray(0, need)) });
      data = data.subarray(need);
      this.head = undefined;
    }
  }

  /** Index in `data` of the second "\n" of the first "\n\n" (which may start in an earlier read), or -1. */
  private findHeaderEnd(data: Buffer): number {
    let i = data.indexOf(NL);
    while (i >= 0) {
      if (i > 0 ? data[i - 1] === NL : this.prevNL) return i;
      i = data.indexOf(NL, i + 1);
    }
    if (data.length > 0) this.prevNL = data[data.length - 1] === NL;
    return -1;
  }

  private append(data: Buffer): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.size += data.length;
  }

  private take(last: Buffer): Buffer {
    const all = this.chunks.length === 0 ? last : Buffer.concat([...this.chunks, last]);
    this.chunks = [];
    this.size = 0;
    return all;
  }
}

const protocol = (msg: string): EslError => new EslError('ESL_PROTOCOL', msg);

// Lenient on purpose: variable names may carry any token character (SIP header names do).
const HEADER_NAME = /^[^\s:]+$/;

/** "Name: value" lines; the first occurrence of a repeated name wins (Hangup-Cause comes twice, same value). */
function parseHeaderLines(block: Buffer | string, decode = false): Map<string, string> {
  const text = typeof block === 'string' ? block : block.toString('utf8');
  const headers = new Map<string, string>();
  // One pass over the text with indexOf (no split into an array of lines, no regex for the usual ASCII names).
  const n = text.length;
  let pos = 0;
  while (pos < n) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    let lineEnd = end;
    if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    if (lineEnd > pos) {
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon >= lineEnd || !isHeaderName(text, pos, colon)) {
        throw protocol(`garbled header line: ${JSON.stringify(text.slice(pos, lineEnd).slice(0, 80))}`);
      }
      const name = text.slice(pos, colon);
      if (!headers.has(name)) {
        const start = colon + 1 < lineEnd && text.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1;
        const value = text.slice(start, lineEnd);
        headers.set(name, decode ? safeDecode(value) : value);
      }
    }
    pos = end + 1;
  }
  return headers;
}

/** HEADER_NAME on text[start, end): printable ASCII is decided here, anything else by the regex. */
function isHeaderName(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return HEADER_NAME.test(text.slice(start, end));
  }
  return true;
}

function contentLength(headers: Headers, max: number): number {
  const raw = headers.get('Content-Length');
  if (raw === undefined) return 0;
  if (!/^\d{1,10}$/.test(raw)) throw protocol(`bad Content-Length: ${JSON.stringify(raw.slice(0, 20))}`);
  const n = Number(raw);
  if (n > max) throw protocol(`Content-Length ${n} exceeds ${max} bytes`);
  return n;
}

/** Percent-decoding that never throws: a malformed escape (`%zz`, a cut UTF-8 sequence) keeps the raw text. */
export function safeDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export type EventFormat = 'plain' | 'json';

/** A text/event-json value as event-plain would print it: arrays as "ARRAY::a|:b". */
function jsonHeaderValue(v: unknown): string {
  return typeof v === 'string' ? v : Array.isArray(v) ? `ARRAY::${v.map(String).join('|:')}` : JSON.stringify(v);
}

/**
 * One FreeSWITCH event (or the CHANNEL_DATA of the connect reply). Header values are decoded.
 *
 * A JSON event keeps its raw body and reads the headers asked for straight from the bytes (see jsonMember): a call's
 * events are ~7 KB each (every channel variable) and ~30 KB once b_leg_cdr is on the channel, and all but a few are
 * only asked for their name, an Application-UUID or a Hangup-Cause. JSON.parse runs only when someone wants every
 * header (`headers`) or a header is not a plain string member.
 */
export class EslEvent {
  #headers: Headers | undefined;
  #doc: Record<string, unknown> | undefined;
  /** A JSON event not parsed yet: its body bytes. */
  #raw: Buffer | undefined;
  #name: string | undefined;
  #body: string | undefined;
  /** #headers holds values as sent, url-encoded (the connect reply): decoded on get. */
  #encoded = false;

  constructor(
    headers: Headers | Record<string, unknown>,
    /** A plain event's body; a JSON event's is its `_body` member. */
    body: string | undefined,
    /** Where it came from: 'json' values are exact; 'plain' values went through FreeSWITCH's lossy url-encoding. */
    readonly format: EventFormat,
  ) {
    if (headers instanceof Map) this.#headers = headers;
    else this.#doc = headers as Record<string, unknown>;
    this.#body = body;
  }

  /**
   * The connect reply's CHANNEL_DATA: url-encoded header values, decoded when read. Of its ~170 headers a call reads
   * a dozen, once (CallSession copies them out).
   */
  static urlEncoded(headers: Headers): EslEvent {
    const event = new EslEvent(headers, undefined, 'plain');
    event.#encoded = true;
    return event;
  }

  /** A JSON event read on demand from its body (`name` was read from its first bytes). */
  static lazyJson(name: string, raw: Buffer): EslEvent {
    const event = new EslEvent(EMPTY_DOC, undefined, 'json');
    event.#doc = undefined;
    event.#raw = raw;
    event.#name = name;
    return event;
  }

  #load(): void {
    const raw = this.#raw;
    if (!raw) return;
    this.#raw = undefined;
    try {
      const doc: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) this.#doc = doc as Record<string, unknown>;
    } catch {
      // A body that is not JSON after a well-formed start: only its name is known.
    }
    this.#doc ??= { 'Event-Name': this.#name };
  }

  get headers(): Headers {
    this.#load();
    if (this.#encoded) {
      this.#headers = new Map([...this.#headers!].map(([k, v]) => [k, safeDecode(v)]));
      this.#encoded = false;
    }
    if (!this.#headers) {
      const map = new Map<string, string>();
      for (const [k, v] of Object.entries(this.#doc!)) if (k !== '_body') map.set(k, jsonHeaderValue(v));
      this.#headers = map;
    }
    return this.#headers;
  }

  get name(): string {
    return this.#name ?? this.get('Event-Name') ?? '';
  }

  /** The event's own body (`_body` in JSON, the Content-Length part in plain). */
  get body(): string | undefined {
    if (this.#raw || this.#doc) {
      const raw = this.#doc ? this.#doc['_body'] : this.#member('_body');
      return raw === undefined ? undefined : jsonHeaderValue(raw);
    }
    return this.#body;
  }

  get(header: string): string | undefined {
    if (header === '_body') return undefined;
    if (this.#raw) {
      const v = this.#member(header);
      return v === undefined ? undefined : jsonHeaderValue(v);
    }
    const doc = this.#doc;
    if (doc && !this.#headers) return Object.hasOwn(doc, header) ? jsonHeaderValue(doc[header]) : undefined;
    const v = this.#headers!.get(header);
    return this.#encoded && v !== undefined ? safeDecode(v) : v;
  }

  /** Channel variable `name` (header variable_<name>). */
  variable(name: string): string | undefined {
    return this.get(`variable_${name}`);
  }

  #member(key: string): unknown {
    // FreeSWITCH writes an event's headers, then the channel's variables (each once: they are the entries of one
    // list), then the Application-* headers of an execute event: those are nearer the end.
    const found = jsonMember(this.#raw!, key, key.startsWith('variable_') || key.startsWith('Application'));
    if (found !== NOT_FLAT) return found;
    this.#load();
    return Object.hasOwn(this.#doc!, key) ? this.#doc![key] : undefined;
  }
}

const EMPTY_DOC: Record<string, unknown> = {};
const NOT_FLAT = Symbol('not a plain string member');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEEDLES = new Map<string, Buffer>();
const PLAIN_KEY = /^[^"\\\u0000-\u001f]+$/;

/**
 * The string value of top-level member `key` in a flat JSON object (what FreeSWITCH's cJSON_PrintUnformatted writes
 * for an event), read from the bytes; undefined when there is no such member; NOT_FLAT when it cannot say (the value
 * is not a string, the key needs escaping) and the caller must parse the whole document.
 *
 * Why a byte search is exact: `"key":` preceded by `{` or `,` can only be a member name. Inside a JSON string every
 * `"` is escaped (preceded by a backslash), so a `"` right after `,` or `{` is never inside a string; and it cannot
 * be a closing quote either, since a closing quote is followed by `,` `:` `}` or `]`, not by the key's first letter.
 * The first occurrence wins (FreeSWITCH repeats only Hangup-Cause, with the same value); `fromEnd` searches from the
 * end instead, for the members FreeSWITCH writes last and only once (see EslEvent.get), so that finding them does not
 * scan the ~7-30 KB before them. For a member that occurs once, both find the same one.
 */
export function jsonMember(raw: Buffer, key: string, fromEnd = false): string | undefined | typeof NOT_FLAT {
  if (!PLAIN_KEY.test(key) || ',:}]'.includes(key[0]!)) return NOT_FLAT;
  let needle = NEEDLES.get(key);
  if (!needle) {
    needle = Buffer.from(`"${key}":`, 'utf8');
    if (NEEDLES.size < 4096) NEEDLES.set(key, needle);
  }
  let at: number;
  if (fromEnd) {
    at = raw.lastIndexOf(needle);
    while (at > 0 && raw[at - 1] !== 0x2c && !(at === 1 && raw[0] === 0x7b)) at = at > 1 ? raw.lastIndexOf(needle, at - 1) : -1;
  } else {
    at = raw.indexOf(needle);
    while (at > 0 && raw[at - 1] !== 0x2c && !(at === 1 && raw[0] === 0x7b)) at = raw.indexOf(needle, at + 1);
  }
  if (at <= 0) return undefined;
  const start = at + needle.length;
  if (raw[start] !== QUOTE) return NOT_FLAT;
  // The closing quote is the first one not escaped (preceded by an even number of backslashes).
  let end = raw.indexOf(QUOTE, start + 1);
  for (;;) {
    if (end < 0) return NOT_FLAT; // unterminated: let the full parse decide
    let backslashes = 0;
    while (raw[end - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) break;
    end = raw.indexOf(QUOTE, end + 1);
  }
  const slash = raw.indexOf(BACKSLASH, start + 1);
  const escaped = slash >= 0 && slash < end;
  const text = raw.toString('utf8', start + 1, end);
  if (!escaped) return text;
  try {
    return JSON.parse(`"${text}"`) as string;
  } catch {
    return NOT_FLAT;
  }
}

export type EslFrame =
  | { kind: 'command/reply'; reply: string; ok: boolean; headers: Headers; channelData: EslEvent | undefined }
  | { kind: 'api/response'; body: string; headers: Headers }
  | { kind: 'event'; event: EslEvent }
  | { kind: 'disconnect-notice'; disposition: string; headers: Headers; body: string }
  | { kind: 'log/data'; headers: Headers; body: string }
  | { kind: 'other'; contentType: string; headers: Headers; body: Buffer };

/** Types a raw frame. Throws EslError('ESL_PROTOCOL') for an unparseable event body. */
export function toFrame(raw: RawFrame): EslFrame {
  const type = raw.headers.get('Content-Type') ?? '';
  switch (type) {
    case 'command/reply': {
      // The connect reply is the CHANNEL_DATA event serialized url-encoded into the reply's own header block
      // (even Reply-Text reads %2BOK%0A); ordinary replies are written verbatim, so only decode that one.
      if (raw.headers.has('Event-Name')) {
        const channelData = EslEvent.urlEncoded(raw.headers);
        const reply = (channelData.get('Reply-Text') ?? '').trim();
        return {
          kind: type,
          reply,
          ok: reply.startsWith('+OK'),
          get headers() {
            return channelData.headers; // decoded
          },
          channelData,
        };
      }
      const reply = raw.headers.get('Reply-Text') ?? '';
      return { kind: type, reply, ok: !reply.startsWith('-ERR'), headers: raw.headers, channelData: undefined };
    }
    case 'api/response':
      return { kind: type, body: raw.body.toString('utf8'), headers: raw.headers };
    case 'text/event-plain':
      return { kind: 'event', event: parsePlainEvent(raw.body) };
    case 'text/event-json':
      return { kind: 'event', event: parseJsonEvent(raw.body) };
    case 'text/disconnect-notice':
      return {
        kind: 'disconnect-notice',
        disposition: raw.headers.get('Content-Disposition') ?? '',
        headers: raw.headers,
        body: raw.body.toString('utf8'),
      };
    case 'log/data':
      return { kind: 'log/data', headers: raw.headers, body: raw.body.toString('utf8') };
    default:
      return { kind: 'other', contentType: type, headers: raw.headers, body: raw.body };
  }
}

/** text/event-plain body: url-encoded header lines, then optionally "\n\n" + Content-Length bytes of event body. */
export function parsePlainEvent(body: Buffer): EslEvent {
  let end = body.indexOf('\n\n');
  if (end < 0) end = body.length;
  const headers = parseHeaderLines(body.subarray(0, end), true);
  if (headers.size === 0) throw protocol('empty text/event-plain body');
  const length = contentLength(headers, MAX_BODY_BYTES);
  let inner: string | undefined;
  if (headers.has('Content-Length')) {
    const start = end + 2;
    if (start + length > body.length) throw protocol('event body shorter than its Content-Length');
    inner = body.subarray(start, start + length).toString('utf8');
  }
  return new EslEvent(headers, inner, 'plain');
}

/**
 * Events the ESL layer and the flow only ever ask the name of. They are most of a call's events by count and bytes
 * (a CHANNEL_EXECUTE carries every channel variable): the server unsubscribes from them (nixevent).
 */
export const NAME_ONLY_EVENTS: readonly string[] = [
  'CHANNEL_EXECUTE',
  'DTMF',
  'CHANNEL_STATE',
  'CHANNEL_CALLSTATE',
  'CHANNEL_PARK',
  'CHANNEL_UNPARK',
  'CHANNEL_ANSWER',
  'CHANNEL_PROGRESS',
  'CHANNEL_PROGRESS_MEDIA',
  'CHANNEL_APPLICATION',
  'PLAYBACK_START',
  'PLAYBACK_STOP',
];
/** FreeSWITCH's cJSON writes Event-Name first, with no spaces: `{"Event-Name":"<[A-Z_]{1,64}>"` then `,` or `}`. */
const JSON_NAME_PREFIX = Buffer.from('{"Event-Name":"', 'latin1');

/** The event name at the start of a FreeSWITCH JSON event, read from the bytes; undefined if it is not there. */
function jsonEventName(body: Buffer): string | undefined {
  const p = JSON_NAME_PREFIX.length;
  for (let i = 0; i < p; i++) if (body[i] !== JSON_NAME_PREFIX[i]) return undefined;
  let end = p;
  for (; end < body.length && end - p <= 64; end++) {
    const c = body[end]!;
    if (!((c >= 0x41 && c <= 0x5a) || c === 0x5f)) break;
  }
  const after = body[end + 1];
  if (end === p || end - p > 64 || body[end] !== QUOTE || (after !== 0x2c && after !== 0x7d)) return undefined;
  return body.toString('latin1', p, end);
}

/**
 * text/event-json body: one JSON object of string values; `_body` holds the event body. FreeSWITCH's own output
 * (Event-Name first, no spaces) is read on demand (EslEvent.lazyJson); anything else is parsed at once and must be
 * a JSON object.
 */
export function parseJsonEvent(body: Buffer): EslEvent {
  const name = jsonEventName(body);
  if (name !== undefined) return EslEvent.lazyJson(name, body);
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new EslError('ESL_PROTOCOL', `bad text/event-json body: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw protocol('text/event-json body is not an object');
  return new EslEvent(doc as Record<string, unknown>, undefined, 'json'); // `body` reads _body from the document
}
