/**
 * Wire encoding exactly as FreeSWITCH produces it: switch_url_encode for event-plain header values
 * (an existing %XX is NOT re-encoded, README observation 14), cJSON-style strings for event-json,
 * and the frame splitter used to read what the ESL client sends.
 */

const URL_UNSAFE = new Set('\r\n \t"#%&+:;<=>?@[\\]^`{|}'.split(''));
const HEX = '0123456789ABCDEF';

/** 1 for an ASCII code unit switch_url_encode() escapes (control, DEL, the unsafe set). */
const ESCAPE = new Uint8Array(128);
for (let c = 0; c < 128; c++) ESCAPE[c] = c < 0x20 || c > 0x7e || URL_UNSAFE.has(String.fromCharCode(c)) ? 1 : 0;
/** Uppercase hex digit (switch_url_encode keeps "%XX" only for these). */
const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46);

/** switch_url_encode(): bytes outside ' '..'~' and the unsafe set become %XX; a valid "%XX" is kept as is. */
export function fsUrlEncode(value: string): string {
  // ASCII fast path (byte i == code unit i); anything else goes through the byte-wise encoder.
  const n = value.length;
  let out = '';
  let from = 0;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x80) return fsUrlEncodeBytes(value);
    if (ESCAPE[c] === 0) continue;
    if (c === 0x25 && i + 2 < n && isHex(value.charCodeAt(i + 1)) && isHex(value.charCodeAt(i + 2))) continue;
    out += value.slice(from, i) + '%' + HEX[c >> 4]! + HEX[c & 15]!;
    from = i + 1;
  }
  return from === 0 ? value : out + value.slice(from);
}

/** The byte-wise switch_url_encode() on the UTF-8 bytes of `value` (reference; used for non-ASCII values). */
export function fsUrlEncodeBytes(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const ch = String.fromCharCode(b);
    if (
      ch === '%' &&
      i + 2 < bytes.length &&
      HEX.includes(String.fromCharCode(bytes[i + 1] ?? 0)) &&
      HEX.includes(String.fromCharCode(bytes[i + 2] ?? 0))
    ) {
      out += ch;
      continue;
    }
    if (b < 0x20 || b > 0x7e || URL_UNSAFE.has(ch)) out += '%' + HEX[b >> 4]! + HEX[b & 15]!;
    else out += ch;
  }
  return out;
}

/** Lenient percent-decoding (what an ESL client does); malformed escapes are kept literally. */
export function fsUrlDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const wellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !LONE_SURROGATE.test(s);

/**
 * cJSON string escaping (cJSON_PrintUnformatted): only quote, backslash and control characters
 * (\b \f \n \r \t, \u00xx for the other ones below 0x20), everything else raw. For well-formed strings
 * JSON.stringify produces exactly that (test/sim/codec.test.ts checks it over every code point); a lone
 * surrogate, which JSON.stringify would escape, goes through the character loop instead.
 */
export function cjsonString(value: string): string {
  return quotedAsIs(value) ?? (wellFormed(value) ? JSON.stringify(value) : cjsonStringLoop(value));
}

/**
 * A short string with nothing any JSON writer would escape (no control character, quote, backslash or surrogate),
 * quoted as it is; undefined otherwise. Most header values: it skips JSON.stringify's call for them.
 */
export function quotedAsIs(value: string): string | undefined {
  const n = value.length;
  if (n > 64) return undefined;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return undefined;
  }
  return '"' + value + '"';
}

/** The character-by-character cJSON escaping (reference, and the path for strings with lone surrogates). */
export function cjsonStringLoop(value: string): string {
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

export type HeaderList = Array<[string, string]>;

/** One ESL frame as received: header block (raw values) and optional body (Content-Length). */
export interface RawFrame {
  headers: HeaderList;
  body: Buffer | undefined;
  raw: Buffer;
}

const LFLF = Buffer.from('\n\n');

/** Splits a byte stream into ESL frames: header block up to a blank line, then Content-Length bytes of body. */
export class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RawFrame[] {
    const buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: RawFrame[] = [];
    let at = 0;
    for (;;) {
      const end = buf.indexOf(LFLF, at);
      if (end < 0) break;
      const headers = parseHeaderBlock(buf.toString('utf8', at, end));
      const len = Number(header(headers, 'content-length') ?? '0');
      const total = end + 2 + (Number.isFinite(len) && len > 0 ? len : 0);
      if (buf.length < total) break;
      const body = total > end + 2 ? buf.subarray(end + 2, total) : undefined;
      out.push({ headers, body, raw: buf.subarray(at, total) });
      at = total;
    }
    this.buf = at === 0 ? buf : buf.subarray(at);
    return out;
  }
}

export function parseHeaderBlock(text: string): HeaderList {
  const out: HeaderList = [];
  for (const line of text.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (!l) continue;
    const i = l.indexOf(':');
    if (i < 0) out.push([l.trim(), '']);
    else out.push([l.slice(0, i).trim(), l.slice(i + 1).trim()]);
  }
  return out;
}

const NON_ASCII = /[^\x00-\x7f]/;

export function header(h: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase();
  for (let i = 0; i < h.length; i++) {
    const k = h[i]![0];
    // (a different length can still match when lower-casing changes it, which takes a non-ASCII character)
    if (k === n || ((k.length === n.length || NON_ASCII.test(k)) && k.toLowerCase() === n)) return h[i]![1];
  }
  return undefined;
}
