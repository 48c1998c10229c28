/** App execution: the sendmsg queue, EXECUTE / EXECUTE_COMPLETE, and each app's body (playback, say, play_and_get_digits...). */
import { AppSignal } from './clock.ts';
import { parsePagdArgs, runPagd } from './pagd.ts';
import { sayFiles } from './say.ts';
import type { AppRun, HangupAt } from './types.ts';
import { type Pairs, TICK_MS, keyTimeline, PARSING_APPS } from './session-io.ts';
import { SessionCommands } from './session-commands.ts';

export abstract class SessionApps extends SessionCommands {
  protected async executor(): Promise<void> {
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
  protected noteNesting(next: string): void {
    const holder = this.running;
    if (holder && !holder.locked && PARSING_APPS.has(holder.name)) this.result.nestedExecutes.push({ outer: holder.name, inner: next });
  }

  protected appHeaders(name: string, arg: string, eventUuid: string, response?: string): Pairs {
    const h: Pairs = [['Application', name]];
    if (arg) h.push(['Application-Data', arg]);
    if (response !== undefined) h.push(['Application-Response', response]);
    h.push(['Application-UUID', eventUuid]);
    return h;
  }

  /** Runs one app: EXECUTE, body, EXECUTE_COMPLETE (after CHANNEL_HANGUP when the call ends meanwhile). */
  protected execute(name: string, arg: string, eventUuid: string, broadcast = false, locked = false): Promise<void> {
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

  protected hangupPlan(app: string, nth: number) {
    const h = this.script.hangupAt;
    if (!h || h.app !== app || (h.nth ?? 1) !== nth) return undefined;
    return h;
  }

  protected async body(name: string, arg: string, nth: number, signal: AppSignal): Promise<string> {
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

  protected async callerHangupAfter(ms: number, plan: HangupAt, signal: AppSignal): Promise<void> {
    if (await this.clock.sleep(ms, signal)) this.hangup(plan.cause ?? 'NORMAL_CLEARING', 'caller');
  }

  /** Waits an app's duration; a scripted caller hangup inside it ends the call. */
  protected async timed(ms: number, plan: { afterMs?: number; cause?: string } | undefined, signal: AppSignal, resp: string) {
    if (plan && (plan.afterMs ?? 0) < ms) {
      if (await this.clock.sleep(plan.afterMs ?? 0, signal)) this.hangup(plan.cause ?? 'NORMAL_CLEARING', 'caller');
      return resp;
    }
    await this.clock.sleep(ms, signal);
    return resp;
  }

  protected async pagd(arg: string, nth: number, signal: AppSignal): Promise<string> {
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
  protected pagdAborted(out: ReturnType<typeof runPagd>, varName: string): string {
    const now = this.clock.nowUs();
    const typed = out.dtmf.filter((k) => k.key !== '#').length;
    const ops = out.varOps.slice(0, typed + 1);
    for (const [k, v] of ops) this.setVar(k, v);
    this.result.digits.push({ varName, value: this.ch.vars.get(varName), readResult: this.ch.vars.get('read_result') ?? 'failure' });
    void now;
    return '_none_';
  }
}
