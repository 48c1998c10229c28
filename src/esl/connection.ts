/**
 * One ESL socket: a command writer with a FIFO of reply slots, execute completions matched by Application-UUID,
 * and a small typed emitter for events. Nothing the peer sends can throw out of the data handler: a protocol
 * error destroys this socket only.
 *
 * Events are dispatched synchronously as they are parsed, so nothing queues up inside this layer; a slow consumer
 * must buffer on its side (for one call's own events, via myevents, the rate is small).
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { command as commandText, sendmsgExecute } from './commands.ts';
import { EslError } from './errors.ts';
import { eslProtocolErrorsTotal } from '../metrics/index.ts';
import { EslEvent, FrameParser, toFrame, type EslFrame, type FrameParserLimits, type Headers } from './parser.ts';

export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

export interface CommandOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecuteOptions extends CommandOptions {
  /**
   * After the channel hangs up, keep waiting this long for the app's CHANNEL_EXECUTE_COMPLETE instead of rejecting
   * with ESL_HANGUP at once (FreeSWITCH sends CHANNEL_HANGUP before the completion; bridge needs what it carries).
   */
  hangupGraceMs?: number;
  /**
   * Leave with the next command, in its write, instead of in a write of its own (at the latest after
   * DEFER_MAX_MS). For commands nothing waits on before the next one (answer and multiset ahead of the first
   * prompt): FreeSWITCH runs a socket's executes in order either way, and the peer reads once instead of twice.
   */
  withNext?: boolean;
  /**
   * Send with `event-lock: true` (default true, the only default: sendmsgExecute has none): FreeSWITCH then runs
   * later executes only once this one has ended, instead of nesting them inside its media loop. bridge sets false
   * (see sendmsgExecute).
   */
  eventLock?: boolean;
}

/** The longest a withNext command waits for a command to leave with. */
export const DEFER_MAX_MS = 50;

export interface CommandReply {
  /** Reply-Text, e.g. "+OK", "+OK will linger", "1555" (getvar). */
  text: string;
  headers: Headers;
  /** Set on the reply to `connect` (outbound mode): the channel's CHANNEL_DATA. */
  channelData: EslEvent | undefined;
}

export interface EslConnectionEvents {
  event: (event: EslEvent) => void;
  /** text/disconnect-notice: disposition "linger" (channel gone, socket stays) or "disconnect" (socket closing). */
  notice: (disposition: string, body: string) => void;
  close: (cause: Error | undefined) => void;
}

export interface EslConnectionOptions {
  logger: Logger;
  /** Bindings of this connection's log lines: a child logger is made from them only when it first logs. */
  logBindings?: Record<string, unknown>;
  commandTimeoutMs?: number;
  limits?: FrameParserLimits;
}

type ReplyFrame = Extract<EslFrame, { kind: 'command/reply' | 'api/response' }>;

/**
 * The settling side of a promise with a deadline and an abort signal: settled once, by its answer, its timeout or
 * its signal (handleEvent: 'abort'), whichever comes first; the timer and the listener go with the first.
 */
abstract class Pending<T> {
  settled = false;
  protected timer: NodeJS.Timeout;
  constructor(
    /** The command or app, for error messages. */
    readonly what: string,
    private readonly signal: AbortSignal | undefined,
    timeoutMs: number,
    private readonly resolve: (value: T) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.timer = setTimeout(pendingTimedOut, timeoutMs, this, timeoutMs);
    signal?.addEventListener('abort', this, { once: true });
  }

  /** The error a timeout of `timeoutMs` settles with. */
  abstract timeoutError(timeoutMs: number): EslError;

  handleEvent(): void {
    this.settle(abortedError(this.what));
  }

  settle(err: Error | undefined, value?: T): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this);
    this.onSettled();
    if (err) this.reject(err);
    else this.resolve(value!);
  }

  /** Cleanup of a subclass, before the promise settles. */
  protected onSettled(): void {}
}

function pendingTimedOut(pending: Pick<Pending<never>, 'settle' | 'timeoutError'>, timeoutMs: number): void {
  pending.settle(pending.timeoutError(timeoutMs));
}

/** A command's place in the reply queue. */
class Slot extends Pending<ReplyFrame> {
  timeoutError(timeoutMs: number): EslError {
    return new EslError('ESL_TIMEOUT', `no reply to ${this.what} within ${timeoutMs} ms`);
  }
}

/** An app waiting for its CHANNEL_EXECUTE_COMPLETE (keyed by Event-UUID in EslConnection.executions). */
class Execution extends Pending<EslEvent> {
  constructor(
    private readonly registry: Map<string, Execution>,
    private readonly uuid: string,
    app: string,
    readonly graceMs: number,
    signal: AbortSignal | undefined,
    timeoutMs: number,
    resolve: (event: EslEvent) => void,
    reject: (err: Error) => void,
  ) {
    super(app, signal, timeoutMs, resolve, reject);
  }

  get app(): string {
    return this.what;
  }

  timeoutError(timeoutMs: number): EslError {
    return new EslError('ESL_TIMEOUT', `${this.app} did not complete within ${timeoutMs} ms`);
  }

  protected override onSettled(): void {
    this.registry.delete(this.uuid);
  }

  /** The channel hung up: wait graceMs more for the completion (bridge), then reject with ESL_HANGUP. */
  enterGrace(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(graceOver, this.graceMs, this);
  }
}

function graceOver(execution: Execution): void {
  execution.settle(new EslError('ESL_HANGUP', `${execution.app}: channel hung up and no completion within ${execution.graceMs} ms`));
}

export class EslConnection {
  private readonly parser: FrameParser;
  #log: Logger;
  #logBindings: Record<string, unknown> | undefined;
  private readonly commandTimeoutMs: number;
  /** One slot per command written, oldest first; every command/reply or api/response settles the head. */
  private readonly slots: Slot[] = [];
  private readonly executions = new Map<string, Execution>();
  // Arrays, not Sets: a connection has a handful of listeners, and a Set costs its hash table on every held call.
  private readonly listeners: { [K in keyof EslConnectionEvents]: Array<EslConnectionEvents[K]> } = {
    event: [],
    notice: [],
    close: [],
  };
  private closedCause: Error | undefined;
  private isClosed = false;
  private isChannelGone = false;

  constructor(
    readonly socket: Socket,
    options: EslConnectionOptions,
  ) {
    this.#log = options.logger;
    this.#logBindings = options.logBindings;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.parser = new FrameParser(options.limits);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.closedCause ??= err;
      this.log.debug({ err }, 'esl socket error');
    });
    socket.on('close', () => this.onClose());
  }

  private get log(): Logger {
    if (this.#logBindings) {
      this.#log = this.#log.child(this.#logBindings);
      this.#logBindings = undefined;
    }
    return this.#log;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** CHANNEL_HANGUP (or a linger notice) was seen: the channel is gone, the socket may still be open. */
  get channelGone(): boolean {
    return this.isChannelGone;
  }

  on<K extends keyof EslConnectionEvents>(type: K, listener: EslConnectionEvents[K]): () => void {
    const list = this.listeners[type] as Array<EslConnectionEvents[K]>;
    if (!list.includes(listener)) list.push(listener);
    return () => {
      const at = list.indexOf(listener);
      if (at >= 0) list.splice(at, 1);
    };
  }

  /** Sends one command and resolves with its command/reply; -ERR rejects with ESL_COMMAND_FAILED. */
  async command(text: string, options: CommandOptions = {}): Promise<CommandReply> {
    const frame = await this.request(commandText(text), text.split(' ')[0] ?? text, options);
    if (frame.kind !== 'command/reply') throw new EslError('ESL_PROTOCOL', `expected command/reply to ${text}, got ${frame.kind}`);
    if (!frame.ok) throw new EslError('ESL_COMMAND_FAILED', `${text.split(' ')[0]}: ${frame.reply}`);
    // headers read lazily: for the connect reply they are its ~170 url-encoded headers, decoded on first read.
    return {
      text: frame.reply,
      get headers() {
        return frame.headers;
      },
      channelData: frame.channelData,
    };
  }

  /** `api <cmd>`; resolves with the api/response body as FreeSWITCH sent it (API errors read "-ERR ..."). */
  async api(cmd: string, options: CommandOptions = {}): Promise<string> {
    const frame = await this.request(commandText(`api ${cmd}`), 'api', options);
    if (frame.kind !== 'api/response') throw new EslError('ESL_PROTOCOL', `expected api/response, got ${frame.kind}`);
    return frame.body;
  }

  /** Writes a raw message (e.g. a sendmsg) and waits for its reply; -ERR rejects with ESL_COMMAND_FAILED. */
  async sendmsg(message: string, options: CommandOptions = {}): Promise<CommandReply> {
    const frame = await this.request(message, 'sendmsg', options);
    if (frame.kind !== 'command/reply') throw new EslError('ESL_PROTOCOL', `expected command/reply to sendmsg, got ${frame.kind}`);
    if (!frame.ok) throw new EslError('ESL_COMMAND_FAILED', `sendmsg: ${frame.reply}`);
    return { text: frame.reply, headers: frame.headers, channelData: undefined };
  }

  /**
   * Runs a dialplan app on the channel (sendmsg execute with a fresh Event-UUID) and resolves with the
   * CHANNEL_EXECUTE_COMPLETE whose Application-UUID is that Event-UUID; completions of other apps (a broadcast
   * playback during a bridge) are ignored. Rejects on timeout, -ERR, hangup, disconnect and abort.
   */
  execute(app: string, arg: string | undefined, options: ExecuteOptions = {}): Promise<EslEvent> {
    const eventUuid = randomUUID();
    let message: string;
    try {
      message = sendmsgExecute(app, arg, eventUuid, options.eventLock ?? true);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (this.isClosed) return Promise.reject(this.closedError());
    if (this.isChannelGone) return Promise.reject(new EslError('ESL_HANGUP', `${app}: the channel has hung up`));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortedError(app));
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;

    let execution!: Execution;
    const completion = new Promise<EslEvent>((resolve, reject) => {
      execution = new Execution(this.executions, eventUuid, app, options.hangupGraceMs ?? 0, signal, timeoutMs, resolve, reject);
    });
    this.executions.set(eventUuid, execution);
    completion.catch(() => undefined); // as before: a caller that drops the promise gets no unhandled rejection
    // The reply only says whether FreeSWITCH queued the app; the completion (or a timeout, abort, hangup or close,
    // which settle the execution directly) is the answer. The reply's own slot carries no abort listener: an abort
    // settles the execution, and the late reply is still consumed by its slot.
    this.request(message, app, { timeoutMs: Math.min(timeoutMs, this.commandTimeoutMs) }, options.withNext).then(
      (frame) => {
        if (frame.kind === 'command/reply' && !frame.ok) execution.settle(new EslError('ESL_COMMAND_FAILED', `${app}: ${frame.reply}`));
      },
      (err: Error) => execution.settle(err),
    );
    return completion;
  }

  /** Drops the socket now. */
  destroy(cause?: Error): void {
    if (cause) this.closedCause ??= cause;
    this.socket.destroy();
  }

  private request(text: string, what: string, { signal, timeoutMs = this.commandTimeoutMs }: CommandOptions, withNext = false): Promise<ReplyFrame> {
    if (this.isClosed || this.socket.destroyed || !this.socket.writable) return Promise.reject(this.closedError());
    if (signal?.aborted) return Promise.reject(abortedError(what));
    const reply = new Promise<ReplyFrame>((resolve, reject) => {
      // A slot that timed out or was aborted stays queued: its late reply must still be consumed by it, or every
      // later reply would be handed to the wrong command.
      this.slots.push(new Slot(what, signal, timeoutMs, resolve, reject));
    });
    // The reply slot is queued now and the bytes leave before any later command's: replies stay in order.
    if (withNext) this.defer(text);
    else this.write(text);
    return reply;
  }

  /** Messages waiting to leave with the next write (see ExecuteOptions.withNext). */
  private deferred: string[] = [];
  private deferTimer: NodeJS.Timeout | undefined;
  private flushDeferred(): void {
    this.deferTimer = undefined;
    if (this.deferred.length && !this.isClosed) this.write('');
  }

  private defer(text: string): void {
    this.deferred.push(text);
    this.deferTimer ??= setTimeout(flushDeferred, DEFER_MAX_MS, this);
  }

  /** What this tick wrote, leaving in one socket write at the end of the tick. */
  private out = '';
  private flushing = false;
  private flush(): void {
    this.flushing = false;
    const text = this.out;
    this.out = '';
    if (text && !this.socket.destroyed) this.socket.write(text);
  }

  /**
   * Commands written in the same tick leave in one write: `Promise.all([exec(a), exec(b)])` costs one syscall (and
   * one read on the other side), and FreeSWITCH runs queued executes in order, as async mode always does. They are
   * joined into one string (one socket.write, no cork/writev bookkeeping).
   */
  private write(text: string): void {
    if (this.deferred.length) {
      clearTimeout(this.deferTimer);
      this.deferTimer = undefined;
      this.out += this.deferred.join('');
      this.deferred = [];
    }
    this.out += text;
    if (!this.flushing) {
      this.flushing = true;
      process.nextTick(flush, this);
    }
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      eslProtocolErrorsTotal.inc();
      this.log.warn({ err }, 'esl protocol error, dropping the connection');
      this.destroy(err as Error);
      return;
    }
    for (const raw of frames) {
      if (this.socket.destroyed) return;
      try {
        this.dispatch(toFrame(raw));
      } catch (err) {
        eslProtocolErrorsTotal.inc();
        this.log.warn({ err }, 'esl protocol error, dropping the connection');
        this.destroy(err as Error);
        return;
      }
    }
  }

  private dispatch(frame: EslFrame): void {
    switch (frame.kind) {
      case 'command/reply':
      case 'api/response': {
        const slot = this.slots.shift();
        if (!slot) this.log.warn({ kind: frame.kind }, 'esl reply with no command pending, ignored');
        else slot.settle(undefined, frame);
        return;
      }
      case 'event':
        this.onEvent(frame.event);
        return;
      case 'disconnect-notice':
        if (frame.disposition === 'linger') this.onChannelGone();
        else for (const execution of [...this.executions.values()]) execution.settle(this.closedError('disconnect notice'));
        this.emit('notice', frame.disposition, frame.body);
        return;
      default:
        this.log.debug({ kind: frame.kind }, 'esl frame ignored');
    }
  }

  private onEvent(event: EslEvent): void {
    const name = event.name;
    if (name === 'CHANNEL_EXECUTE_COMPLETE') {
      const appUuid = event.get('Application-UUID');
      if (appUuid !== undefined) this.executions.get(appUuid)?.settle(undefined, event);
    } else if (name === 'CHANNEL_HANGUP' || name === 'CHANNEL_HANGUP_COMPLETE') {
      this.onChannelGone();
      // Every app that ran has completed before HANGUP_COMPLETE (the socket app's own EXECUTE_COMPLETE comes first);
      // an execute still waiting was queued behind the hangup and never runs (README observations 6, 8): no grace left.
      if (name === 'CHANNEL_HANGUP_COMPLETE') {
        for (const execution of [...this.executions.values()]) {
          execution.settle(new EslError('ESL_HANGUP', `${execution.app}: never ran, the channel hung up first`));
        }
      }
    }
    this.emit('event', event);
  }

  private onChannelGone(): void {
    if (this.isChannelGone) return;
    this.isChannelGone = true;
    for (const execution of [...this.executions.values()]) {
      if (execution.graceMs > 0) execution.enterGrace();
      else execution.settle(new EslError('ESL_HANGUP', `${execution.app}: the channel hung up`));
    }
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.deferTimer);
    this.deferred = [];
    if (this.slots.length || this.executions.size) {
      const err = this.closedError(); // an Error (and its stack) only when someone is waiting
      for (const slot of this.slots.splice(0)) slot.settle(err);
      for (const execution of [...this.executions.values()]) execution.settle(err);
    }
    this.emit('close', this.closedCause);
    for (const list of Object.values(this.listeners)) list.length = 0;
  }

  private closedError(why = 'socket closed'): EslError {
    return new EslError('ESL_SOCKET_CLOSED', this.closedCause ? `${why}: ${this.closedCause.message}` : why, { cause: this.closedCause });
  }

  private emit<K extends keyof EslConnectionEvents>(type: K, ...args: Parameters<EslConnectionEvents[K]>): void {
    const list = this.listeners[type];
    if (list.length === 0) return;
    for (const listener of list.slice()) {
      try {
        (listener as (...a: Parameters<EslConnectionEvents[K]>) => void)(...args);
      } catch (err) {
        this.log.error({ err, type }, 'esl listener threw');
      }
    }
  }
}

// Module functions with the connection as argument, not a bound closure per connection.
const flush = (c: EslConnection): void => c['flush']();
const flushDeferred = (c: EslConnection): void => c['flushDeferred']();

const abortedError = (what: string): EslError => new EslError('ESL_ABORTED', `${what} aborted`);
