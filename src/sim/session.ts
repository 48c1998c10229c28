/**
 * One simulated call: FreeSWITCH's outbound socket connection to the ESL server, from `connect` to `exit`.
 * Commands are answered as they arrive; sendmsg executes are queued and run one at a time on the channel,
 * like mod_event_socket in async mode. Every app can be cut short by a hangup. A sendmsg hangup waits behind an app
 * sent with `event-lock: true` (and what is queued after it), as in FreeSWITCH; an execute that FreeSWITCH would run
 * nested inside an app without the lock still runs in order here, and is reported (CallResult.nestedExecutes).
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { FrameSplitter, type RawFrame } from './codec.ts';
import { disconnectNotice, lingerNotice } from './frames.ts';
import { ivrLegCdrJson, postJsonCdr, q850Of } from './jsoncdr.ts';
import type { CallResult } from './types.ts';
import { fsStamp as fsStampLocal } from './clock.ts';
import { SOCKET_APP_DATA, MAYBE_DROPPED, TICK_MS } from './session-io.ts';
import { SessionBridge } from './session-bridge.ts';

export { defaultSoundDurationMs } from './session-io.ts';

export class SimSession extends SessionBridge {
  run(): Promise<CallResult> {
    const done = new Promise<CallResult>((r) => (this.resolveEnd = r));
    this.connect();
    void this.executor();
    return done;
  }

  /** The `socket` dialplan app: one outbound connection to the ESL server for this channel. */
  protected connect(): void {
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
  protected detach(): void {
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

  protected async finishHangupQuietly() {
    this.running?.ctrl.abort();
    this.bLeg?.wake?.abort();
    this.ch.hangupUs = this.clock.nowUs();
    this.applyHangupVars(this.result.hangupCause ?? 'NORMAL_CLEARING', this.result.hangupBy ?? 'client');
    this.postOwnCdr();
  }

  /** jsonCdrAllLegs: the IVR leg's own CDR, posted in CS_REPORTING like the carrier leg's (no retries shown here). */
  protected postOwnCdr(): void {
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

  protected applyHangupVars(cause: string, by: string) {
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

  protected finish(how: CallResult['end']): void {
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
