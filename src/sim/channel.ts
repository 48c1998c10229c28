/**
 * The IVR (socket) leg as FreeSWITCH describes it in events: state, caller profile, times, variables,
 * and the builders for every frame FreeSWITCH sends on the outbound socket. Header order follows the
 * recordings in test/fixtures/freeswitch (see README "Observations").
 */
import { randomUUID } from 'node:crypto';
import { cjsonString, fsUrlEncode, type HeaderList } from './codec.ts';
import { fsGmt, fsStamp, type VirtualClock } from './clock.ts';
import templates from './templates/fs-templates.json' with { type: 'json' };

export type EventFormat = 'plain' | 'json';
type Pairs = Array<[string, string]>;
/** One frame as pieces to write in order: per-event strings and cached Buffers shared between frames. */
export type FramePieces = Array<Buffer | string>;

/**
 * Headers serialized for one format, concatenable: json `,"k":"v"` per header (the leading comma of the
 * first header of an event is dropped by starting the body with `{"Event-Name":...`), plain `k: v\n`.
 */
function serPairs(pairs: Pairs, format: EventFormat): string {
  let s = '';
  if (format === 'json') for (const [k, v] of pairs) s += jsonKey(k) + cjsonString(v);
  else for (const [k, v] of pairs) s += `${k}: ${fsUrlEncode(v)}\n`;
  return s;
}

/** `,"name":` per header name (a small fixed set, serialized once). */
const JSON_KEYS = new Map<string, string>();
function jsonKey(k: string): string {
  let f = JSON_KEYS.get(k);
  if (f === undefined) {
    f = ',' + cjsonString(k) + ':';
    if (JSON_KEYS.size < 10_000) JSON_KEYS.set(k, f);
  }
  return f;
}

/** One header serialized like serPairs([[k, v]], format). */
function ser1(k: string, v: string, format: EventFormat): string {
  return format === 'json' ? jsonKey(k) + cjsonString(v) : `${k}: ${fsUrlEncode(v)}\n`;
}

/** Cache of serialized blocks that never change (Event-Calling-* per event, constant header runs). */
const STATIC_BLOCKS = new Map<string, string>();
function staticBlock(key: string, format: EventFormat, pairs: () => Pairs): string {
  const k = `${format}\0${key}`;
  let b = STATIC_BLOCKS.get(k);
  if (b === undefined) STATIC_BLOCKS.set(k, (b = serPairs(pairs(), format)));
  return b;
}

/** A frame from a serialized body: the header block with the body's byte length, as one Buffer. */
function frame(body: string, contentType: string): Buffer {
  return Buffer.from(`Content-Length: ${Buffer.byteLength(body, 'utf8')}\nContent-Type: ${contentType}\n\n${body}`, 'utf8');
}

/** The Event-Calling-* headers of an event kind (a key of CALLING), serialized once per format. */
const CALLING_BLOCKS: Record<EventFormat, Map<string, string>> = { json: new Map(), plain: new Map() };
function callingBlock(calling: string, format: EventFormat): string {
  const m = CALLING_BLOCKS[format];
  let b = m.get(calling);
  if (b === undefined) {
    const [file, fn, line] = CALLING[calling]!;
    const pairs: Pairs = [
      ['Event-Calling-File', file],
      ['Event-Calling-Function', fn],
      ['Event-Calling-Line-Number', line],
    ];
    m.set(calling, (b = serPairs(pairs, format)));
  }
  return b;
}

/** Event-Date-Local and Event-Date-GMT (whole seconds), for the last second asked. */
let secondAt = NaN;
let secondJson: string | undefined;
let secondPlain: string | undefined;
function secondBlock(us: number, format: EventFormat): string {
  const sec = Math.floor(us / 1e6);
  if (sec !== secondAt) {
    secondAt = sec;
    secondJson = secondPlain = undefined;
  }
  if (format === 'json') return (secondJson ??= ser1('Event-Date-Local', fsStamp(us), format) + ser1('Event-Date-GMT', fsGmt(us), format));
  return (secondPlain ??= ser1('Event-Date-Local', fsStamp(us), format) + ser1('Event-Date-GMT', fsGmt(us), format));
}

/** Event-Calling-File / Function / Line-Number per event, as recorded from FreeSWITCH 1.11. */
const CALLING: Record<string, [string, string, string]> = {
  CHANNEL_DATA: ['mod_event_socket.c', 'parse_command', '2029'],
  CHANNEL_PARK: ['switch_ivr.c', 'switch_ivr_park', '1002'],
  CHANNEL_UNPARK: ['switch_ivr.c', 'switch_ivr_park', '1213'],
  CHANNEL_EXECUTE: ['switch_core_session.c', 'switch_core_session_exec', '2949'],
  CHANNEL_EXECUTE_COMPLETE: ['switch_core_session.c', 'switch_core_session_exec', '2972'],
  CHANNEL_ANSWER: ['switch_channel.c', 'switch_channel_perform_mark_answered', '3848'],
  CHANNEL_BRIDGE: ['switch_ivr_bridge.c', 'switch_ivr_multi_threaded_bridge', '1689'],
  CHANNEL_UNBRIDGE: ['switch_ivr_bridge.c', 'switch_ivr_multi_threaded_bridge', '1879'],
  CHANNEL_HANGUP: ['switch_channel.c', 'switch_channel_perform_hangup', '3447'],
  CHANNEL_STATE: ['switch_channel.c', 'switch_channel_perform_set_running_state', '2409'],
  CHANNEL_HANGUP_COMPLETE: ['switch_core_state_machine.c', 'switch_core_session_reporting_state', '943'],
  DTMF: ['switch_channel.c', 'switch_channel_dequeue_dtmf', '678'],
};

const STATE_NUMBER: Record<string, string> = { CS_EXECUTE: '4', CS_HANGUP: '10', CS_REPORTING: '11' };

export interface Tokens {
  UUID: string;
  CORE_UUID: string;
  CALLER_LEG_UUID: string;
  CID_NUM: string;
  CID_NAME: string;
  DID: string;
  B_UUID?: string;
  DEST?: string;
}

/** Template text split at its {{TOKEN}}s: literal text at even indexes, token names at odd ones. */
const FILL_PARTS = new Map<string, string[]>();
const FILL_RE = /\{\{([A-Z_]+)\}\}/g;

export function fill(text: string, t: Tokens): string {
  let parts = FILL_PARTS.get(text);
  if (parts === undefined) {
    parts = [];
    let from = 0;
    for (const m of text.matchAll(FILL_RE)) {
      parts.push(text.slice(from, m.index), m[1]!);
      from = m.index! + m[0].length;
    }
    parts.push(text.slice(from));
    // templates are a fixed set; anything else (not expected) is not kept
    if (FILL_PARTS.size < 4096) FILL_PARTS.set(text, parts);
  }
  if (parts.length === 1) return text;
  let s = parts[0]!;
  for (let i = 1; i < parts.length; i += 2) {
    const k = parts[i]!;
    s += ((t as unknown as Record<string, string | undefined>)[k] ?? `{{${k}}}`) + parts[i + 1]!;
  }
  return s;
}

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

interface FixedRuns {
  chan1: string;
  /** profile(prefix) up to the callee, from Network-Addr to the times, from Last-Hold on. */
  Caller?: [string, string, string];
  Channel?: [string, string, string];
}

const codecPairs = (): Pairs => [
  ['Channel-Read-Codec-Name', 'PCMU'],
  ['Channel-Read-Codec-Rate', '8000'],
  ['Channel-Read-Codec-Bit-Rate', '64000'],
  ['Channel-Write-Codec-Name', 'PCMU'],
  ['Channel-Write-Codec-Rate', '8000'],
  ['Channel-Write-Codec-Bit-Rate', '64000'],
];

const TIME_NAMES = ['Answered', 'Progress', 'Progress-Media', 'Hangup', 'Transfer', 'Resurrect', 'Bridged'];
/** The profile's time headers per prefix, in order (profileText). */
const TIME_KEYS: Record<'Caller' | 'Channel', string[]> = {
  Caller: TIME_NAMES.map((n) => `Caller-Channel-${n}-Time`),
  Channel: TIME_NAMES.map((n) => `Channel-Channel-${n}-Time`),
};

/** Shared serialized forms of a template variable with a fixed value (one per template entry). */
const TEMPLATE_FRAGS = new WeakMap<object, VarFrag>();
function templateFrag(pair: [string, string]): VarFrag {
  let f = TEMPLATE_FRAGS.get(pair);
  if (!f) TEMPLATE_FRAGS.set(pair, (f = {}));
  return f;
}

export interface CallerIdentity {
  did: string;
  callerId: string;
  callerIdName: string;
  withheld: boolean;
}

export class Channel {
  readonly uuid: string;
  readonly coreUuid: string;
  readonly callerLegUuid = randomUUID();
  readonly name: string;
  state: 'CS_EXECUTE' | 'CS_HANGUP' | 'CS_REPORTING' = 'CS_EXECUTE';
  callState: 'RINGING' | 'ACTIVE' | 'HANGUP' = 'RINGING';
  answerState: 'ringing' | 'answered' | 'hangup' = 'ringing';
  hangupCause: string | undefined;
  readonly createdUs: number;
  answeredUs = 0;
  progressUs = 0;
  bridgedUs = 0;
  hangupUs = 0;
  callee: { name: string; number: string } | undefined;
  otherLeg: Pairs | undefined;
  readonly vars = new VarStore();
  seq: () => number;

  constructor(
    readonly clock: VirtualClock,
    readonly id: CallerIdentity,
    opts: { uuid?: string; coreUuid: string; seq: () => number },
  ) {
    this.uuid = opts.uuid ?? randomUUID();
    this.coreUuid = opts.coreUuid;
    this.seq = opts.seq;
    this.name = `sofia/access/${id.callerId}@127.0.0.1`;
    this.createdUs = clock.nowUs() - 20_000;
    const t = this.tokens();
    for (const pair of templates.vars.initial as Pairs) {
      const v = pair[1];
      if (v.includes('{{')) this.vars.put(pair[0], fill(v, t));
      else this.vars.put(pair[0], v, templateFrag(pair));
    }
    this.vars.put('sip_invite_stamp', String(this.createdUs));
    if (id.withheld) {
      this.vars.put('sip_from_user', 'anonymous');
      this.vars.put('sip_from_display', 'Anonymous');
    }
  }

  tokens(extra?: Partial<Tokens>): Tokens {
    return {
      UUID: this.uuid,
      CORE_UUID: this.coreUuid,
      CALLER_LEG_UUID: this.callerLegUuid,
      CID_NUM: this.id.callerId,
      CID_NAME: this.id.callerIdName,
      DID: this.id.did,
      ...extra,
    };
  }

  applyTemplate(stage: 'answer' | 'bridge' | 'hangup', extra?: Partial<Tokens>): void {
    const t = this.tokens(extra);
    for (const pair of (templates.vars as unknown as Record<string, Pairs>)[stage]!) {
      const v = pair[1];
      if (v.includes('{{')) this.vars.set(pair[0], fill(v, t));
      else this.vars.set(pair[0], v, templateFrag(pair));
    }
  }

  private core(name: string, callingKey = name): Pairs {
    const now = this.clock.nowUs();
    const [file, fn, line] = CALLING[callingKey] ?? CALLING.CHANNEL_EXECUTE!;
    return [
      ['Event-Name', name],
      ['Core-UUID', this.coreUuid],
      ['FreeSWITCH-Hostname', 'vm'],
      ['FreeSWITCH-Switchname', 'vm'],
      ['FreeSWITCH-IPv4', '192.0.2.2'],
      ['FreeSWITCH-IPv6', 'fd00::2'],
      ['Event-Date-Local', fsStamp(now)],
      ['Event-Date-GMT', fsGmt(now)],
      ['Event-Date-Timestamp', String(now)],
      ['Event-Calling-File', file],
      ['Event-Calling-Function', fn],
      ['Event-Calling-Line-Number', line],
      ['Event-Sequence', String(this.seq())],
    ];
  }

  /** Caller profile with the given prefix ("Caller" in events, "Channel" in the CHANNEL_DATA block). */
  private profile(prefix: string): Pairs {
    const { callerId, callerIdName, did, withheld } = this.id;
    const p: Pairs = [
      ['Direction', 'inbound'],
      ['Logical-Direction', 'inbound'],
      ['Username', callerId],
      ['Dialplan', 'XML'],
      ['Caller-ID-Name', callerIdName],
      ['Caller-ID-Number', callerId],
      ['Orig-Caller-ID-Name', callerIdName],
      ['Orig-Caller-ID-Number', callerId],
    ];
    if (this.callee && prefix === 'Caller')
      p.push(['Callee-ID-Name', this.callee.name], ['Callee-ID-Number', this.callee.number]);
    p.push(
      ['Network-Addr', '127.0.0.1'],
      ['ANI', callerId],
      ['Destination-Number', did],
      ['Unique-ID', this.uuid],
      ['Source', 'mod_sofia'],
      ['Context', 'public'],
      ['Channel-Name', this.name],
      ['Profile-Index', '1'],
      ['Profile-Created-Time', String(this.createdUs)],
      ['Channel-Created-Time', String(this.createdUs)],
      ['Channel-Answered-Time', String(this.answeredUs)],
      ['Channel-Progress-Time', String(this.progressUs)],
      ['Channel-Progress-Media-Time', '0'],
      ['Channel-Hangup-Time', String(this.state === 'CS_REPORTING' ? this.hangupUs : 0)],
      ['Channel-Transfer-Time', '0'],
      ['Channel-Resurrect-Time', '0'],
      ['Channel-Bridged-Time', String(this.bridgedUs)],
      ['Channel-Last-Hold', '0'],
      ['Channel-Hold-Accum', '0'],
      ['Screen-Bit', 'true'],
      ['Privacy-Hide-Name', String(withheld)],
      ['Privacy-Hide-Number', String(withheld)],
    );
    return p.map(([k, v]) => [`${prefix}-${k}`, v]);
  }

  private chan(): Pairs {
    const h: Pairs = [
      ['Channel-State', this.state],
      ['Channel-Call-State', this.callState],
      ['Channel-State-Number', STATE_NUMBER[this.state]!],
      ...this.fixedChanPairs(),
      ['Answer-State', this.answerState],
    ];
    if (this.hangupCause) h.push(['Hangup-Cause', this.hangupCause]);
    h.push(...codecPairs());
    return [...h, ...this.profile('Caller')];
  }

  private variables(): Pairs {
    return this.vars.entries().map(([k, v]) => [`variable_${k}`, v]);
  }

  /**
   * One channel event. `pre` goes right after the core headers (Bridge-A/B-Unique-ID, the first Hangup-Cause),
   * `post` after the variables (Application*, DTMF-*), as FreeSWITCH orders them.
   */
  event(name: string, opts: { pre?: Pairs; post?: Pairs; vars?: boolean; callingKey?: string } = {}): Pairs {
    return [
      ...this.core(name, opts.callingKey),
      ...(opts.pre ?? []),
      ...this.chan(),
      ...(this.otherLeg ?? []),
      ...(opts.vars === false ? [] : this.variables()),
      ...(opts.post ?? []),
    ];
  }

  /**
   * The same event as `event()`, serialized for the socket exactly as `serializeEvent(event(...), format)`,
   * as pieces to write in order (their concatenation is the frame): a small string with the frame header,
   * the core headers (constant runs, date per timestamp, Event-Calling-* per event) and `pre`; the cached
   * bytes of the channel/caller headers (per channel state), Other-Leg headers (per bridge) and variables
   * (until one changes); a small string with `post` and the end of the body.
   */
  eventPieces(name: string, format: EventFormat, opts: { pre?: Pairs; post?: Pairs; vars?: boolean; callingKey?: string } = {}): FramePieces {
    let head = this.coreBlock(name, format, opts.callingKey);
    if (opts.pre) head += serPairs(opts.pre, format);
    const chan = this.chanBuffer(format);
    const other = this.otherLeg ? this.otherLegBuffer(format) : undefined;
    const vars = opts.vars !== false ? this.vars.bytes(format) : undefined;
    const tail = (opts.post ? serPairs(opts.post, format) : '') + (format === 'json' ? '}' : '\n');
    const headBytes = Buffer.from(head, 'utf8');
    const len = headBytes.length + chan.length + (other?.length ?? 0) + (vars ? vars.length : 0) + Buffer.byteLength(tail, 'utf8');
    const out: FramePieces = [format === 'json' ? `Content-Length: ${len}\nContent-Type: text/event-json\n\n` : `Content-Length: ${len}\nContent-Type: text/event-plain\n\n`, headBytes];
    if (chan.length) out.push(chan);
    if (other?.length) out.push(other);
    if (vars) for (let i = 0; i < vars.list.length; i++) out.push(vars.list[i]!);
    out.push(tail);
    return out;
  }

  /** core() serialized; json starts the object (`{"Event-Name":...`, no leading comma). */
  private coreBlock(name: string, format: EventFormat, callingKey = name): string {
    const now = this.clock.nowUs();
    const json = format === 'json';
    const head = json ? `{"Event-Name":${cjsonString(name)}` : `Event-Name: ${fsUrlEncode(name)}\n`;
    const seq = String(this.seq());
    return (
      head +
      this.constBlock(format) +
      this.dateBlock(now, format) +
      callingBlock(CALLING[callingKey] ? callingKey : 'CHANNEL_EXECUTE', format) +
      (json ? `,"Event-Sequence":${cjsonString(seq)}` : `Event-Sequence: ${seq}\n`)
    );
  }

  private readonly constCache: Partial<Record<EventFormat, string>> = {};
  private constBlock(format: EventFormat): string {
    return (this.constCache[format] ??= serPairs(
      [
        ['Core-UUID', this.coreUuid],
        ['FreeSWITCH-Hostname', 'vm'],
        ['FreeSWITCH-Switchname', 'vm'],
        ['FreeSWITCH-IPv4', '192.0.2.2'],
        ['FreeSWITCH-IPv6', 'fd00::2'],
      ],
      format,
    ));
  }

  private dateUs = -1;
  private dateJson: string | undefined;
  private datePlain: string | undefined;
  private dateBlock(now: number, format: EventFormat): string {
    if (this.dateUs !== now) {
      this.dateUs = now;
      this.dateJson = this.datePlain = undefined;
    }
    if (format === 'json') return (this.dateJson ??= secondBlock(now, format) + ser1('Event-Date-Timestamp', String(now), format));
    return (this.datePlain ??= secondBlock(now, format) + ser1('Event-Date-Timestamp', String(now), format));
  }

  /** What chan() depends on, as of the cached chan block. */
  private chanAt = {
    state: '',
    callState: '',
    answerState: '',
    hangupCause: '',
    calleeName: '\u0001',
    calleeNumber: '',
    answeredUs: -1,
    progressUs: -1,
    hangupUs: -1,
    bridgedUs: -1,
  };
  private chanJson: Buffer | undefined;
  private chanPlain: Buffer | undefined;
  private chanBuffer(format: EventFormat): Buffer {
    const k = this.chanAt;
    const c = this.callee;
    const hangupCause = this.hangupCause || '';
    const calleeName = c ? c.name : '\u0001';
    const calleeNumber = c ? c.number : '';
    const hangupUs = this.state === 'CS_REPORTING' ? this.hangupUs : 0;
    if (
      k.state !== this.state ||
      k.callState !== this.callState ||
      k.answerState !== this.answerState ||
      k.hangupCause !== hangupCause ||
      k.calleeName !== calleeName ||
      k.calleeNumber !== calleeNumber ||
      k.answeredUs !== this.answeredUs ||
      k.progressUs !== this.progressUs ||
      k.hangupUs !== hangupUs ||
      k.bridgedUs !== this.bridgedUs
    ) {
      this.chanAt = {
        state: this.state,
        callState: this.callState,
        answerState: this.answerState,
        hangupCause,
        calleeName,
        calleeNumber,
        answeredUs: this.answeredUs,
        progressUs: this.progressUs,
        hangupUs,
        bridgedUs: this.bridgedUs,
      };
      this.chanJson = this.chanPlain = undefined;
    }
    if (format === 'json') return (this.chanJson ??= Buffer.from(this.chanText(format), 'utf8'));
    return (this.chanPlain ??= Buffer.from(this.chanText(format), 'utf8'));
  }

  /** The runs of chan()/profile() headers that are the same for the whole call, serialized per format. */
  private readonly fixed: Partial<Record<EventFormat, FixedRuns>> = {};
  private fixedRuns(format: EventFormat): FixedRuns {
    return (this.fixed[format] ??= {
      chan1: serPairs(this.fixedChanPairs(), format),
    });
  }

  /** The channel headers between the state and the answer state that never change during a call. */
  private fixedChanPairs(): Pairs {
    return [
      ['Channel-Name', this.name],
      ['Unique-ID', this.uuid],
      ['Call-Direction', 'inbound'],
      ['Presence-Call-Direction', 'inbound'],
      ['Channel-HIT-Dialplan', 'true'],
      ['Channel-Call-UUID', this.uuid],
    ];
  }

  /** profile(prefix) without the callee and the changing times, in three runs (cached per format). */
  private profileRuns(prefix: 'Caller' | 'Channel', format: EventFormat): [string, string, string] {
    const f = this.fixedRuns(format);
    const have = f[prefix];
    if (have) return have;
    const { callerId, callerIdName, did, withheld } = this.id;
    const created = String(this.createdUs);
    const hide = String(withheld);
    const p = `${prefix}-`;
    return (f[prefix] = [
      serPairs(
        [
          [`${p}Direction`, 'inbound'],
          [`${p}Logical-Direction`, 'inbound'],
          [`${p}Username`, callerId],
          [`${p}Dialplan`, 'XML'],
          [`${p}Caller-ID-Name`, callerIdName],
          [`${p}Caller-ID-Number`, callerId],
          [`${p}Orig-Caller-ID-Name`, callerIdName],
          [`${p}Orig-Caller-ID-Number`, callerId],
        ],
        format,
      ),
      serPairs(
        [
          [`${p}Network-Addr`, '127.0.0.1'],
          [`${p}ANI`, callerId],
          [`${p}Destination-Number`, did],
          [`${p}Unique-ID`, this.uuid],
          [`${p}Source`, 'mod_sofia'],
          [`${p}Context`, 'public'],
          [`${p}Channel-Name`, this.name],
          [`${p}Profile-Index`, '1'],
          [`${p}Profile-Created-Time`, created],
          [`${p}Channel-Created-Time`, created],
        ],
        format,
      ),
      serPairs(
        [
          [`${p}Channel-Last-Hold`, '0'],
          [`${p}Channel-Hold-Accum`, '0'],
          [`${p}Screen-Bit`, 'true'],
          [`${p}Privacy-Hide-Name`, hide],
          [`${p}Privacy-Hide-Number`, hide],
        ],
        format,
      ),
    ]);
  }

  /** serPairs(this.chan(), format), from cached runs of the headers that do not change during the call. */
  chanText(format: EventFormat): string {
    let s =
      ser1('Channel-State', this.state, format) +
      ser1('Channel-Call-State', this.callState, format) +
      ser1('Channel-State-Number', STATE_NUMBER[this.state]!, format) +
      this.fixedRuns(format).chan1 +
      ser1('Answer-State', this.answerState, format);
    if (this.hangupCause) s += ser1('Hangup-Cause', this.hangupCause, format);
    return s + staticBlock('codecs', format, codecPairs) + this.profileText('Caller', format);
  }

  /** serPairs(this.profile(prefix), format), likewise. */
  private profileText(prefix: 'Caller' | 'Channel', format: EventFormat): string {
    const [r1, r2, r3] = this.profileRuns(prefix, format);
    let s = r1;
    if (this.callee && prefix === 'Caller')
      s += ser1('Caller-Callee-ID-Name', this.callee.name, format) + ser1('Caller-Callee-ID-Number', this.callee.number, format);
    const t = TIME_KEYS[prefix];
    return (
      s +
      r2 +
      ser1(t[0], String(this.answeredUs), format) +
      ser1(t[1], String(this.progressUs), format) +
      ser1(t[2], '0', format) +
      ser1(t[3], String(this.state === 'CS_REPORTING' ? this.hangupUs : 0), format) +
      ser1(t[4], '0', format) +
      ser1(t[5], '0', format) +
      ser1(t[6], String(this.bridgedUs), format) +
      r3
    );
  }

  private otherLegCache = { ref: undefined as Pairs | undefined, json: undefined as Buffer | undefined, plain: undefined as Buffer | undefined };
  private otherLegBuffer(format: EventFormat): Buffer {
    if (this.otherLegCache.ref !== this.otherLeg) this.otherLegCache = { ref: this.otherLeg, json: undefined, plain: undefined };
    return (this.otherLegCache[format] ??= Buffer.from(serPairs(this.otherLeg ?? [], format), 'utf8'));
  }

  /** The `connect` reply: CHANNEL_DATA as one header block, then the command/reply headers (observation 1). */
  connectReply(): Buffer {
    const body =
      this.coreBlock('CHANNEL_DATA', 'plain') +
      this.profileText('Channel', 'plain') +
      this.chanText('plain') +
      this.vars.block('plain') +
      staticBlock('connectTail', 'plain', () => templates.connectTail as Pairs) +
      '\n';
    return Buffer.from(body, 'utf8');
  }
}

/** Serializes an event for the socket in the subscribed format (observation 2). */
export function serializeEvent(headers: Pairs, format: EventFormat): Buffer {
  if (format === 'json') {
    const [first, ...rest] = headers;
    const body = first ? '{' + cjsonString(first[0]) + ':' + cjsonString(first[1]) + serPairs(rest, 'json') + '}' : '{}';
    return frame(body, 'text/event-json');
  }
  return frame(serPairs(headers, 'plain') + '\n', 'text/event-plain');
}

export function commandReply(text: string): Buffer {
  return Buffer.from(`Content-Type: command/reply\nReply-Text: ${text}\n\n`);
}

export function apiResponse(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`Content-Type: api/response\nContent-Length: ${body.length}\n\n`), body]);
}

export const DISCONNECT_BODY = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';

export function lingerNotice(ch: Channel): Buffer {
  return Buffer.from(
    `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: linger\n` +
      `Channel-Name: ${ch.name}\nLinger-Time: -1\nContent-Length: 0\n\n`,
  );
}

export function disconnectNotice(ch: Channel): Buffer {
  return Buffer.from(
    `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: disconnect\n` +
      `Content-Length: ${Buffer.byteLength(DISCONNECT_BODY)}\n\n${DISCONNECT_BODY}`,
  );
}
