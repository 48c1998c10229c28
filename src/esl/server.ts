/**
 * The outbound event-socket server: FreeSWITCH connects here from the dialplan
 * (`<action application="socket" data="127.0.0.1:8040 async full"/>`), one TCP connection per call.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { CallSession, type CallTimeouts } from './call-session.ts';
import { EslConnection } from './connection.ts';
import { EslError } from './errors.ts';
import { NAME_ONLY_EVENTS, type EslEvent, type FrameParserLimits } from './parser.ts';

export interface EslServerOptions {
  host?: string;
  port: number;
  logger: Logger;
  /** `myevents json` (exact values, needed for b_leg_cdr) or `myevents` (text/event-plain). */
  eventFormat?: 'json' | 'plain';
  onCall(session: CallSession): Promise<void>;
  commandTimeoutMs?: number;
  callTimeouts?: Partial<CallTimeouts>;
  /** After onCall: how long to wait for CHANNEL_HANGUP_COMPLETE and the linger notice before `exit`. */
  lingerWaitMs?: number;
  /** Unset b_leg_cdr once the bridge result has it, so later events do not repeat it (default true). */
  dropCarrierCdr?: boolean;
  limits?: FrameParserLimits;
  /**
   * Event kinds to drop from the subscription with `nixevent` right after `myevents` (FreeSWITCH clears them from
   * the listener's event list). ccard never reads them, and they are most of a call's frames. Default none.
   */
  unsubscribe?: readonly string[];
  /**
   * Ask for `resume` in the handshake (default true): if this process dies, FreeSWITCH does not hang the caller up
   * but runs the dialplan's next action, a second `socket` to another process (README-resume.md).
   */
  resume?: boolean;
  /** CHANNEL_DATA headers the session keeps besides its defaults (CallSessionOptions.keepHeaders). */
  keepHeaders?: readonly string[];
}

/** The events myevents delivers that nothing in ccard reads: what the service unsubscribes from. */
export const UNUSED_EVENTS: readonly string[] = NAME_ONLY_EVENTS;

export interface EslServer {
  /** Resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting, waits up to timeoutMs for the calls in progress, then drops what is left. */
  close(timeoutMs?: number): Promise<void>;
  /** Connections being served (handshake, call, or teardown). */
  readonly activeSessions: number;
}

const DEFAULT_LINGER_WAIT_MS = 10_000;
const EXIT_WAIT_MS = 1_000;
const DROP_WAIT_MS = 1_000;

export function createEslServer(options: EslServerOptions): EslServer {
  const { logger, host = '127.0.0.1', eventFormat = 'json' } = options;
  const active = new Map<EslConnection, Promise<void>>();
  let connectionSeq = 0;

  const server = net.createServer((socket) => {
    const seq = ++connectionSeq;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const connection = new EslConnection(socket, { logger, logBindings: { esl: seq, remote }, commandTimeoutMs: options.commandTimeoutMs, limits: options.limits });
    const served = serve(connection, seq, remote)
      .catch((err: unknown) => logger.warn({ err, esl: seq, remote }, 'esl connection failed'))
      .finally(() => {
        connection.destroy();
        active.delete(connection);
      });
    active.set(connection, served);
  });
  server.on('error', (err) => logger.error({ err }, 'esl server error'));

  async function serve(connection: EslConnection, seq: number, remote: string): Promise<void> {
    // Registered before anything is sent, so that a very early hangup is not missed.
    let hangupComplete = false;
    let lingerDone = false;
    connection.on('event', (e: EslEvent) => {
      if (e.name === 'CHANNEL_HANGUP_COMPLETE') hangupComplete = true;
    });
    connection.on('notice', (disposition) => {
      lingerDone = true;
      if (disposition !== 'linger') hangupComplete = true; // FreeSWITCH is closing: nothing more will come
    });
    // The connect reply (~7-13 KB of CHANNEL_DATA) is read in handshake() and not kept by this frame: the session
    // copies out what it reads (CallSession), so a held call does not keep the whole block for its duration.
    const session = await handshake(connection, seq, remote);
    if (!session) return;
    const { log } = session;
    // debug: the call's one info line is its summary when it ends (src/flow/run.ts).
    log.debug({ did: session.info.did, callerId: session.info.callerId }, 'call started');
    try {
      await options.onCall(session);
    } catch (err) {
      log.error({ err }, 'call handler failed');
    }
    if (connection.closed) return;
    await session.hangup();
    // With linger FreeSWITCH keeps the socket after the hangup until it sends the linger notice; the notice and
    // HANGUP_COMPLETE come in either order (README observation 6), so wait for both, bounded.
    await until(() => (hangupComplete && lingerDone) || connection.closed, connection, options.lingerWaitMs ?? DEFAULT_LINGER_WAIT_MS);
    if (connection.closed) return;
    await connection.command('exit', { timeoutMs: EXIT_WAIT_MS }).catch(() => undefined);
    log.debug('call finished');
  }

  /** connect, myevents, nixevent, linger, resume; the session, or undefined when the socket is in the wrong mode. */
  async function handshake(connection: EslConnection, seq: number, remote: string): Promise<CallSession | undefined> {
    const early = (): Logger => logger.child({ esl: seq, remote });
    // The whole handshake leaves in one write: FreeSWITCH reads its socket in order and replies in order, and a
    // socket in the wrong mode is closed whatever the other replies say.
    const connecting = connection.command('connect');
    const subscribed = connection.command(eventFormat === 'json' ? 'myevents json' : 'myevents');
    const nixed = options.unsubscribe?.length
      ? connection
          .command(`nixevent ${options.unsubscribe.join(' ')}`)
          // An older FreeSWITCH refusing nixevent only costs bandwidth: carry on with the full stream.
          .catch((err: unknown) => early().warn({ err }, 'nixevent refused; receiving every event'))
      : undefined;
    const lingering = connection.command('linger');
    const resuming =
      options.resume === false
        ? undefined
        : connection
            .command('resume')
            // Without it a dead process still drops its callers, as before: carry on.
            .catch((err: unknown) => early().warn({ err }, 'resume refused; callers are dropped if this process dies'));
    const handshake = Promise.all([subscribed, nixed, lingering, resuming]);
    handshake.catch(() => undefined); // awaited once the mode is known to be right
    const data = (await connecting).channelData;
    if (!data) throw new EslError('ESL_PROTOCOL', 'connect reply carries no channel data');
    const mode = data.get('Socket-Mode');
    const control = data.get('Control');
    if (control !== 'full' || mode !== 'async') {
      early().error(
        { socketMode: mode, control },
        'FreeSWITCH socket app must be "socket <host:port> async full" in the dialplan; closing this call',
      );
      return undefined;
    }
    // One logger per call (not one per connection and one more per call): each pino child costs ~0.5 KiB held.
    const log = logger.child({ esl: seq, remote, call: data.get('Unique-ID') });
    await handshake;
    return new CallSession(connection, data, {
      logger: log,
      timeouts: options.callTimeouts,
      dropCarrierCdr: options.dropCarrierCdr,
      keepHeaders: options.keepHeaders,
    });
  }

  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, host, () => {
          server.off('error', reject);
          const address = server.address() as net.AddressInfo;
          logger.info({ host: address.address, port: address.port }, 'esl server listening');
          resolve({ host: address.address, port: address.port });
        });
      }),
    close: async (timeoutMs = 10_000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const all = Promise.allSettled([...active.values()]);
      let timer: NodeJS.Timeout | undefined;
      const expired = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (expired) {
        logger.warn({ sessions: active.size }, 'esl server closing: dropping calls still in progress');
        for (const connection of active.keys()) connection.destroy();
        // A handler that ignores its hangupSignal must not keep close() pending forever.
        await Promise.race([all, new Promise((resolve) => setTimeout(resolve, DROP_WAIT_MS).unref())]);
      }
      await closed;
    },
    get activeSessions() {
      return active.size;
    },
  };
}

/** Resolves when done() holds after some event on the connection, or after timeoutMs. */
function until(done: () => boolean, connection: EslConnection, timeoutMs: number): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (!done()) return;
      finish();
    };
    const offs = [connection.on('event', check), connection.on('notice', check), connection.on('close', check)];
    const timer = setTimeout(() => finish(), timeoutMs);
    function finish(): void {
      clearTimeout(timer);
      for (const off of offs) off();
      resolve();
    }
  });
}
