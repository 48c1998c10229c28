/**
 * Wire encoding exactly as FreeSWITCH produces it: switch_url_encode for event-plain header values
 * (an existing %XX is NOT re-encoded, README observation 14), cJSON-style strings for event-json,
 * and the frame splitter used to read what the ESL client sends.
 */

const URL_UNSAFE = new Set('\r\n \t"#%&+:;<=>?@[\\]^`{|}'.split(''));
const HEX = '0123456789ABCDEF';

/** switch_url_encode(): bytes outside ' '..'~' and the unsafe set become %XX; a valid "%XX" is kept as is. */
export function fsUrlEncode(value: string): string {
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

/** cJSON string escaping (cJSON_PrintUnformatted): only quote, backslash and control characters. */
export function cjsonString(value: string): string {
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

/** Splits a byte stream into ESL frames: header block up to a blank line, then Content-Length bytes of body. */
export class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RawFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: RawFrame[] = [];
    for (;;) {
      const end = this.buf.indexOf('\n\n');
      if (end < 0) break;
      const headers = parseHeaderBlock(this.buf.subarray(0, end).toString('utf8'));
      const len = Number(headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1] ?? '0');
      const total = end + 2 + (Number.isFinite(len) && len > 0 ? len : 0);
      if (this.buf.length < total) break;
      const body = total > end + 2 ? this.buf.subarray(end + 2, total) : undefined;
      out.push({ headers, body, raw: this.buf.subarray(0, total) });
      this.buf = this.buf.subarray(total);
    }
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

export function header(h: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase();
  return h.find(([k]) => k.toLowerCase() === n)?.[1];
}
