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
  if (format === 'json') for (const [k, v] of pairs) s += ',' + cjsonString(k) + ':' + cjsonString(v);
  else for (const [k, v] of pairs) s += `${k}: ${fsUrlEncode(v)}\n`;
  return s;
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

export function fill(text: string, t: Tokens): string {
  return text.replace(/\{\{([A-Z_]+)\}\}/g, (m, k: string) => (t as unknown as Record<string, string>)[k] ?? m);
}

/** One variable with its serialized `variable_<name>` header per format (computed when first needed). */
interface VarEntry {
  k: string;
  v: string;
  json?: string;
  plain?: string;
  /** Removed or moved to the end since its chunk was built (the chunk drops it when re-encoded). */
  dead?: boolean;
  chunk: VarChunk;
}

/**
 * A run of consecutive variables with their serialized bytes per format, dropped when one of them changes. An
 * event's variable block is the concatenation of the chunks, so a change re-encodes one small chunk, not the
 * whole block (which after a bridge holds b_leg_cdr twice, ~25 KB).
 */
interface VarChunk {
  entries: VarEntry[];
  dead: number;
  /** Closed to appends (full, or one large value on its own). */
  closed: boolean;
  json?: Buffer;
  plain?: Buffer;
}

/** Entries per chunk; values longer than BIG_VALUE get a chunk of their own. */
const CHUNK = 16;
const BIG_VALUE = 256;

const jsonVar = (e: VarEntry) => (e.json ??= ',' + cjsonString(`variable_${e.k}`) + ':' + cjsonString(e.v));
const plainVar = (e: VarEntry) => (e.plain ??= `variable_${e.k}: ${fsUrlEncode(e.v)}\n`);

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
    c.json = c.plain = undefined;
  }

  private append(k: string, v: string, from?: VarEntry): void {
    let c = this.chunks[this.chunks.length - 1];
    const big = v.length > BIG_VALUE;
    if (!c || c.closed || big) {
      c = { entries: [], dead: 0, closed: big };
      this.chunks.push(c);
    } else c.json = c.plain = undefined;
    const e: VarEntry = { k, v, chunk: c };
    if (from) {
      e.json = from.json;
      e.plain = from.plain;
    }
    c.entries.push(e);
    if (c.entries.length >= CHUNK) c.closed = true;
    this.map.set(k, e);
  }

  set(name: string, value: string | undefined): void {
    const old = this.map.get(name);
    if (old) {
      this.map.delete(name);
      this.kill(old);
    }
    if (value !== undefined) this.append(name, value, old && old.v === value ? old : undefined);
    if (old || value !== undefined) this.version++;
  }
  /** Sets without moving an existing variable (for template batches). */
  put(name: string, value: string): void {
    const old = this.map.get(name);
    if (old && old.v === value) return;
    if (old) {
      old.v = value;
      old.json = old.plain = undefined;
      old.chunk.json = old.chunk.plain = undefined;
    } else this.append(name, value);
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
      if (!b) {
        let s = '';
        const es = c.entries;
        if (json) for (let j = 0; j < es.length; j++) s += jsonVar(es[j]!);
        else for (let j = 0; j < es.length; j++) s += plainVar(es[j]!);
        b = Buffer.from(s, 'utf8');
        if (json) c.json = b;
        else c.plain = b;
      }
      if (b.length) {
        list.push(b);
        length += b.length;
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
          const b: VarChunk = { entries: [e], dead: 0, closed: true };
          e.chunk = b;
          out.push(b);
          t = undefined;
          continue;
        }
        if (!t || t.closed) out.push((t = { entries: [], dead: 0, closed: false }));
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
    for (const [k, v] of templates.vars.initial as Pairs) this.vars.put(k, v.includes('{{') ? fill(v, t) : v);
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
    for (const [k, v] of (templates.vars as unknown as Record<string, Pairs>)[stage]!) this.vars.set(k, v.includes('{{') ? fill(v, t) : v);
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
      ['Channel-Name', this.name],
      ['Unique-ID', this.uuid],
      ['Call-Direction', 'inbound'],
      ['Presence-Call-Direction', 'inbound'],
      ['Channel-HIT-Dialplan', 'true'],
      ['Channel-Call-UUID', this.uuid],
      ['Answer-State', this.answerState],
    ];
    if (this.hangupCause) h.push(['Hangup-Cause', this.hangupCause]);
    h.push(
      ['Channel-Read-Codec-Name', 'PCMU'],
      ['Channel-Read-Codec-Rate', '8000'],
      ['Channel-Read-Codec-Bit-Rate', '64000'],
      ['Channel-Write-Codec-Name', 'PCMU'],
      ['Channel-Write-Codec-Rate', '8000'],
      ['Channel-Write-Codec-Bit-Rate', '64000'],
    );
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
    const len = Buffer.byteLength(head, 'utf8') + chan.length + (other?.length ?? 0) + (vars ? vars.length : 0) + Buffer.byteLength(tail, 'utf8');
    const type = format === 'json' ? 'text/event-json' : 'text/event-plain';
    const out: FramePieces = [`Content-Length: ${len}\nContent-Type: ${type}\n\n${head}`];
    if (chan.length) out.push(chan);
    if (other?.length) out.push(other);
    if (vars) for (let i = 0; i < vars.list.length; i++) out.push(vars.list[i]!);
    out.push(tail);
    return out;
  }

  /** core() serialized; json starts the object (`{"Event-Name":...`, no leading comma). */
  private coreBlock(name: string, format: EventFormat, callingKey = name): string {
    const now = this.clock.nowUs();
    const calling = CALLING[callingKey] ? callingKey : 'CHANNEL_EXECUTE';
    const head =
      format === 'json' ? `{"Event-Name":${cjsonString(name)}` : `Event-Name: ${fsUrlEncode(name)}\n`;
    const seq = String(this.seq());
    return (
      head +
      this.constBlock(format) +
      this.dateBlock(now, format) +
      staticBlock(`calling:${calling}`, format, () => {
        const [file, fn, line] = CALLING[calling]!;
        return [
          ['Event-Calling-File', file],
          ['Event-Calling-Function', fn],
          ['Event-Calling-Line-Number', line],
        ];
      }) +
      (format === 'json' ? `,"Event-Sequence":${cjsonString(seq)}` : `Event-Sequence: ${seq}\n`)
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

  private dateCache = { us: -1, json: undefined as string | undefined, plain: undefined as string | undefined };
  private dateBlock(now: number, format: EventFormat): string {
    if (this.dateCache.us !== now) this.dateCache = { us: now, json: undefined, plain: undefined };
    return (this.dateCache[format] ??= serPairs(
      [
        ['Event-Date-Local', fsStamp(now)],
        ['Event-Date-GMT', fsGmt(now)],
        ['Event-Date-Timestamp', String(now)],
      ],
      format,
    ));
  }

  /** Everything chan() depends on. */
  private chanKey(): string {
    const c = this.callee;
    return (
      `${this.state}\0${this.callState}\0${this.answerState}\0${this.hangupCause || ''}\0` +
      `${c ? `${c.name}\0${c.number}` : '\u0001\0'}\0${this.answeredUs}\0${this.progressUs}\0` +
      `${this.state === 'CS_REPORTING' ? this.hangupUs : 0}\0${this.bridgedUs}`
    );
  }
  private chanCache = { key: '', json: undefined as Buffer | undefined, plain: undefined as Buffer | undefined };
  private chanBuffer(format: EventFormat): Buffer {
    const key = this.chanKey();
    if (this.chanCache.key !== key) this.chanCache = { key, json: undefined, plain: undefined };
    return (this.chanCache[format] ??= Buffer.from(serPairs(this.chan(), format), 'utf8'));
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
      serPairs(this.profile('Channel'), 'plain') +
      serPairs(this.chan(), 'plain') +
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
