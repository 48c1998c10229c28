/** A channel's variables, kept with their serialized `variable_<name>` headers so an event's block is cheap to build. */
import { cjsonString, fsUrlEncode } from './codec.ts';
import type { EventFormat, Pairs } from './frames.ts';

/** One variable with its serialized `variable_<name>` header per format (computed when first needed). */
class VarEntry {
  json: string | undefined = undefined;
  plain: string | undefined = undefined;
  /** Serialized forms shared by every call (a template value), when `v` is that value. */
  f: VarFrag | undefined = undefined;
  /** Removed or moved to the end since its chunk was built (the chunk drops it when re-encoded). */
  dead = false;

  constructor(
    readonly k: string,
    public v: string,
    public chunk: VarChunk,
  ) {}
}

/** The serialized `variable_<name>` header of one name and value, shared between calls. */
export interface VarFrag {
  json?: string;
  plain?: string;
}

/**
 * A run of consecutive variables with their serialized bytes per format, dropped when one of them changes. An
 * event's variable block is the concatenation of the chunks, so a change re-encodes one small chunk, not the
 * whole block (which after a bridge holds b_leg_cdr twice, ~25 KB).
 */
class VarChunk {
  entries: VarEntry[] = [];
  dead = 0;
  json: Buffer | undefined = undefined;
  plain: Buffer | undefined = undefined;
  /** A chunk of one large value: its bytes are name (json/plain) then value (these), shared by equal values. */
  jsonValue: Buffer | undefined = undefined;
  plainValue: Buffer | undefined = undefined;

  /** closed: no more appends (full, or one large value on its own). */
  constructor(public closed: boolean) {}
}

/** Entries per chunk; values longer than BIG_VALUE get a chunk of their own. */
const CHUNK = 16;
const BIG_VALUE = 256;

/** `,"variable_<name>":` per variable name. */
const JSON_VAR_KEYS = new Map<string, string>();
function jsonVarKey(k: string): string {
  let f = JSON_VAR_KEYS.get(k);
  if (f === undefined) {
    f = ',' + cjsonString(`variable_${k}`) + ':';
    if (JSON_VAR_KEYS.size < 10_000) JSON_VAR_KEYS.set(k, f);
  }
  return f;
}
function jsonVar(e: VarEntry): string {
  if (e.json !== undefined) return e.json;
  const f = e.f;
  return (e.json = f ? (f.json ??= jsonVarKey(e.k) + cjsonString(e.v)) : jsonVarKey(e.k) + cjsonString(e.v));
}
function plainVar(e: VarEntry): string {
  if (e.plain !== undefined) return e.plain;
  const f = e.f;
  return (e.plain = f ? (f.plain ??= `variable_${e.k}: ${fsUrlEncode(e.v)}\n`) : `variable_${e.k}: ${fsUrlEncode(e.v)}\n`);
}

/**
 * The last large value encoded, per format (b_leg_cdr and b_leg_cdr_<uuid> hold the same ~10 KB JSON): its
 * serialized value and bytes, reused when the next large value is the same string.
 */
const lastBig = {
  json: { v: '', bytes: Buffer.alloc(0) },
  plain: { v: '', bytes: Buffer.alloc(0) },
};
function bigValueBytes(v: string, format: EventFormat): Buffer {
  const c = lastBig[format];
  if (c.v !== v) {
    c.bytes = Buffer.from(format === 'json' ? cjsonString(v) : `${fsUrlEncode(v)}\n`, 'utf8');
    c.v = v;
  }
  return c.bytes;
}

/**
 * Ordered channel variables; setting a variable moves it to the end like switch_channel_set_variable.
 * Keeps the serialized variable block per format until a variable changes (most events of a call carry
 * the same variables), and its bytes in chunks so that a change re-encodes only the chunks it touches.
 */
export class VarStore {
  private readonly map = new Map<string, VarEntry>();
  private chunks: VarChunk[] = [];
  private version = 0;
  private jsonVersion = -1;
  private jsonBlock = '';
  private plainVersion = -1;
  private plainBlock = '';
  private jsonBytesVersion = -1;
  private jsonBytes: VarBytes = { list: [], length: 0 };
  private plainBytesVersion = -1;
  private plainBytes: VarBytes = { list: [], length: 0 };

  private kill(e: VarEntry): void {
    e.dead = true;
    const c = e.chunk;
    c.dead++;
    c.json = c.plain = c.jsonValue = c.plainValue = undefined;
  }

  private append(k: string, v: string, from?: VarEntry, frag?: VarFrag): void {
    let c = this.chunks[this.chunks.length - 1];
    const big = v.length > BIG_VALUE;
    if (!c || c.closed || big) {
      c = new VarChunk(big);
      this.chunks.push(c);
    } else c.json = c.plain = c.jsonValue = c.plainValue = undefined;
    const e = new VarEntry(k, v, c);
    if (from) {
      e.json = from.json;
      e.plain = from.plain;
      e.f = from.f;
    } else if (frag) e.f = frag;
    c.entries.push(e);
    if (c.entries.length >= CHUNK) c.closed = true;
    this.map.set(k, e);
  }

  /** `frag`: shared serialized forms of exactly this name and value (template variables). */
  set(name: string, value: string | undefined, frag?: VarFrag): void {
    const old = this.map.get(name);
    if (old) {
      this.map.delete(name);
      this.kill(old);
    }
    if (value !== undefined) this.append(name, value, old && old.v === value ? old : undefined, frag);
    if (old || value !== undefined) this.version++;
  }
  /** Sets without moving an existing variable (for template batches). */
  put(name: string, value: string, frag?: VarFrag): void {
    const old = this.map.get(name);
    if (old && old.v === value) return;
    if (old) {
      old.v = value;
      old.json = old.plain = undefined;
      old.f = frag;
      old.chunk.json = old.chunk.plain = old.chunk.jsonValue = old.chunk.plainValue = undefined;
    } else this.append(name, value, undefined, frag);
    this.version++;
  }
  get(name: string): string | undefined {
    return this.map.get(name)?.v;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  entries(): Pairs {
    return Array.from(this.map.values(), (e) => [e.k, e.v] as [string, string]);
  }
  /** [name, value] of the variables named in `names`, in order. */
  pick(names: ReadonlySet<string>): Pairs {
    const out: Pairs = [];
    for (const e of this.map.values()) if (names.has(e.k)) out.push([e.k, e.v]);
    return out;
  }
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (const e of this.map.values()) o[e.k] = e.v;
    return o;
  }

  /** The `variable_*` headers serialized like serializeEvent does (json: each with a leading comma). */
  block(format: EventFormat): string {
    if (format === 'json') {
      if (this.jsonVersion !== this.version) {
        let s = '';
        for (const e of this.map.values()) s += jsonVar(e);
        this.jsonBlock = s;
        this.jsonVersion = this.version;
      }
      return this.jsonBlock;
    }
    if (this.plainVersion !== this.version) {
      let s = '';
      for (const e of this.map.values()) s += plainVar(e);
      this.plainBlock = s;
      this.plainVersion = this.version;
    }
    return this.plainBlock;
  }

  /** block() as UTF-8 bytes in pieces (one per chunk), kept until a variable changes. */
  bytes(format: EventFormat): VarBytes {
    const json = format === 'json';
    if ((json ? this.jsonBytesVersion : this.plainBytesVersion) === this.version) return json ? this.jsonBytes : this.plainBytes;
    const chunks = this.chunks;
    let live = 0;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!;
      live += c.entries.length - c.dead;
    }
    // many small or emptied chunks (variables moved to the end one by one): regroup them
    if (chunks.length > 2 * Math.ceil(live / CHUNK) + 4) this.regroup();
    const list: Buffer[] = [];
    let length = 0;
    let w = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      if (c.dead) {
        c.entries = c.entries.filter((e) => !e.dead);
        c.dead = 0;
      }
      if (!c.entries.length) continue;
      this.chunks[w++] = c;
      let b = json ? c.json : c.plain;
      let bv = json ? c.jsonValue : c.plainValue;
      if (!b) {
        const es = c.entries;
        if (es.length === 1 && es[0]!.v.length > BIG_VALUE) {
          // name, then the value's bytes (shared with an equal value just before)
          const e = es[0]!;
          b = Buffer.from(json ? jsonVarKey(e.k) : `variable_${e.k}: `, 'utf8');
          bv = bigValueBytes(e.v, format);
        } else {
          let s = '';
          if (json) for (let j = 0; j < es.length; j++) s += jsonVar(es[j]!);
          else for (let j = 0; j < es.length; j++) s += plainVar(es[j]!);
          b = Buffer.from(s, 'utf8');
          bv = undefined;
        }
        if (json) {
          c.json = b;
          c.jsonValue = bv;
        } else {
          c.plain = b;
          c.plainValue = bv;
        }
      }
      if (b.length) {
        list.push(b);
        length += b.length;
      }
      if (bv?.length) {
        list.push(bv);
        length += bv.length;
      }
    }
    this.chunks.length = w;
    const out = { list, length };
    if (json) {
      this.jsonBytes = out;
      this.jsonBytesVersion = this.version;
    } else {
      this.plainBytes = out;
      this.plainBytesVersion = this.version;
    }
    return out;
  }

  private regroup(): void {
    const out: VarChunk[] = [];
    let t: VarChunk | undefined;
    for (const c of this.chunks) {
      if (c.closed && !c.dead && c.entries.length === 1 && c.entries[0]!.v.length > BIG_VALUE) {
        // a large value alone in its chunk: keep the chunk and its bytes
        out.push(c);
        t = undefined;
        continue;
      }
      for (const e of c.entries) {
        if (e.dead) continue;
        if (e.v.length > BIG_VALUE) {
          const b = new VarChunk(true);
          b.entries.push(e);
          e.chunk = b;
          out.push(b);
          t = undefined;
          continue;
        }
        if (!t || t.closed) out.push((t = new VarChunk(false)));
        e.chunk = t;
        t.entries.push(e);
        if (t.entries.length >= CHUNK) t.closed = true;
      }
    }
    this.chunks = out;
  }
}

/** A variable block as bytes: the pieces to write in order and their total length. */
export interface VarBytes {
  list: Buffer[];
  length: number;
}
