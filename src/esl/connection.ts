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

interface Pending<T> {
  settled: boolean;
  settle(err: Error | undefined, value?: T): void;
}

interface Execution extends Pending<EslEvent> {
  app: string;
  graceMs: number;
  enterGrace(): void;
}

export class EslConnection {
  private readonly parser: FrameParser;
  #log: Logger;
  #logBindings: Record<string, unknown> | undefined;
  private readonly commandTimeoutMs: number;
  /** One slot per command written, oldest first; every command/reply or api/response settles the head. */
  private readonly slots: Pending<ReplyFrame>[] = [];
  private readonly executions = new Map<string, Execution>();
  private readonly listeners: { [K in keyof EslConnectionEvents]: Set<EslConnectionEvents[K]> } = {
    event: new Set(),
    notice: new Set(),
    close: new Set(),
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
    this.listeners[type].add(listener);
    return () => this.listeners[type].delete(listener);
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
  async execute(app: string, arg: string | undefined, options: ExecuteOptions = {}): Promise<EslEvent> {
    const eventUuid = randomUUID();
    const message = sendmsgExecute(app, arg, eventUuid, options.eventLock ?? true);
    if (this.isClosed) throw this.closedError();
    if (this.isChannelGone) throw new EslError('ESL_HANGUP', `${app}: the channel has hung up`);
    const { signal } = options;
    if (signal?.aborted) throw abortedError(app);
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;

    let execution!: Execution;
    const completion = new Promise<EslEvent>((resolve, reject) => {
      let timer = setTimeout(() => execution.settle(new EslError('ESL_TIMEOUT', `${app} did not complete within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => execution.settle(abortedError(app));
      signal?.addEventListener('abort', onAbort, { once: true });
      execution = {
        app,
        graceMs: options.hangupGraceMs ?? 0,
        settled: false,
        settle: (err, event) => {
          if (execution.settled) return;
          execution.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.executions.delete(eventUuid);
          if (err) reject(err);
          else resolve(event as EslEvent);
        },
        enterGrace: () => {
          clearTimeout(timer);
          timer = setTimeout(
            () => execution.settle(new EslError('ESL_HANGUP', `${app}: channel hung up and no completion within ${execution.graceMs} ms`)),
            execution.graceMs,
          );
        },
      };
      this.executions.set(eventUuid, execution);
    });
    completion.catch(() => undefined); // observed below; avoids an unhandled rejection if the reply fails first

    try {
      await this.request(message, app, { signal, timeoutMs: Math.min(timeoutMs, this.commandTimeoutMs) }, options.withNext).then((frame) => {
        if (frame.kind === 'command/reply' && !frame.ok) throw new EslError('ESL_COMMAND_FAILED', `${app}: ${frame.reply}`);
      });
    } catch (err) {
      execution.settle(err as Error);
    }
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
    return new Promise<ReplyFrame>((resolve, reject) => {
      const onAbort = (): void => slot.settle(abortedError(what));
      const timer = setTimeout(() => slot.settle(new EslError('ESL_TIMEOUT', `no reply to ${what} within ${timeoutMs} ms`)), timeoutMs);
      // A slot that timed out or was aborted stays queued: its late reply must still be consumed by it, or every
      // later reply would be handed to the wrong command.
      const slot: Pending<ReplyFrame> = {
        settled: false,
        settle: (err, frame) => {
          if (slot.settled) return;
          slot.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(frame as ReplyFrame);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // The reply slot is queued now and the bytes leave before any later command's: replies stay in order.
      this.slots.push(slot);
      if (withNext) this.defer(text);
      else this.write(text);
    });
  }

  /** Messages waiting to leave with the next write (see ExecuteOptions.withNext). */
  private deferred: string[] = [];
  private deferTimer: NodeJS.Timeout | undefined;
  private readonly flushDeferred = (): void => {
    this.deferTimer = undefined;
    if (this.deferred.length && !this.isClosed) this.write('');
  };

  private defer(text: string): void {
    this.deferred.push(text);
    this.deferTimer ??= setTimeout(this.flushDeferred, DEFER_MAX_MS);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /**
   * Commands written in the same tick leave in one write: `Promise.all([exec(a), exec(b)])` costs one syscall (and
   * one read on the other side), and FreeSWITCH runs queued executes in order, as async mode always does.
   */
  private write(text: string): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    if (this.deferred.length) {
      clearTimeout(this.deferTimer);
      this.deferTimer = undefined;
      for (const d of this.deferred.splice(0)) this.socket.write(d);
    }
    if (text) this.socket.write(text);
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
    const err = this.closedError();
    for (const slot of this.slots.splice(0)) slot.settle(err);
    for (const execution of [...this.executions.values()]) execution.settle(err);
    this.emit('close', this.closedCause);
    for (const set of Object.values(this.listeners)) set.clear();
  }

  private closedError(why = 'socket closed'): EslError {
    return new EslError('ESL_SOCKET_CLOSED', this.closedCause ? `${why}: ${this.closedCause.message}` : why, { cause: this.closedCause });
  }

  private emit<K extends keyof EslConnectionEvents>(type: K, ...args: Parameters<EslConnectionEvents[K]>): void {
    for (const listener of [...this.listeners[type]]) {
      try {
        (listener as (...a: Parameters<EslConnectionEvents[K]>) => void)(...args);
      } catch (err) {
        this.log.error({ err, type }, 'esl listener threw');
      }
    }
  }
}

const abortedError = (what: string): EslError => new EslError('ESL_ABORTED', `${what} aborted`);
