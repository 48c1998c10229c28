/**
 * The typed call API over one outbound socket: implements the flow's Call (src/flow/call.ts).
 */
import type { Logger } from 'pino';
import type {
  BridgeRequest,
  BridgeResult,
  Call,
  CapRearm,
  CallInfo,
  CarrierCdr,
  DigitsRequest,
  DigitsResult,
  SayType,
} from '../flow/call.ts';
import { checkLine, hangupCauseOrDefault, multisetArg, pagdArg, sayArg, sendmsgHangup, setArg } from './commands.ts';
import type { EslConnection } from './connection.ts';
import { EslError, isEslError } from './errors.ts';
import { EslEvent, safeDecode } from './parser.ts';
import { deviceClaimsFrom, type DeviceClaims } from '../flow/device.ts';

export interface CallTimeouts {
  answerMs: number;
  setMs: number;
  /** playback and say */
  mediaMs: number;
  /** Added to the PAGD's own worst case (tries x (timeout + digitTimeout x max)) to cover the prompts. */
  pagdMarginMs: number;
  /** How long bridge keeps waiting after CHANNEL_HANGUP for UNBRIDGE / EXECUTE_COMPLETE(bridge) and b_leg_cdr. */
  bridgeHangupGraceMs: number;
  hangupMs: number;
}

export const DEFAULT_CALL_TIMEOUTS: CallTimeouts = {
  answerMs: 5_000,
  setMs: 5_000,
  mediaMs: 120_000,
  pagdMarginMs: 30_000,
  bridgeHangupGraceMs: 5_000,
  hangupMs: 5_000,
};

export interface CallSessionOptions {
  logger: Logger;
  timeouts?: Partial<CallTimeouts>;
  /** Unset b_leg_cdr on the IVR leg once the bridge result has it (default true; see dropCarrierCdr). */
  dropCarrierCdr?: boolean;
  /** CHANNEL_DATA headers kept (in `channelData`) besides Unique-ID and CHANNEL_VARIABLES_KEPT, e.g. `variable_foo`. */
  keepHeaders?: readonly string[];
}

/**
 * The channel variables `channelVariable()` answers from the connect reply: the ones the flow reads (src/flow/resume.ts:
 * RESUME_VARIABLE, and what a resumed socket finds of the bridge it lost). The rest of CHANNEL_DATA (~7-13 KB, ~170
 * headers) is dropped once CallInfo is read: kept, it was the largest part of a held call's heap. A variable not
 * listed here is read with `readVariable` (exact, uuid_getvar), or listed here / in CallSessionOptions.keepHeaders.
 */
export const CHANNEL_VARIABLES_KEPT: readonly string[] = ['ccard_resume', 'originate_causes', 'originate_disposition', 'last_bridge_hangup_cause'];
const HEADERS_KEPT: readonly string[] = ['Unique-ID', ...CHANNEL_VARIABLES_KEPT.map((v) => `variable_${v}`)];

const withDevice = (device: DeviceClaims | undefined) => (device ? { device } : {});

/** CallInfo from the connect reply's CHANNEL_DATA (values copied: they outlive the block they were read from). */
export function callInfoFrom(channelData: EslEvent): CallInfo {
  const get = (header: string): string | undefined => {
    const v = channelData.get(header);
    return v === undefined ? undefined : flatCopy(v);
  };
  const callerId = get('Caller-Caller-ID-Number') ?? '';
  const hidden = get('Caller-Privacy-Hide-Number') ?? get('Channel-Privacy-Hide-Number');
  return {
    uuid: get('Unique-ID') ?? '',
    did: get('Caller-Destination-Number') ?? '',
    callerId,
    callerIdName: get('Caller-Caller-ID-Name') ?? '',
    callerIdWithheld: hidden === 'true' || callerId.trim() === '' || callerId.trim().toLowerCase() === 'anonymous',
    ...withDevice(deviceClaimsFrom(get)),
  };
}

export class CallSession implements Call {
  readonly info: CallInfo;
  readonly log: Logger;
  /**
   * What is kept of the connect reply's CHANNEL_DATA: Unique-ID, the CHANNEL_VARIABLES_KEPT and the keepHeaders asked
   * for, as copies (a value sliced out of the block would keep the whole block alive). Other headers read undefined.
   */
  readonly channelData: EslEvent;
  private readonly hangupController = new AbortController();
  private readonly timeouts: CallTimeouts;
  private readonly dropsCarrierCdr: boolean;

  constructor(
    /** The socket, for listeners that need raw events (e.g. CHANNEL_HANGUP_COMPLETE). */
    readonly connection: EslConnection,
    /** The connect reply's channel data (every channel variable as variable_<name>): read here, not kept (channelData). */
    connectData: EslEvent,
    options: CallSessionOptions,
  ) {
    this.info = callInfoFrom(connectData);
    this.channelData = keptHeaders(connectData, options.keepHeaders);
    this.log = options.logger;
    this.timeouts = { ...DEFAULT_CALL_TIMEOUTS, ...options.timeouts };
    this.dropsCarrierCdr = options.dropCarrierCdr ?? true;
    connection.on('event', (event) => {
      if (event.name === 'CHANNEL_HANGUP' || event.name === 'CHANNEL_HANGUP_COMPLETE') this.markHungUp(event.get('Hangup-Cause'));
    });
    connection.on('notice', () => this.markHungUp('disconnect notice'));
    connection.on('close', () => this.markHungUp('socket closed'));
    if (connection.channelGone || connection.closed) this.markHungUp('before the session started');
  }

  get hangupSignal(): AbortSignal {
    return this.hangupController.signal;
  }

  get hungUp(): boolean {
    return this.hangupController.signal.aborted;
  }

  async answer(signal?: AbortSignal): Promise<void> {
    await this.exec('answer', undefined, this.timeouts.answerMs, signal);
  }

  async setVariables(vars: ReadonlyArray<readonly [string, string]>, signal?: AbortSignal): Promise<void> {
    if (vars.length === 0) return;
    await this.exec(...setCommand(vars), this.timeouts.setMs, signal);
  }

  /** Commands sent with withNext that the next exec answers for (see prepare). */
  private carried: Array<Promise<unknown>> = [];

  prepare({ answer, variables }: { answer: boolean; variables: ReadonlyArray<readonly [string, string]> }): void {
    if (this.hungUp) return;
    const carry = (p: Promise<unknown>): void => {
      p.catch(() => undefined); // observed by the next exec
      this.carried.push(p);
    };
    if (answer) carry(this.connection.execute('answer', undefined, { timeoutMs: this.timeouts.answerMs, withNext: true }));
    if (variables.length) {
      const [app, arg] = setCommand(variables);
      carry(this.connection.execute(app, arg, { timeoutMs: this.timeouts.setMs, withNext: true }));
    }
  }

  async playback(file: string, signal?: AbortSignal): Promise<void> {
    if (file === '') throw new EslError('ESL_INVALID_ARGUMENT', 'playback needs a file');
    await this.exec('playback', checkLine('playback file', file), this.timeouts.mediaMs, signal, true);
  }

  async say(lang: string, type: SayType, text: string, signal?: AbortSignal): Promise<void> {
    await this.exec('say', sayArg(lang, type, text), this.timeouts.mediaMs, signal, true);
  }

  async playAndGetDigits(req: DigitsRequest, signal?: AbortSignal): Promise<DigitsResult> {
    const arg = pagdArg(req);
    const timeoutMs = req.tries * (req.timeoutMs + req.digitTimeoutMs * req.max) + this.timeouts.pagdMarginMs;
    const done = await this.exec('play_and_get_digits', arg, timeoutMs, signal, true);
    // FreeSWITCH leaves partial entries in the variable; read_result is the verdict (Application-Response is _none_).
    return { digits: done.variable(req.variable), success: done.variable('read_result') === 'success' };
  }

  async bridge(req: BridgeRequest, signal?: AbortSignal): Promise<BridgeResult> {
    let answered = false;
    let unbridge: EslEvent | undefined;
    // What the last event seen says, not the event itself: a held bridge would otherwise keep its CHANNEL_BRIDGE
    // (~7-30 KB, with the socket read it was cut from) for the whole call.
    let last: BridgeOutcome | undefined;
    const off = this.connection.on('event', (event) => {
      if (event.name === 'CHANNEL_BRIDGE') {
        if (!answered && req.onAnswered) this.reportAnswer(event, req.onAnswered);
        answered = true;
      }
      else if (event.name === 'CHANNEL_UNBRIDGE') unbridge = event;
      last = bridgeOutcome(event);
    });
    let done: EslEvent | undefined;
    try {
      // Without event-lock: the low-balance warning is a broadcast queued on the channel during the bridge.
      done = await this.exec('bridge', checkLine('dial string', req.dialString), req.timeoutMs, signal, false, this.timeouts.bridgeHangupGraceMs, false);
    } catch (err) {
      // The caller hung up and the completion did not come within the grace (or the socket closed after the
      // hangup): report what was seen rather than lose the bridge outcome.
      const afterHangup = isEslError(err, 'ESL_HANGUP') || isEslError(err, 'ESL_SOCKET_CLOSED');
      if (!(afterHangup && this.hungUp && last !== undefined)) throw err;
      this.log.warn({ err }, 'bridge: no EXECUTE_COMPLETE after hangup, using the last events seen');
    } finally {
      off();
    }
    const outcome = done || unbridge ? bridgeOutcome((done ?? unbridge)!) : last!;
    const carrierCdr = await this.carrierCdr(done, unbridge);
    if (carrierCdr && this.dropsCarrierCdr) this.dropCarrierCdr(carrierCdr.uuid);
    return { ...outcome, answered, carrierCdr, callerHungUp: this.hungUp };
  }

  /**
   * copy_json_cdr leaves the carrier leg's CDR (~10 KB, twice: b_leg_cdr and b_leg_cdr_<uuid>) on the IVR leg, and
   * FreeSWITCH then repeats it in every later event of the call. Once read, it is unset (not awaited: it is queued
   * ahead of whatever the flow runs next, and a hangup meanwhile only makes it moot).
   */
  private dropCarrierCdr(bLegUuid: string): void {
    if (this.hungUp || !/^[0-9A-Za-z-]{1,64}$/.test(bLegUuid)) return;
    // It leaves with the flow's next command (the balance after the call, or the hangup): one write less.
    this.connection.execute('multiunset', `b_leg_cdr b_leg_cdr_${bLegUuid}`, { timeoutMs: this.timeouts.setMs, withNext: true }).catch((err: unknown) =>
      this.log.debug({ err }, 'multiunset b_leg_cdr not done'),
    );
  }

  /** CHANNEL_BRIDGE: the carrier leg's uuid and answer time, and FreeSWITCH's clock as of this event. */
  private reportAnswer(event: EslEvent, onAnswered: NonNullable<BridgeRequest['onAnswered']>): void {
    const carrierUuid = event.get('Other-Leg-Unique-ID') ?? event.get('Bridge-B-Unique-ID');
    if (!carrierUuid || !UUID_RE.test(carrierUuid)) {
      this.log.warn('CHANNEL_BRIDGE names no carrier leg: its cap cannot be extended');
      return;
    }
    const receivedAt = performance.now();
    const num = (v: string | undefined): number | undefined => (v !== undefined && /^\d{1,17}$/.test(v) && v !== '0' ? Number(v) : undefined);
    const eventUs = num(event.get('Event-Date-Timestamp')) ?? Date.now() * 1000;
    const answeredUs = num(event.get('Other-Leg-Channel-Answered-Time')) ?? eventUs;
    const switchNowUs = () => eventUs + Math.round((performance.now() - receivedAt) * 1000);
    try {
      onAnswered({ carrierUuid, answeredUs, switchNowUs });
    } catch (err) {
      this.log.error({ err }, 'onAnswered failed');
    }
  }

  channelVariable(name: string): string | undefined {
    return this.channelData.variable(name);
  }

  async readVariable(name: string, signal?: AbortSignal): Promise<string | undefined> {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(name)) throw new EslError('ESL_INVALID_ARGUMENT', 'variable name');
    const v = await this.connection.api(`uuid_getvar ${this.info.uuid} ${name}`, { timeoutMs: this.timeouts.setMs, signal });
    return v === '_undef_' || v.startsWith('-ERR') ? undefined : v;
  }

  async rearmCap(r: CapRearm, signal?: AbortSignal): Promise<'ok' | 'gone'> {
    if (!UUID_RE.test(r.carrierUuid)) throw new EslError('ESL_INVALID_ARGUMENT', 'carrier uuid');
    if (!Number.isSafeInteger(r.inSeconds) || r.inSeconds < 1) throw new EslError('ESL_INVALID_ARGUMENT', 'cap seconds');
    const opts = { timeoutMs: this.timeouts.setMs, signal };
    // Written in the same tick, so they leave in one write: between the delete and the new cap the call has none.
    const sent = [
      this.connection.api(`sched_del ${r.carrierUuid}`, opts),
      this.connection.api(`sched_hangup +${r.inSeconds} ${r.carrierUuid} allotted_timeout`, opts),
    ];
    if (r.warning && Number.isSafeInteger(r.warning.inSeconds) && r.warning.inSeconds >= 1) {
      sent.push(this.connection.api(`sched_broadcast +${r.warning.inSeconds} ${r.carrierUuid} ${checkLine('warning file', r.warning.file)} both`, opts));
    }
    const [, hangup, broadcast] = await Promise.all(sent);
    if (hangup!.startsWith('-ERR')) return 'gone';
    if (broadcast?.startsWith('-ERR')) this.log.warn({ reply: broadcast.trim() }, 'warning broadcast not scheduled');
    return 'ok';
  }

  async hangup(cause?: string): Promise<void> {
    if (this.hungUp) return;
    try {
      await this.connection.sendmsg(sendmsgHangup(hangupCauseOrDefault(cause)), { timeoutMs: this.timeouts.hangupMs });
    } catch (err) {
      this.log.debug({ err }, 'hangup not acknowledged');
    }
  }

  private async exec(
    app: string,
    arg: string | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    breakOnAbort = false,
    hangupGraceMs = 0,
    /** Unset: the connection's default (with event-lock). */
    eventLock?: boolean,
  ): Promise<EslEvent> {
    if (this.hungUp) throw new EslError('ESL_HANGUP', `${app}: the call has hung up`);
    const carried = this.carried.length ? this.carried.splice(0) : undefined;
    try {
      const own = this.connection.execute(app, arg, { timeoutMs, signal, hangupGraceMs, eventLock }); // leaves with the carried
      if (carried) {
        own.catch(() => undefined);
        await Promise.all(carried).catch((err: unknown) => {
          // A prepared command that failed fails this one, which no one waits for any more: stop its media too.
          this.breakMedia(breakOnAbort);
          throw err;
        });
      }
      return await own;
    } catch (err) {
      // The app keeps running in FreeSWITCH when we stop waiting; stop the media so the next step is not queued
      // behind it.
      if (isEslError(err, 'ESL_ABORTED')) this.breakMedia(breakOnAbort);
      throw err;
    }
  }

  private breakMedia(isMedia: boolean): void {
    if (isMedia && !this.hungUp) this.connection.api(`uuid_break ${this.info.uuid} all`).catch(() => undefined);
  }

  /** b_leg_cdr, exact: from a json event, or (plain events) read back with uuid_getvar while the channel exists. */
  private async carrierCdr(done: EslEvent | undefined, unbridge: EslEvent | undefined): Promise<CarrierCdr | undefined> {
    const carrier = [done, unbridge].find((e) => e?.variable('b_leg_cdr') !== undefined);
    if (!carrier) return undefined;
    if (carrier.format === 'json') return parseCarrierCdr(carrier.variable('b_leg_cdr') as string);
    // event-plain values are lossy for text that already holds %XX (observation 14): never parse them.
    if (this.hungUp || this.connection.channelGone) return undefined;
    try {
      const exact = await this.connection.api(`uuid_getvar ${this.info.uuid} b_leg_cdr`);
      return parseCarrierCdr(exact);
    } catch (err) {
      this.log.warn({ err }, 'could not read b_leg_cdr back');
      return undefined;
    }
  }

  private markHungUp(reason: string | undefined): void {
    if (this.hangupController.signal.aborted) return;
    this.hangupController.abort(new EslError('ESL_HANGUP', `call hung up (${reason ?? 'unknown'})`));
  }
}

type BridgeOutcome = Pick<BridgeResult, 'disposition' | 'hangupCause'>;

function bridgeOutcome(event: EslEvent): BridgeOutcome {
  const v = (name: string): string | undefined => {
    const value = event.variable(name);
    return value === undefined ? undefined : flatCopy(value);
  };
  return { disposition: v('originate_disposition'), hangupCause: v('last_bridge_hangup_cause') ?? v('bridge_hangup_cause') };
}

function keptHeaders(data: EslEvent, extra: readonly string[] | undefined): EslEvent {
  const kept = new Map<string, string>();
  for (const name of extra ? [...HEADERS_KEPT, ...extra] : HEADERS_KEPT) {
    const v = data.get(name);
    // A flat copy: V8 may hand back a slice of the whole decoded block, which would keep all of it alive.
    if (v !== undefined) kept.set(name, flatCopy(v));
  }
  return new EslEvent(kept, undefined, data.format);
}

/** A string that owns its characters (not a sliced or cons string pointing into a larger one). */
const flatCopy = (s: string): string => (s.length === 0 ? '' : Buffer.from(s, 'utf8').toString('utf8'));

/** `set` for one variable, `multiset` for several. */
function setCommand(vars: ReadonlyArray<readonly [string, string]>): [string, string] {
  return vars.length === 1 ? ['set', setArg(vars[0]![0], vars[0]![1])] : ['multiset', multisetArg(vars)];
}

const DIGITS = /^\d+$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The b-leg JSON CDR as FreeSWITCH copies it (copy_json_cdr=true): exact JSON whose values are url-encoded.
 * Returns undefined for anything that is not a complete, well-formed document.
 */
export function parseCarrierCdr(text: string): CarrierCdr | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const vars = (doc as { variables?: unknown } | null)?.variables;
  if (typeof vars !== 'object' || vars === null || Array.isArray(vars)) return undefined;
  const raw = vars as Record<string, unknown>;
  const one = (k: string): string | undefined => (typeof raw[k] === 'string' ? safeDecode(raw[k]) : undefined);
  const uuid = one('uuid');
  const billsec = one('billsec');
  const billmsec = one('billmsec');
  const answer = one('answer_uepoch');
  const end = one('end_uepoch');
  if (!uuid || billsec === undefined || !DIGITS.test(billsec)) return undefined;
  const cdr: CarrierCdr = {
    uuid,
    billsec: Number(billsec),
    billmsec: billmsec !== undefined && DIGITS.test(billmsec) ? Number(billmsec) : undefined,
    answerUepoch: answer !== undefined && DIGITS.test(answer) ? BigInt(answer) : undefined,
    endUepoch: end !== undefined && DIGITS.test(end) ? BigInt(end) : undefined,
    hangupCause: one('hangup_cause') || undefined,
    variables: {},
  };
  // ~180 variables, of which billing reads one (cc_call_id): decoded all together only when first read.
  let decoded: Record<string, string> | undefined;
  Object.defineProperty(cdr, 'variables', {
    enumerable: true,
    get: () => {
      if (!decoded) {
        decoded = {};
        for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') decoded[k] = safeDecode(v);
      }
      return decoded;
    },
  });
  return cdr;
}
