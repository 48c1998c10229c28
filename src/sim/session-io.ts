/**
 * The simulated call's state and its output: every field of a session, the constructor, and how frames are
 * written (corked, flushed in one write), logged and turned into events. The layers above add the ESL commands
 * (session-commands.ts), the apps (session-apps.ts), the bridge (session-bridge.ts) and the call's life
 * (session.ts).
 */
import net from 'node:net';
import { AppSignal, VirtualClock } from './clock.ts';
import { Channel } from './channel.ts';
import type { EventFormat, FramePieces } from './frames.ts';
import type { KeyPress } from './pagd.ts';
import { Scheduler } from './sched.ts';
import type { CallResult, CallScript, DigitsEntry, Injection, SimOptions } from './types.ts';
import templates from './templates/fs-templates.json' with { type: 'json' };

export type Pairs = Array<[string, string]>;
export const SOCKET_APP_DATA = '127.0.0.1:8040 async full';
/** The variables applyHangupVars may unset. */
export const MAYBE_DROPPED = new Set(['answer_stamp', 'bridge_stamp', 'progress_stamp']);
export const TICK_MS = 20;

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
export const SLAB_SIZE = 512 * 1024;
let slab: Buffer | undefined;
let slabOffset = 0;
export function outBuffer(len: number): Buffer {
  if (len > SLAB_SIZE / 8) return Buffer.allocUnsafe(len);
  if (!slab || slabOffset + len > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabOffset = 0;
  }
  const b = slab.subarray(slabOffset, slabOffset + len);
  slabOffset = (slabOffset + len + 7) & ~7;
  return b;
}

export function keyTimeline(entry: DigitsEntry | undefined): KeyPress[] {
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

export interface Running {
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
export const PARSING_APPS = new Set(['playback', 'say', 'play_and_get_digits', 'sleep', 'bridge', 'gentones']);

/** The frames sent on one call, kept as written (shared pieces) and turned into Buffers only when read. */
export class FrameLog {
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

export const templatesOtherLeg = templates.otherLeg;

export abstract class SessionIo {
  protected readonly clock: VirtualClock;
  protected readonly ch: Channel;
  protected socket!: net.Socket;
  protected format: EventFormat;
  protected subscribed = false;

  /** Event kinds removed with nixevent (FreeSWITCH clears them from the listener's event list). */
  protected readonly nixed = new Set<string>();
  protected lingering = false;
  protected lingerSec = -1;
  protected alive = true;
  protected closed = false;
  protected hangupDone: Promise<void> | undefined;
  protected parkSent = false;

  /** Taken from the queue, about to run (the simulator's dispatch tick). */
  protected starting: { locked: boolean } | undefined;

  /** Queued sendmsg: executes, and a hangup that waits behind an app holding the event lock. */
  protected readonly queue: Array<{ name: string; arg: string; eventUuid: string; locked: boolean; hangupCause?: string; gen?: number }> = [];

  /** When the last play_and_get_digits completion was sent (real time; see CallResult.decisionsMs). */
  protected digitsSentAt: number | undefined;
  protected queueWaiter: (() => void) | undefined;
  protected running: Running | undefined;
  protected lastResponse = '_none_';
  protected readonly appCount = new Map<string, number>();
  protected readonly eventCount = new Map<string, number>();
  protected readonly sound: (f: string) => number;
  protected readonly background: Array<Promise<unknown>> = [];
  protected resolveEnd!: (r: CallResult) => void;
  protected readonly result: CallResult;

  /** sched_hangup / sched_broadcast tasks (README-extend.md). */
  protected readonly sched = new Scheduler();

  /** The carrier leg while it exists: its uuid, and the wait of the bridge (woken when its schedule changes). */
  protected bLeg: { uuid: string; wake?: AppSignal; from?: { us: number; real: number; targetUs: number } } | undefined;

  /** Socket actions of the dialplan not yet run (the `socket` app connects to the ESL server once per action). */
  protected socketsLeft = 0;

  /** Bumped on every new socket: what the previous one queued is not run. */
  protected generation = 0;

  /** The application's socket went away while the channel lived on (README-resume.md). */
  protected detached = false;
  protected corked = false;

  /** What was written, frame by frame; result.rx gives them as Buffers (built when first read). */
  protected readonly rxLog = new FrameLog();
  protected readonly record: boolean;

  /** What write() was given since the last flush, in order (what a corked socket would hold). */
  protected pending: Array<Buffer | string> = [];
  protected flushTurns = 0;
  protected readonly flushSoon = (): void => {
    if (!this.corked) return;
    if (this.clock.pendingImmediate > 0 && ++this.flushTurns < 64) setImmediate(this.flushSoon);
    else this.flush();
  };

  constructor(
    protected readonly opts: SimOptions,
    protected readonly script: CallScript,
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

  protected log(level: 'debug' | 'warn', obj: object, msg: string) {
    this.opts.logger?.[level]({ uuid: this.ch.uuid, ...obj }, msg);
  }

  /**
   * Output is corked and goes out in one writev when the call has nothing more to say at once: at the next
   * turn of the event loop, or later while zero-time sleeps (timeScale 0) are still producing frames.
   */
  protected write(data: Buffer | FramePieces): void {
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

  /** Sends what is pending as one buffer (one write, like the writev of an uncork). */
  protected flush(): void {
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

  protected emit(name: string, buf: FramePieces, app?: string): void {
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

  protected applyInjection(inj: Injection, last: Buffer | FramePieces): void {
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
  protected wants(name: string): boolean {
    return this.subscribed && !this.closed && !this.nixed.has(name);
  }

  protected simpleEvent(name: string, extra: { pre?: Pairs; post?: Pairs; vars?: boolean; app?: string } = {}) {
    if (!this.wants(name)) {
      this.ch.seq(); // the event exists (and takes its Event-Sequence) even when nobody gets it
      return;
    }
    this.emit(name, this.ch.eventPieces(name, this.format, extra), extra.app);
  }

  protected setVar(name: string, value: string | undefined): void {
    this.ch.vars.set(name, value);
    if (value !== undefined) this.result.variablesSet.push([name, value]);
  }

  // Defined by the layers above (session-apps.ts, session-bridge.ts, session.ts).
  abstract hangup(cause: string, by: 'caller' | 'client' | 'switch'): void;
  protected abstract finish(how: CallResult['end']): void;
  protected abstract noteNesting(next: string): void;
  protected abstract bridge(arg: string, nth: number, signal: AppSignal): Promise<string>;
}
