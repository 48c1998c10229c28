/** The ESL command dispatcher: api, sendmsg, events, linger, resume... as mod_event_socket answers them. */
import { randomUUID } from 'node:crypto';
import { header, type RawFrame } from './codec.ts';
import { apiResponse, commandReply, disconnectNotice } from './frames.ts';
import { SCHED_REPLY, schedTime } from './sched.ts';
import { TICK_MS, SessionIo } from './session-io.ts';

export abstract class SessionCommands extends SessionIo {
  protected async onCommand(f: RawFrame): Promise<void> {
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
  protected liveNowUs(): number {
    const from = this.bLeg?.from;
    if (!from || this.clock.timeScale <= 0) return this.clock.nowUs();
    const elapsed = ((performance.now() - from.real) * 1000) / this.clock.timeScale;
    return Math.max(this.clock.nowUs(), from.us + Math.min(from.targetUs - from.us, Math.round(elapsed)));
  }

  /** sched_hangup, sched_broadcast, sched_del (mod_commands.c; replies as recorded in README-extend.md). */
  protected schedApi(fn: string, a: string[]): string {
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

  protected api(text: string): string {
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

  protected onSendmsg(f: RawFrame): void {
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
}
