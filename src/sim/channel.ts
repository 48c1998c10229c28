/**
 * The IVR (socket) leg as FreeSWITCH describes it in events: state, caller profile, times, variables
 * (var-store.ts), serialized as frames.ts does. Header order follows the recordings in test/fixtures/freeswitch
 * (see README "Observations").
 */
import { randomUUID } from 'node:crypto';
import { cjsonString, fsUrlEncode } from './codec.ts';
import { fsGmt, fsStamp, type VirtualClock } from './clock.ts';
import templates from './templates/fs-templates.json' with { type: 'json' };
import {
  CALLING,
  callingBlock,
  frame,
  secondBlock,
  ser1,
  serializeEvent,
  serPairs,
  staticBlock,
  STATE_NUMBER,
  type EventFormat,
  type FramePieces,
  type Pairs,
} from './frames.ts';
import { fill, type Tokens } from './tokens.ts';
import { VarStore, type VarFrag } from './var-store.ts';

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
