/**
 * One simulated call: FreeSWITCH's outbound socket connection to the ESL server, from `connect` to `exit`.
 * Commands are answered as they arrive; sendmsg executes are queued and run one at a time on the channel,
 * like mod_event_socket in async mode. Every app can be cut short by a hangup. A sendmsg hangup waits behind an app
 * sent with `event-lock: true` (and what is queued after it), as in FreeSWITCH; an execute that FreeSWITCH would run
 * nested inside an app without the lock still runs in order here, and is reported (CallResult.nestedExecutes).
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { FrameSplitter, header, type RawFrame } from './codec.ts';
import { AppSignal, VirtualClock } from './clock.ts';
import {
  apiResponse,
  Channel,
  commandReply,
  disconnectNotice,
  lingerNotice,
  type EventFormat,
  type FramePieces,
} from './channel.ts';
import { defaultCarrier, REJECTS, type CarrierScript } from './carrier.ts';
import { parseDialString } from './dialstring.ts';
import { backupCdr, bLegCdrJson, ivrLegCdrJson, postJsonCdr, q850Of, writeCdrFile, type BLegFacts } from './jsoncdr.ts';
import { parsePagdArgs, runPagd, type KeyPress } from './pagd.ts';
import { sayFiles } from './say.ts';
import { SCHED_REPLY, Scheduler, schedTime } from './sched.ts';
import type { AppRun, BLegResult, CallResult, CallScript, DigitsEntry, HangupAt, Injection, SimOptions } from './types.ts';

type Pairs = Array<[string, string]>;
const SOCKET_APP_DATA = '127.0.0.1:8040 async full';
/** The variables applyHangupVars may unset. */
const MAYBE_DROPPED = new Set(['answer_stamp', 'bridge_stamp', 'progress_stamp']);
const TICK_MS = 20;

export function defaultSoundDurationMs(file: string): number {
  if (!file) return 0;
  const tone = /^tone_stream:\/\/(.*)$/.exec(file);
  if (tone) {
    const loops = Number(/;loops=(-?\d+)/.exec(tone[1]!)?.[1] ?? 1);
    let ms = 0;
    for (const m of tone[1]!.matchAll(/%\((\d+),(\d+)/g)) ms += Number(m[1]) + Number(m[2]);
    return ms * Math.max(1, loops);
  }
  const sil = /^silence_stream:\/\/(\d+)/.exec(file);
  if (sil) return Number(sil[1]);
  return 200;
}

/**
 * Output buffers are cut from a shared slab, as Buffer.allocUnsafe does from its 8 KB pool for small sizes (a
 * flush is usually 5-30 KB, too large for that pool, and an ArrayBuffer per flush costs more than the copy). A
 * slice is handed to socket.write and never written again, so slices never overlap in use.
 */
const SLAB_SIZE = 512 * 1024;
let slab: Buffer | undefined;
let slabOffset = 0;
function outBuffer(len: number): Buffer {
  if (len > SLAB_SIZE / 8) return Buffer.allocUnsafe(len);
  if (!slab || slabOffset + len > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabOffset = 0;
  }
  const b = slab.subarray(slabOffset, slabOffset + len);
  slabOffset = (slabOffset + len + 7) & ~7;
  return b;
}

function keyTimeline(entry: DigitsEntry | undefined): KeyPress[] {
  if (entry === undefined) return [];
  const bursts = typeof entry === 'string' ? [{ keys: entry }] : Array.isArray(entry) ? entry : [entry];
  const out: KeyPress[] = [];
  let t = 0;
  bursts.forEach((b, i) => {
    t += b.afterMs ?? (i === 0 ? 1000 : 1500);
    [...b.keys].forEach((key, j) => {
      if (j > 0) t += b.gapMs ?? 520;
      out.push({ key, atMs: t });
    });
  });
  return out;
}

interface Running {
  name: string;
  ctrl: AppSignal;
  done: Promise<void>;
  /** Sent with event-lock: true (the queue waits for it). */
  locked: boolean;
}

/**
 * Apps whose loops call switch_ivr_parse_all_events: FreeSWITCH runs an execute queued meanwhile nested inside them
 * unless they hold the event lock (playback and say through switch_ivr_play_file, play_and_get_digits, sleep, and
 * bridge, which is how a broadcast reaches a bridged call).
 */
const PARSING_APPS = new Set(['playback', 'say', 'play_and_get_digits', 'sleep', 'bridge', 'gentones']);

/** The frames sent on one call, kept as written (shared pieces) and turned into Buffers only when read. */
class FrameLog {
  readonly frames: Array<Buffer | FramePieces> = [];
  private readonly buffers: Buffer[] = [];

  /** Makes `result.rx` read this log (the getter holds the log only, not the session). */
  attach(result: CallResult): void {
    const log = this;
    Object.defineProperty(result, 'rx', { enumerable: true, configurable: true, get: () => log.toBuffers() });
  }

  toBuffers(): Buffer[] {
    for (let i = this.buffers.length; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      this.buffers.push(Buffer.isBuffer(f) ? f : Buffer.concat(f.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))));
    }
    return this.buffers;
  }
}

export class SimSession {
  private readonly clock: VirtualClock;
  private readonly ch: Channel;
  private socket!: net.Socket;
  private format: EventFormat;
  private subscribed = false;
  /** Event kinds removed with nixevent (FreeSWITCH clears them from the listener's event list). */
  private readonly nixed = new Set<string>();
  private lingering = false;
  private lingerSec = -1;
  private alive = true;
  private closed = false;
  private hangupDone: Promise<void> | undefined;
  private parkSent = false;
  /** Taken from the queue, about to run (the simulator's dispatch tick). */
  private starting: { locked: boolean } | undefined;
  /** Queued sendmsg: executes, and a hangup that waits behind an app holding the event lock. */
  private readonly queue: Array<{ name: string; arg: string; eventUuid: string; locked: boolean; hangupCause?: string; gen?: number }> = [];
  /** When the last play_and_get_digits completion was sent (real time; see CallResult.decisionsMs). */
  private digitsSentAt: number | undefined;
  private queueWaiter: (() => void) | undefined;
  private running: Running | undefined;
  private lastResponse = '_none_';
  private readonly appCount = new Map<string, number>();
  private readonly eventCount = new Map<string, number>();
  private readonly sound: (f: string) => number;
  private readonly background: Array<Promise<unknown>> = [];
  private resolveEnd!: (r: CallResult) => void;
  private readonly result: CallResult;
  /** sched_hangup / sched_broadcast tasks (README-extend.md). */
  private readonly sched = new Scheduler();
  /** The carrier leg while it exists: its uuid, and the wait of the bridge (woken when its schedule changes). */
  private bLeg: { uuid: string; wake?: AppSignal; from?: { us: number; real: number; targetUs: number } } | undefined;

  constructor(
    private readonly opts: SimOptions,
    private readonly script: CallScript,
    seq: () => number,
    coreUuid: string,
  ) {
    const start = script.startUs ?? opts.startUs ?? Date.now() * 1000;
    this.clock = new VirtualClock(start, opts.timeScale ?? 0);
    this.record = opts.record ?? true;
    this.format = opts.eventFormat ?? 'plain';
    this.sound = opts.soundDurationMs ?? defaultSoundDurationMs;
    this.ch = new Channel(
      this.clock,
      {
        did: script.did ?? '15550001111',
        callerId: script.withheld ? 'anonymous' : (script.callerId ?? '15551230000'),
        callerIdName: script.withheld ? 'Anonymous' : (script.callerIdName ?? script.callerId ?? '15551230000'),
        withheld: script.withheld ?? false,
      },
      { uuid: script.uuid, coreUuid, seq },
    );
    for (const [k, v] of Object.entries(script.channelVariables ?? {})) this.ch.vars.put(k, v);
    this.result = {
      uuid: this.ch.uuid,
      apps: [],
      prompts: [],
      says: [],
      dialStrings: [],
      decisionsMs: [],
      nestedExecutes: [],
      variablesSet: [],
      bLegs: [],
      variables: {},
      digits: [],
      hangupCause: undefined,
      hangupBy: undefined,
      answerUs: 0,
      endUs: 0,
      billsec: 0,
      end: 'client-closed',
      rx: [],
      tx: [],
      commands: [],
    };
    this.rxLog.attach(this.result);
    const dialplan = opts.dialplan ?? {};
    this.socketsLeft = Math.max(1, dialplan.sockets ?? 1) - 1;
    if (dialplan.socketResume) this.ch.vars.set('socket_resume', 'true');
  }

  run(): Promise<CallResult> {
    const done = new Promise<CallResult>((r) => (this.resolveEnd = r));
    this.connect();
    void this.executor();
    return done;
  }

  /** Socket actions of the dialplan not yet run (the `socket` app connects to the ESL server once per action). */
  private socketsLeft = 0;
  /** Bumped on every new socket: what the previous one queued is not run. */
  private generation = 0;
  /** The application's socket went away while the channel lived on (README-resume.md). */
  private detached = false;

  /** The `socket` dialplan app: one outbound connection to the ESL server for this channel. */
  private connect(): void {
    const socket = net.connect(this.opts.port, this.opts.host ?? '127.0.0.1');
    this.socket = socket;
    this.generation++;
    socket.setNoDelay(true);
    const splitter = new FrameSplitter();
    let chain = Promise.resolve();
    socket.on('data', (chunk) => {
      let frames: RawFrame[];
      try {
        frames = splitter.push(chunk);
      } catch {
        return;
      }
      for (const f of frames) chain = chain.then(() => this.onCommand(f)).catch((e) => this.log('warn', { err: String(e) }, 'command failed'));
    });
    socket.on('error', (e) => this.log('debug', { err: e.message }, 'socket error'));
    socket.on('close', () => {
      if (socket !== this.socket || this.closed) return;
      if (this.alive) this.detach();
      else this.finish(this.result.end === 'client-closed' ? 'client-closed' : this.result.end);
    });
    const idle = this.opts.idleTimeoutMs ?? 30_000;
    socket.setTimeout(idle, () => {
      if (socket === this.socket) this.finish('idle-timeout');
    });
  }

  /**
   * The application's socket closed while the channel lives (its process died, README-resume.md). The app that was
   * running is broken off, except a bridge, which runs on until one side hangs up (the carrier leg keeps its armed
   * cap). Then, with socket_resume set (the `resume` command or the channel variable) the dialplan goes on to its
   * next action: the next `socket` connects again for the same channel; otherwise (or with no socket action left)
   * the channel is hung up with NORMAL_TEMPORARY_FAILURE.
   */
  private detach(): void {
    this.detached = true;
    this.pending = [];
    this.corked = false;
    this.result.socketLosses = (this.result.socketLosses ?? 0) + 1;
    this.subscribed = false;
    this.nixed.clear();
    this.lingering = false;
    this.format = this.opts.eventFormat ?? 'plain';
    this.queue.length = 0;
    const running = this.running;
    if (running && running.name !== 'bridge') running.ctrl.abort();
    void (async () => {
      if (running) await running.done;
      await this.clock.sleep(TICK_MS);
      if (!this.alive || this.closed) return;
      const resume = (this.ch.vars.get('socket_resume') ?? '').toLowerCase() === 'true';
      if (!resume) return this.hangup('NORMAL_TEMPORARY_FAILURE', 'switch');
      if (this.socketsLeft <= 0) return this.hangup('NORMAL_CLEARING', 'switch'); // the dialplan ran out of actions
      this.socketsLeft--;
      this.detached = false;
      this.parkSent = false;
      this.result.resumes = (this.result.resumes ?? 0) + 1;
      this.connect();
    })();
  }

  // ---------- output ----------

  private log(level: 'debug' | 'warn', obj: object, msg: string) {
    this.opts.logger?.[level]({ uuid: this.ch.uuid, ...obj }, msg);
  }

  private corked = false;
  /** What was written, frame by frame; result.rx gives them as Buffers (built when first read). */
  private readonly rxLog = new FrameLog();
  private readonly record: boolean;

  /**
   * Output is corked and goes out in one writev when the call has nothing more to say at once: at the next
   * turn of the event loop, or later while zero-time sleeps (timeScale 0) are still producing frames.
   */
  private write(data: Buffer | FramePieces): void {
    if (this.closed || this.socket.destroyed) return;
    if (this.record) this.rxLog.frames.push(data);
    if (!this.corked) {
      this.corked = true;
      this.flushTurns = 0;
      setImmediate(this.flushSoon);
    }
    const out = this.pending;
    if (Buffer.isBuffer(data)) out.push(data);
    else for (let i = 0; i < data.length; i++) out.push(data[i]!);
  }

  /** What write() was given since the last flush, in order (what a corked socket would hold). */
  private pending: Array<Buffer | string> = [];

  private flushTurns = 0;
  private readonly flushSoon = (): void => {
    if (!this.corked) return;
    if (this.clock.pendingImmediate > 0 && ++this.flushTurns < 64) setImmediate(this.flushSoon);
    else this.flush();
  };

  /** Sends what is pending as one buffer (one write, like the writev of an uncork). */
  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    const parts = this.pending;
    this.pending = [];
    if (this.socket.destroyed) return;
    let len = 0;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      len += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
    }
    const buf = outBuffer(len);
    let off = 0;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (typeof p === 'string') off += buf.write(p, off, 'utf8');
      else off += p.copy(buf, off);
    }
    this.socket.write(buf);
  }

  private emit(name: string, buf: FramePieces, app?: string): void {
    this.write(buf);
    const inject = this.script.inject;
    if (!inject?.length) return;
    const key = `${name}:${app ?? ''}`;
    const n = (this.eventCount.get(key) ?? 0) + 1;
    this.eventCount.set(key, n);
    const nAny = (this.eventCount.get(`${name}:*`) ?? 0) + 1;
    this.eventCount.set(`${name}:*`, nAny);
    for (const inj of inject) {
      const at = inj.at;
      if (!('afterEvent' in at) || at.afterEvent !== name) continue;
      if (at.app !== undefined && at.app !== app) continue;
      if ((at.nth ?? 1) !== (at.app !== undefined ? n : nAny)) continue;
      this.applyInjection(inj, buf);
    }
  }

  private applyInjection(inj: Injection, last: Buffer | FramePieces): void {
    if ('raw' in inj) this.write(typeof inj.raw === 'string' ? Buffer.from(inj.raw) : inj.raw);
    else if ('duplicate' in inj) this.write(last);
    else if ('drop' in inj) {
      this.result.end = 'dropped';
      this.flush();
      this.socket.destroy();
      this.finish('dropped');
    }
  }

  /** Whether an event of this kind goes out now (else simpleEvent only takes its sequence number). */
  private wants(name: string): boolean {
    return this.subscribed && !this.closed && !this.nixed.has(name);
  }

  private simpleEvent(name: string, extra: { pre?: Pairs; post?: Pairs; vars?: boolean; app?: string } = {}) {
    if (!this.wants(name)) {
      this.ch.seq(); // the event exists (and takes its Event-Sequence) even when nobody gets it
      return;
    }
    this.emit(name, this.ch.eventPieces(name, this.format, extra), extra.app);
  }

  private setVar(name: string, value: string | undefined): void {
    this.ch.vars.set(name, value);
    if (value !== undefined) this.result.variablesSet.push([name, value]);
  }

  // ---------- commands ----------

  private async onCommand(f: RawFrame): Promise<void> {
    if (this.closed) return;
    const nl = f.raw.indexOf(0x0a);
    const first = f.raw.toString('utf8', 0, nl < 0 ? f.raw.length : nl).trim();
    if (this.record) {
      this.result.tx.push(Buffer.from(f.raw));
      this.result.commands.push(first);
    }
    const [cmd = '', ...rest] = first.split(/\s+/);
    const argText = first.slice(cmd.length).trim();
    switch (cmd.toLowerCase()) {
      case 'connect':
        this.write(this.ch.connectReply());
        for (const inj of this.script.inject ?? []) if ('after' in inj.at) this.applyInjection(inj, Buffer.alloc(0));
        return;
      case 'myevents':
      case 'event': {
        const words = rest.map((w) => w.toLowerCase());
        if (words.includes('json')) this.format = 'json';
        else if (words.includes('plain')) this.format = 'plain';
        this.subscribed = true;
        this.write(commandReply(cmd === 'event' ? `+OK event listener enabled ${this.format}` : '+OK Events Enabled'));
        return;
      }
      case 'nixevent': {
        // mod_event_socket: each known event name is cleared; none known -> "-ERR no keywords supplied".
        const names = rest.map((w) => w.toUpperCase()).filter((w) => /^[A-Z_]+$/.test(w));
        if (names.length === 0) {
          this.write(commandReply('-ERR no keywords supplied'));
          return;
        }
        for (const n of names) this.nixed.add(n);
        this.write(commandReply('+OK events nixed'));
        return;
      }
      case 'linger':
        this.lingering = true;
        this.lingerSec = rest[0] ? Number(rest[0]) : -1;
        this.write(commandReply('+OK will linger'));
        return;
      case 'nolinger':
        this.lingering = false;
        this.write(commandReply('+OK will not linger'));
        return;
      case 'sendmsg':
        return this.onSendmsg(f);
      case 'getvar':
        this.write(commandReply(this.ch.vars.get(argText) ?? '_undef_'));
        return;
      case 'api':
        this.write(apiResponse(this.api(argText)));
        return;
      case 'exit':
        this.write(commandReply('+OK bye'));
        this.write(disconnectNotice(this.ch));
        this.finish('exit');
        return;
      case 'resume':
        // mod_event_socket: sets the listener's resume flag and socket_resume=true on the channel.
        this.setVar('socket_resume', 'true');
        this.write(commandReply('+OK'));
        return;
      case 'noevents':
      case 'filter':
      case 'divert_events':
      case 'log':
      case 'nolog':
        this.write(commandReply('+OK'));
        return;
      default:
        this.write(commandReply('-ERR command not found'));
    }
  }

  /**
   * Virtual now while the bridge sleeps: its clock only moves when a sleep ends, but an API command arriving meanwhile
   * runs at the time really elapsed (what the aborted sleep will then add).
   */
  private liveNowUs(): number {
    const from = this.bLeg?.from;
    if (!from || this.clock.timeScale <= 0) return this.clock.nowUs();
    const elapsed = ((performance.now() - from.real) * 1000) / this.clock.timeScale;
    return Math.max(this.clock.nowUs(), from.us + Math.min(from.targetUs - from.us, Math.round(elapsed)));
  }

  /** sched_hangup, sched_broadcast, sched_del (mod_commands.c; replies as recorded in README-extend.md). */
  private schedApi(fn: string, a: string[]): string {
    if (fn === 'sched_del') return SCHED_REPLY.deleted(a[0] ? this.sched.del(a[0]) : 0);
    const now = this.liveNowUs();
    const at = schedTime(a[0] ?? '', now);
    const uuid = a[1] ?? '';
    const carrier = this.bLeg?.uuid === uuid;
    const ivr = uuid === this.ch.uuid && this.alive && !this.closed;
    if (fn === 'sched_hangup') {
      if (at === undefined || (!carrier && !ivr)) return SCHED_REPLY.noChannel;
      const task = this.sched.add({ group: uuid, kind: 'hangup', atUs: at, cause: a[2] ?? 'ALLOTTED_TIMEOUT' });
      if (ivr) {
        void this.clock.sleep(Math.max(0, at - now) / 1000).then(() => {
          if (this.sched.tasks.includes(task)) {
            this.sched.remove(task);
            this.hangup(task.cause!, 'switch');
          }
        });
      }
      return SCHED_REPLY.hangup;
    }
    // A broadcast for a channel that does not exist is accepted and never plays (h3).
    if (at !== undefined && carrier) this.sched.add({ group: uuid, kind: 'broadcast', atUs: at, file: a[2] ?? '' });
    return SCHED_REPLY.broadcast;
  }

  private api(text: string): string {
    const [fn = '', ...a] = text.split(/\s+/);
    if (fn === 'sched_del' || fn === 'sched_hangup' || fn === 'sched_broadcast') return this.schedApi(fn, a);
    const mine = a[0] === this.ch.uuid;
    const exists = mine && (this.alive || !this.hangupDone) && !this.closed && this.ch.state !== 'CS_REPORTING';
    switch (fn) {
      case 'uuid_exists':
        return exists ? 'true' : 'false';
      case 'uuid_getvar':
        if (!exists) return '-ERR No such channel!';
        return this.ch.vars.get(a[1] ?? '') ?? '_undef_';
      case 'uuid_setvar':
        if (!exists) return '-ERR No such channel!';
        this.setVar(a[1] ?? '', a.slice(2).join(' ') || undefined);
        return '+OK';
      case 'uuid_kill':
        if (!exists) return '-ERR No such channel!';
        this.hangup(a[1] ?? 'NORMAL_CLEARING', 'client');
        return '+OK';
      default:
        return `-ERR ${fn} Command not found!\n`;
    }
  }

  private onSendmsg(f: RawFrame): void {
    const hs = f.headers.slice(1);
    const cc = (header(hs, 'call-command') ?? '').toLowerCase();
    this.write(commandReply('+OK'));
    if (!this.parkSent && this.script.park !== false && this.alive) {
      this.parkSent = true;
      this.simpleEvent('CHANNEL_PARK');
    }
    if (!this.alive) return; // observation 8: +OK and nothing else
    if (cc === 'execute') {
      const name = header(hs, 'execute-app-name') ?? '';
      const arg = header(hs, 'execute-app-arg') ?? (f.body ? f.body.toString('utf8') : '');
      if (name === 'bridge' && this.digitsSentAt !== undefined) {
        this.result.decisionsMs.push(performance.now() - this.digitsSentAt);
        this.digitsSentAt = undefined;
      }
      const locked = (header(hs, 'event-lock') ?? '').toLowerCase() === 'true';
      this.noteNesting(name);
      this.queue.push({ name, arg, eventUuid: header(hs, 'Event-UUID') ?? randomUUID(), locked, gen: this.generation });
      this.queueWaiter?.();
    } else if (cc === 'hangup') {
      const cause = header(hs, 'hangup-cause') ?? 'NORMAL_CLEARING';
      // Queued like every sendmsg: behind an app that holds the event lock (and what is queued after it) it waits
      // for them; otherwise the running app's media loop parses it at once.
      if (this.running?.locked || this.starting?.locked || this.queue.length > 0) {
        this.queue.push({ name: 'hangup', arg: '', eventUuid: '', locked: false, hangupCause: cause });
        this.queueWaiter?.();
        return;
      }
      const at = this.clock.nowUs() + TICK_MS * 1000;
      void this.clock.sleep(TICK_MS).then(() => {
        if (this.clock.nowUs() < at) this.clock.advanceMs((at - this.clock.nowUs()) / 1000);
        this.hangup(cause, 'client');
      });
    }
  }

  // ---------- app execution ----------

  private async executor(): Promise<void> {
    while (this.alive && !this.closed) {
      const next = this.queue.shift();
      if (!next) {
        await new Promise<void>((r) => (this.queueWaiter = r));
        this.queueWaiter = undefined;
        continue;
      }
      this.starting = next;
      await this.clock.sleep(TICK_MS);
      this.starting = undefined;
      if (!this.alive || this.closed) return;
      if ((next.gen !== undefined && next.gen !== this.generation) || this.detached) continue; // its socket is gone
      if (next.hangupCause !== undefined) this.hangup(next.hangupCause, 'client');
      else await this.execute(next.name, next.arg, next.eventUuid, false, next.locked);
    }
  }

  /**
   * FreeSWITCH would run an execute queued behind a running app that parses events without holding the event lock
   * nested inside it, out of order. The simulator still runs the queue in order, and reports it (nestedExecutes).
   */
  private noteNesting(next: string): void {
    const holder = this.running;
    if (holder && !holder.locked && PARSING_APPS.has(holder.name)) this.result.nestedExecutes.push({ outer: holder.name, inner: next });
  }

  private appHeaders(name: string, arg: string, eventUuid: string, response?: string): Pairs {
    const h: Pairs = [['Application', name]];
    if (arg) h.push(['Application-Data', arg]);
    if (response !== undefined) h.push(['Application-Response', response]);
    h.push(['Application-UUID', eventUuid]);
    return h;
  }

  /** Runs one app: EXECUTE, body, EXECUTE_COMPLETE (after CHANNEL_HANGUP when the call ends meanwhile). */
  private execute(name: string, arg: string, eventUuid: string, broadcast = false, locked = false): Promise<void> {
    const nth = (this.appCount.get(name) ?? 0) + 1;
    this.appCount.set(name, nth);
    const ctrl = new AppSignal();
    const run: AppRun = { name, arg, eventUuid, startUs: this.clock.nowUs(), endUs: 0, response: '_none_', broadcast };
    this.result.apps.push(run);
    this.script.onApp?.(name, nth);
    const done = (async () => {
      this.setVar('current_application_data', arg || undefined);
      this.setVar('current_application', name);
      if (this.wants('CHANNEL_EXECUTE')) this.simpleEvent('CHANNEL_EXECUTE', { post: this.appHeaders(name, arg, eventUuid), app: name });
      else this.ch.seq();
      let response = '_none_';
      try {
        response = await this.body(name, arg, nth, ctrl);
      } catch (e) {
        this.log('warn', { err: String(e), app: name }, 'app failed');
      }
      // the channel's last application response (observation 16: a broadcast overwrites it)
      this.lastResponse = response;
      run.response = response;
      run.endUs = this.clock.nowUs();
      this.simpleEvent('CHANNEL_EXECUTE_COMPLETE', { post: this.appHeaders(name, arg, eventUuid, response), app: name });
      if (name === 'play_and_get_digits') this.digitsSentAt = performance.now();
    })();
    if (!broadcast) {
      this.running = { name, ctrl, done, locked };
      // What was queued before it started would be parsed inside it, too.
      const waiting = this.queue[0];
      if (waiting) this.noteNesting(waiting.name);
    }
    return done.finally(() => {
      if (this.running?.ctrl === ctrl) this.running = undefined;
    });
  }


  private hangupPlan(app: string, nth: number) {
    const h = this.script.hangupAt;
    if (!h || h.app !== app || (h.nth ?? 1) !== nth) return undefined;
    return h;
  }

  private async body(name: string, arg: string, nth: number, signal: AppSignal): Promise<string> {
    const plan = this.hangupPlan(name, nth);
    switch (name) {
      case 'answer':
      case 'pre_answer':
        if (name === 'answer' && !this.ch.answeredUs) {
          this.ch.answeredUs = this.clock.nowUs();
          this.ch.answerState = 'answered';
          this.ch.applyTemplate('answer');
          this.result.answerUs = this.ch.answeredUs;
          this.simpleEvent('CHANNEL_ANSWER');
          this.ch.callState = 'ACTIVE';
        }
        if (plan) await this.callerHangupAfter(plan.afterMs ?? 0, plan, signal);
        return '_none_';
      case 'set':
      case 'export': {
        const i = arg.indexOf('=');
        const k = i < 0 ? arg : arg.slice(0, i);
        const v = i < 0 ? '' : arg.slice(i + 1);
        this.setVar(k, v === '' ? undefined : v);
        if (name === 'export') {
          const ev = this.ch.vars.get('export_vars');
          this.setVar('export_vars', ev ? `${ev},${k}` : k);
        }
        return '_none_';
      }
      case 'unset':
        this.setVar(arg, undefined);
        return '_none_';
      case 'multiset':
      case 'multiunset': {
        // mod_dptools: `[^^<delim>]item item...`, split on the delimiter (space by default); multiset sets each
        // `name=value` like set (an empty value unsets), multiunset unsets each name.
        let list = arg;
        let delim = ' ';
        if (list.startsWith('^^') && list.length > 2) {
          delim = list[2]!;
          list = list.slice(3);
        }
        for (const item of list.split(delim)) {
          if (!item) continue;
          if (name === 'multiunset') {
            this.setVar(item, undefined);
            continue;
          }
          const i = item.indexOf('=');
          const v = i < 0 ? '' : item.slice(i + 1);
          this.setVar(i < 0 ? item : item.slice(0, i), v === '' ? undefined : v);
        }
        return '_none_';
      }
      case 'hangup':
        this.hangup(arg || 'NORMAL_CLEARING', 'client');
        return '_none_';
      case 'sleep':
        return this.timed(Number(arg) || 0, plan, signal, '_none_');
      case 'playback':
        this.result.prompts.push(arg);
        this.setVar('playback_seconds', String(Math.floor(this.sound(arg) / 1000)));
        this.setVar('playback_ms', String(this.sound(arg)));
        return this.timed(this.sound(arg), plan, signal, 'FILE PLAYED');
      case 'say': {
        const files = sayFiles(arg);
        this.result.says.push({ arg, files });
        return this.timed(files.reduce((s, f) => s + this.sound(f) + TICK_MS, 0), plan, signal, '_none_');
      }
      case 'play_and_get_digits':
        return this.pagd(arg, nth, signal);
      case 'bridge':
        return this.bridge(arg, nth, signal);
      default:
        return '_none_';
    }
  }

  private async callerHangupAfter(ms: number, plan: HangupAt, signal: AppSignal): Promise<void> {
    if (await this.clock.sleep(ms, signal)) this.hangup(plan.cause ?? 'NORMAL_CLEARING', 'caller');
  }

  /** Waits an app's duration; a scripted caller hangup inside it ends the call. */
  private async timed(ms: number, plan: { afterMs?: number; cause?: string } | undefined, signal: AppSignal, resp: string) {
    if (plan && (plan.afterMs ?? 0) < ms) {
      if (await this.clock.sleep(plan.afterMs ?? 0, signal)) this.hangup(plan.cause ?? 'NORMAL_CLEARING', 'caller');
      return resp;
    }
    await this.clock.sleep(ms, signal);
    return resp;
  }

  private async pagd(arg: string, nth: number, signal: AppSignal): Promise<string> {
    const args = parsePagdArgs(arg);
    const keys = keyTimeline(this.script.digits?.[nth - 1]);
    const plan = this.hangupPlan('play_and_get_digits', nth);
    let hangupAtMs: number | undefined;
    if (plan) {
      hangupAtMs =
        plan.afterKeys !== undefined
          ? (keys[plan.afterKeys - 1]?.atMs ?? 0) + (plan.afterMs ?? 250)
          : (plan.afterMs ?? 0);
    }
    // switch_play_and_get_digits clears <var>_invalid when it starts
    if (args.varName) this.setVar(`${args.varName}_invalid`, undefined);
    const out = runPagd(args, keys, { hangupAtMs, durationMs: this.sound });
    this.result.prompts.push(...out.promptsPlayed);
    const t0 = this.clock.nowUs();
    const at = (ms: number) => t0 + ms * 1000 - this.clock.nowUs();
    for (const k of out.dtmf) {
      if (!(await this.clock.sleep(at(k.atMs) / 1000, signal))) return this.pagdAborted(out, args.varName);
      if (this.wants('DTMF'))
        this.simpleEvent('DTMF', {
          vars: false,
          post: [
            ['DTMF-Digit', k.key],
            ['DTMF-Duration', '2080'],
            ['DTMF-Source', 'RTP'],
          ],
        });
      else this.ch.seq();
    }
    if (!(await this.clock.sleep(Math.max(0, at(out.endMs)) / 1000, signal))) return this.pagdAborted(out, args.varName);
    for (const [k, v] of out.varOps) this.setVar(k, v);
    this.result.digits.push({ varName: args.varName, value: out.digits, readResult: out.readResult });
    if (out.hungUp) this.hangup(plan?.cause ?? 'NORMAL_CLEARING', 'caller');
    return '_none_';
  }

  /** Hangup from elsewhere (client hangup) while collecting: keep what was typed so far. */
  private pagdAborted(out: ReturnType<typeof runPagd>, varName: string): string {
    const now = this.clock.nowUs();
    const typed = out.dtmf.filter((k) => k.key !== '#').length;
    const ops = out.varOps.slice(0, typed + 1);
    for (const [k, v] of ops) this.setVar(k, v);
    this.result.digits.push({ varName, value: this.ch.vars.get(varName), readResult: this.ch.vars.get('read_result') ?? 'failure' });
    void now;
    return '_none_';
  }

  // ---------- bridge ----------

  private async bridge(arg: string, nth: number, signal: AppSignal): Promise<string> {
    const ds = parseDialString(arg);
    this.result.dialStrings.push(arg);
    const dialVars = Object.fromEntries(ds.vars);
    const script: CarrierScript = this.script.carrier?.(ds.number, dialVars) ?? defaultCarrier(ds.number);
    const plan = this.hangupPlan('bridge', nth);
    const bUuid = dialVars.origination_uuid ?? randomUUID();
    const t0 = this.clock.nowUs();
    const tokens = this.ch.tokens({ B_UUID: bUuid, DEST: ds.number });
    const leg: BLegFacts = {
      uuid: bUuid,
      number: ds.number,
      dialVars: ds.vars.filter(([, v]) => !v.includes('${') || dialVars.origination_nested_vars === 'true'),
      createdUs: t0,
      progressUs: 0,
      answeredUs: 0,
      bridgedUs: 0,
      endUs: 0,
      hangupCause: '',
      q850: 0,
      sipHangupDisposition: '',
      billsec: 0,
      billmsec: 0,
      apps: [],
    };
    const res: BLegResult = {
      uuid: bUuid,
      dialString: arg,
      number: ds.number,
      dialVars,
      answered: false,
      answerUs: 0,
      endUs: 0,
      answerEpoch: 0,
      endEpoch: 0,
      billsec: 0,
      billmsec: 0,
      hangupCause: '',
    };
    this.result.bLegs.push(res);
    const relHangup = plan && !plan.afterAnswer ? t0 + (plan.afterMs ?? 0) * 1000 : Infinity;
    const sleepUntil = (us: number) => this.clock.sleep(Math.max(0, us - this.clock.nowUs()) / 1000, signal);

    // ---- failure paths ----
    const fail = async (cause: string, atUs: number, sip?: { code: number; phrase: string }) => {
      if (relHangup < atUs) {
        if (await sleepUntil(relHangup)) {
          leg.hangupCause = 'ORIGINATOR_CANCEL';
          this.hangup(plan?.cause ?? 'NORMAL_CLEARING', 'caller');
        }
        return this.failVars(res, leg, 'ORIGINATOR_CANCEL');
      }
      if (!(await sleepUntil(atUs))) return this.failVars(res, leg, 'ORIGINATOR_CANCEL');
      leg.endUs = this.clock.nowUs();
      leg.hangupCause = cause;
      leg.q850 = q850Of(cause);
      leg.sipHangupDisposition = sip ? 'recv_refuse' : 'send_cancel';
      this.failVars(res, leg, cause, sip);
      const cof = (this.ch.vars.get('continue_on_fail') ?? '').toLowerCase();
      const cont = cof === 'true' || cof.split(',').some((c) => c.trim() === cause || c.trim() === String(q850Of(cause)));
      if (!cont) this.hangup(cause, 'switch');
      return '_none_';
    };
    if (script.kind === 'reject') {
      const r = REJECTS[script.cause];
      return fail(script.cause, t0 + (script.afterMs ?? TICK_MS) * 1000, { code: r.sip, phrase: r.phrase });
    }
    // ringing: 180 at once
    leg.progressUs = t0;
    this.ch.progressUs = t0;
    this.ch.callee = { name: ds.number, number: ds.number };
    const legTimeout = Number(dialVars.leg_timeout ?? NaN);
    const origTimeout = Number(dialVars.originate_timeout ?? this.ch.vars.get('originate_timeout') ?? 60);
    const timeoutCause = Number.isFinite(legTimeout) ? 'ALLOTTED_TIMEOUT' : 'NO_ANSWER';
    const timeoutUs = t0 + (Number.isFinite(legTimeout) ? legTimeout : origTimeout) * 1e6;
    const answerUs = script.kind === 'answer' ? t0 + (script.answerAfterMs ?? 500) * 1000 : Infinity;
    if (answerUs >= timeoutUs) return fail(timeoutCause, timeoutUs);
    if (relHangup < answerUs) return fail(timeoutCause, Infinity);

    // ---- answered ----
    if (!(await sleepUntil(answerUs))) return this.failVars(res, leg, 'ORIGINATOR_CANCEL');
    leg.answeredUs = this.clock.nowUs();
    res.answered = true;
    const answerSec = Math.floor(leg.answeredUs / 1e6);
    // execute_on_answer runs on the carrier leg: its sched_hangup / sched_broadcast tasks have the leg's uuid as group.
    this.bLeg = { uuid: bUuid };
    for (const [k, v] of ds.vars) {
      if (!k.startsWith('execute_on_answer')) continue;
      const [app = '', ...rest] = v.trim().split(/\s+/);
      leg.apps.push([app, rest.join(' '), leg.answeredUs]);
      const at = schedTime(rest[0] ?? '', leg.answeredUs);
      if (at === undefined) continue;
      if (app === 'sched_hangup') this.sched.add({ group: bUuid, kind: 'hangup', atUs: at, cause: rest[1] ?? 'ALLOTTED_TIMEOUT' });
      if (app === 'sched_broadcast') this.sched.add({ group: bUuid, kind: 'broadcast', atUs: at, file: rest[1] ?? '' });
    }
    this.sched.onChange = () => this.bLeg?.wake?.abort();
    await sleepUntil(leg.answeredUs + TICK_MS * 1000);
    if (signal.aborted) {
      this.endBLeg(bUuid);
      return this.failVars(res, leg, 'ORIGINATOR_CANCEL');
    }
    leg.bridgedUs = this.clock.nowUs();
    this.ch.bridgedUs = leg.bridgedUs;
    this.ch.otherLeg = this.otherLegHeaders(leg, tokens);
    this.ch.applyTemplate('bridge', tokens);
    for (const k of ['originate_causes', 'last_bridge_hangup_cause', 'last_bridge_proto_specific_hangup_cause', 'bridge_hangup_cause', 'sip_reason', 'sip_hangup_phrase'])
      this.ch.vars.set(k, undefined);
    this.ch.vars.set('originate_causes', `${bUuid};NONE`);
    this.simpleEvent('CHANNEL_BRIDGE', { pre: [['Bridge-A-Unique-ID', this.ch.uuid], ['Bridge-B-Unique-ID', bUuid]] });

    const talkEnd = script.kind === 'answer' && Number.isFinite(script.talkMs ?? 3000) ? leg.answeredUs + (script.talkMs ?? 3000) * 1000 : Infinity;
    const callerEnd = plan ? (plan.afterAnswer ? leg.bridgedUs + (plan.afterMs ?? 0) * 1000 : relHangup) : Infinity;
    let played = false;
    let by: 'carrier' | 'cap' | 'caller' | 'client' = 'client';
    const resp = () => (played ? 'FILE PLAYED' : '_none_');
    // Until the carrier, the caller or the armed cap ends it; the schedule may change meanwhile (API sched_*).
    for (;;) {
      if (signal.aborted || !this.alive) break;
      const now = this.clock.nowUs();
      const cap = this.sched.next(bUuid, 'hangup');
      const bc = this.sched.next(bUuid, 'broadcast');
      if (callerEnd <= now) {
        by = 'caller';
        break;
      }
      if (cap && cap.atUs <= now) {
        by = 'cap';
        break;
      }
      if (talkEnd <= now) {
        by = 'carrier';
        break;
      }
      if (bc && bc.atUs <= now) {
        this.sched.remove(bc);
        await this.execute('playback', bc.file ?? '', randomUUID(), true);
        played = true;
        continue;
      }
      const target = Math.min(callerEnd, cap?.atUs ?? Infinity, talkEnd, bc?.atUs ?? Infinity);
      const targetUs = target === Infinity ? now + 86_400e6 : target;
      const wake = new AppSignal();
      this.bLeg.wake = wake;
      this.bLeg.from = { us: now, real: performance.now(), targetUs };
      await this.clock.sleep((targetUs - now) / 1000, wake);
      this.bLeg.wake = undefined;
      this.bLeg.from = undefined;
    }
    this.endBLeg(bUuid);
    leg.endUs = this.clock.nowUs();
    leg.hangupCause = by === 'cap' ? 'ALLOTTED_TIMEOUT' : 'NORMAL_CLEARING';
    leg.q850 = q850Of(leg.hangupCause);
    leg.sipHangupDisposition = by === 'carrier' ? 'recv_bye' : 'send_bye';
    leg.billsec = Math.floor(leg.endUs / 1e6) - answerSec;
    leg.billmsec = Math.floor((leg.endUs - leg.answeredUs) / 1000);
    Object.assign(res, {
      answerUs: leg.answeredUs,
      endUs: leg.endUs,
      answerEpoch: answerSec,
      endEpoch: Math.floor(leg.endUs / 1e6),
      billsec: leg.billsec,
      billmsec: leg.billmsec,
      hangupCause: leg.hangupCause,
    });
    if (by === 'caller') this.hangup(plan?.cause ?? 'NORMAL_CLEARING', 'caller');
    this.ch.vars.set('last_bridge_hangup_cause', leg.hangupCause);
    if (by === 'carrier') this.ch.vars.set('last_bridge_proto_specific_hangup_cause', 'sip:200');
    this.ch.vars.set('bridge_hangup_cause', leg.hangupCause);
    this.afterBLegEnd(res, leg, tokens, dialVars);
    this.simpleEvent('CHANNEL_UNBRIDGE', { pre: [['Bridge-A-Unique-ID', this.ch.uuid], ['Bridge-B-Unique-ID', bUuid]] });
    if (this.alive && (this.ch.vars.get('hangup_after_bridge') ?? '').toLowerCase() === 'true') {
      queueMicrotask(() => this.hangup('NORMAL_CLEARING', 'switch'));
    }
    return resp();
  }

  /** The carrier leg is gone: its scheduled tasks with it (an API naming it now finds no channel). */
  private endBLeg(uuid: string): void {
    this.sched.dropGroup(uuid);
    this.sched.onChange = undefined;
    if (this.bLeg?.uuid === uuid) this.bLeg = undefined;
  }

  private afterBLegEnd(res: BLegResult, leg: BLegFacts, tokens: ReturnType<Channel['tokens']>, dialVars: Record<string, string>) {
    const copy = (dialVars.copy_json_cdr ?? '').toLowerCase() === 'true';
    if (copy || this.opts.jsonCdrUrl) res.cdrJson = bLegCdrJson(leg, tokens, true);
    if (copy) {
      this.ch.vars.set('b_leg_cdr', res.cdrJson);
      this.ch.vars.set(`b_leg_cdr_${leg.uuid}`, res.cdrJson);
    }
    const o = this.opts;
    if (o.jsonCdrUrl || o.jsonCdrLogDir) {
      const url = o.jsonCdrUrl;
      const body = bLegCdrJson(leg, tokens, false);
      this.background.push(
        (async () => {
          // mod_json_cdr's process_cdr: log-dir first (log-http-and-disk, or no url), then the POSTs, then backup_cdr.
          if (o.jsonCdrLogDir && (o.jsonCdrLogHttpAndDisk || !url)) await writeCdrFile(o.jsonCdrLogDir, leg.uuid, body).catch(() => undefined);
          if (!url) return;
          const s = await postJsonCdr(url, leg.uuid, body, {
            retries: o.jsonCdrRetries ?? 3,
            delayMs: o.jsonCdrDelayMs ?? 2000,
            sleep: (ms) => new Promise((r) => setTimeout(r, ms * (o.timeScale ?? 0))),
            cred: o.jsonCdrCred,
          });
          res.cdrPostStatus = s;
          if ((s < 200 || s >= 300) && o.jsonCdrErrLogDirs?.length) res.cdrErrLogFile = await backupCdr(o.jsonCdrErrLogDirs, leg.uuid, body);
        })(),
      );
    }
  }

  private failVars(res: BLegResult, leg: BLegFacts, cause: string, sip?: { code: number; phrase: string }): string {
    res.hangupCause = cause;
    res.endUs = this.clock.nowUs();
    leg.endUs ||= res.endUs;
    const ds = cause === 'USER_BUSY' ? 'BUSY' : cause === 'NO_ANSWER' ? 'NOANSWER' : cause;
    this.ch.vars.set('originated_legs', `${leg.uuid};Outbound Call;${leg.number}`);
    this.ch.vars.set('originate_disposition', cause);
    this.ch.vars.set('DIALSTATUS', ds);
    this.ch.vars.set('originate_causes', `${leg.uuid};${cause}`);
    this.ch.vars.set('originate_failed_cause', cause);
    if (sip) {
      this.ch.vars.set('sip_invite_failure_status', String(sip.code));
      this.ch.vars.set('sip_invite_failure_phrase', sip.phrase);
    }
    this.ch.vars.set('last_bridge_hangup_cause', cause);
    if (sip) this.ch.vars.set('last_bridge_proto_specific_hangup_cause', `sip:${sip.code}`);
    return '_none_';
  }

  private otherLegHeaders(leg: BLegFacts, tokens: ReturnType<Channel['tokens']>): Pairs {
    const t: Record<string, string> = {
      'Other-Leg-Profile-Created-Time': String(leg.createdUs),
      'Other-Leg-Channel-Created-Time': String(leg.createdUs),
      'Other-Leg-Channel-Answered-Time': String(leg.answeredUs),
      'Other-Leg-Channel-Progress-Time': String(leg.progressUs),
    };
    return (templatesOtherLeg as Pairs).map(([k, v]) => [k, t[k] ?? fillTokens(v, tokens)]);
  }

  // ---------- hangup ----------

  /** Ends the IVR leg: CHANNEL_HANGUP now, then the running app's completion, then the hangup sequence. */
  hangup(cause: string, by: 'caller' | 'client' | 'switch'): void {
    if (!this.alive) return;
    this.alive = false;
    this.queueWaiter?.();
    this.result.hangupCause = cause;
    this.result.hangupBy = by;
    this.ch.hangupCause = cause;
    this.ch.answerState = 'hangup';
    this.simpleEvent('CHANNEL_HANGUP');
    if (!this.lingering) {
      this.write(disconnectNotice(this.ch));
      this.hangupDone = this.finishHangupQuietly();
      this.finish('nolinger');
      return;
    }
    if (this.script.lingerNoticeEarly) this.write(lingerNotice(this.ch));
    const running = this.running;
    running?.ctrl.abort();
    this.bLeg?.wake?.abort();
    this.hangupDone = (async () => {
      if (running) await running.done;
      this.simpleEvent('CHANNEL_UNPARK');
      this.simpleEvent('CHANNEL_EXECUTE_COMPLETE', {
        post: this.appHeaders('socket', SOCKET_APP_DATA, randomUUID(), this.lastResponse),
        app: 'socket',
      });
      this.ch.state = 'CS_HANGUP';
      this.simpleEvent('CHANNEL_STATE', { vars: false });
      this.ch.hangupUs = this.clock.nowUs();
      this.ch.state = 'CS_REPORTING';
      this.ch.callState = 'HANGUP';
      this.applyHangupVars(cause, by);
      this.simpleEvent('CHANNEL_STATE', { vars: false });
      this.simpleEvent('CHANNEL_HANGUP_COMPLETE', { pre: [['Hangup-Cause', cause]] });
      this.postOwnCdr();
      if (!this.script.lingerNoticeEarly) this.write(lingerNotice(this.ch));
      if (this.lingerSec > 0) {
        await this.clock.sleep(this.lingerSec * 1000);
        if (!this.closed) {
          this.write(disconnectNotice(this.ch));
          this.finish('linger-timeout');
        }
      }
    })();
  }

  private async finishHangupQuietly() {
    this.running?.ctrl.abort();
    this.bLeg?.wake?.abort();
    this.ch.hangupUs = this.clock.nowUs();
    this.applyHangupVars(this.result.hangupCause ?? 'NORMAL_CLEARING', this.result.hangupBy ?? 'client');
    this.postOwnCdr();
  }

  /** jsonCdrAllLegs: the IVR leg's own CDR, posted in CS_REPORTING like the carrier leg's (no retries shown here). */
  private postOwnCdr(): void {
    const o = this.opts;
    if (!o.jsonCdrAllLegs || !o.jsonCdrUrl) return;
    const body = ivrLegCdrJson(this.ch.uuid, this.result.bLegs.at(-1)?.uuid, this.result.apps);
    const url = o.jsonCdrUrl;
    this.background.push(
      (async () => {
        await this.clock.sleep(20);
        await postJsonCdr(url, this.ch.uuid, body, {
          retries: o.jsonCdrRetries ?? 3,
          delayMs: o.jsonCdrDelayMs ?? 2000,
          sleep: (ms) => new Promise((r) => setTimeout(r, ms * (o.timeScale ?? 0))),
          cred: o.jsonCdrCred,
        });
      })(),
    );
  }

  private applyHangupVars(cause: string, by: string) {
    const tokens = this.ch.tokens(this.result.bLegs.length ? { B_UUID: this.result.bLegs.at(-1)!.uuid, DEST: this.result.bLegs.at(-1)!.number } : {});
    // the only variables this can remove (set to undefined below); each comes back with its old value at the end
    const keep = this.ch.vars.pick(MAYBE_DROPPED);
    this.ch.applyTemplate('hangup', tokens);
    const a = this.ch.answeredUs;
    const c = this.ch.createdUs;
    const e = this.ch.hangupUs;
    const sec = (us: number) => Math.floor(us / 1e6);
    const b = this.result.bLegs.at(-1);
    const bridged = this.ch.bridgedUs;
    const set = (k: string, v: string) => this.ch.vars.put(k, v);
    set('hangup_cause', cause);
    set('hangup_cause_q850', String(q850Of(cause)));
    set('sip_hangup_disposition', by === 'caller' ? 'recv_bye' : 'send_bye');
    for (const [k, us] of [
      ['start', c],
      ['profile_start', c],
      ['answer', a],
      ['bridge', bridged],
      ['progress', this.ch.progressUs],
      ['end', e],
    ] as Array<[string, number]>) {
      set(`${k}_stamp`, us ? fsStampLocal(us) : '');
      set(`${k}_epoch`, String(sec(us)));
      set(`${k}_uepoch`, String(us));
    }
    for (const k of ['answer_stamp', 'bridge_stamp', 'progress_stamp']) if (this.ch.vars.get(k) === '') this.ch.vars.set(k, undefined);
    set('duration', String(sec(e) - sec(c)));
    set('billsec', String(a ? sec(e) - sec(a) : 0));
    set('mduration', String(Math.floor((e - c) / 1000)));
    set('billmsec', String(a ? Math.floor((e - a) / 1000) : 0));
    set('uduration', String(e - c));
    set('billusec', String(a ? e - a : 0));
    set('answersec', String(a ? sec(a) - sec(c) : 0));
    set('answermsec', String(a ? Math.floor((a - c) / 1000) : 0));
    set('answerusec', String(a ? a - c : 0));
    set('waitsec', String(a ? sec(a) - sec(c) : 0));
    set('waitmsec', String(a ? Math.floor((a - c) / 1000) : 0));
    set('waitusec', String(a ? a - c : 0));
    set('flow_billsec', String(sec(e) - sec(c)));
    set('flow_billmsec', String(Math.floor((e - c) / 1000)));
    set('flow_billusec', String(e - c));
    const lastApp = [...this.result.apps].reverse().find((x) => !x.broadcast);
    set('last_app', lastApp?.name ?? 'socket');
    set('last_arg', lastApp?.arg ?? SOCKET_APP_DATA);
    set('caller_id', `"${this.ch.id.callerIdName}" <${this.ch.id.callerId}>`);
    // variables this call never had stay out (no bridge -> no bridge_* etc.)
    if (!b) for (const k of ['bridge_stamp', 'bridge_epoch', 'bridge_uepoch']) this.ch.vars.set(k, k === 'bridge_stamp' ? undefined : '0');
    for (const [k, v] of keep) if (!this.ch.vars.has(k)) this.ch.vars.put(k, v);
    this.result.answerUs = a;
    this.result.endUs = e;
    this.result.billsec = a ? sec(e) - sec(a) : 0;
  }

  private finish(how: CallResult['end']): void {
    if (this.closed) return;
    if (this.detached && how === 'nolinger') how = 'dropped';
    this.closed = true;
    this.alive = false;
    this.queueWaiter?.();
    // A real FreeSWITCH keeps a bridge up when the socket dies (README-resume): it ends on its own.
    const bridgeRunsOn = how === 'client-closed' && this.opts.bridgeOutlivesSocket === true && this.running?.name === 'bridge' ? this.running : undefined;
    if (!bridgeRunsOn) {
      this.running?.ctrl.abort();
      this.bLeg?.wake?.abort();
    }
    this.result.end = how;
    this.flush();
    if (!this.socket.destroyed) this.socket.end();
    const settle = async () => {
      if (bridgeRunsOn) await bridgeRunsOn.done.catch(() => undefined);
      if (this.hangupDone) await this.hangupDone.catch(() => undefined);
      await Promise.allSettled(this.background);
      this.result.variables = this.ch.vars.toObject();
      if (!this.result.endUs) this.result.endUs = this.clock.nowUs();
      this.resolveEnd(this.result);
    };
    void settle();
  }
}

import templates from './templates/fs-templates.json' with { type: 'json' };
import { fill as fillTokens } from './channel.ts';
import { fsStamp as fsStampLocal } from './clock.ts';
const templatesOtherLeg = templates.otherLeg;
