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

/** Ordered channel variables; setting a variable moves it to the end like switch_channel_set_variable. */
export class VarStore {
  private readonly map = new Map<string, string>();
  set(name: string, value: string | undefined): void {
    this.map.delete(name);
    if (value !== undefined) this.map.set(name, value);
  }
  /** Sets without moving an existing variable (for template batches). */
  put(name: string, value: string): void {
    this.map.set(name, value);
  }
  get(name: string): string | undefined {
    return this.map.get(name);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  entries(): Pairs {
    return [...this.map];
  }
  toObject(): Record<string, string> {
    return Object.fromEntries(this.map);
  }
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
    for (const [k, v] of templates.vars.initial as Pairs) this.vars.put(k, fill(v, this.tokens()));
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
    for (const [k, v] of (templates.vars as unknown as Record<string, Pairs>)[stage]!) this.vars.set(k, fill(v, t));
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

  /** The `connect` reply: CHANNEL_DATA as one header block, then the command/reply headers (observation 1). */
  connectReply(): Buffer {
    const h: Pairs = [
      ...this.core('CHANNEL_DATA'),
      ...this.profile('Channel'),
      ...this.chan(),
      ...this.variables(),
      ...(templates.connectTail as Pairs),
    ];
    return Buffer.from(h.map(([k, v]) => `${k}: ${fsUrlEncode(v)}\n`).join('') + '\n', 'utf8');
  }
}

/** Serializes an event for the socket in the subscribed format (observation 2). */
export function serializeEvent(headers: Pairs, format: EventFormat): Buffer {
  if (format === 'json') {
    const body = Buffer.from('{' + headers.map(([k, v]) => `${cjsonString(k)}:${cjsonString(v)}`).join(',') + '}', 'utf8');
    return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\nContent-Type: text/event-json\n\n`), body]);
  }
  const body = Buffer.from(headers.map(([k, v]) => `${k}: ${fsUrlEncode(v)}\n`).join('') + '\n', 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\nContent-Type: text/event-plain\n\n`), body]);
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
