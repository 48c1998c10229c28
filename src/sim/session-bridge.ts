/** The bridge app: the carrier leg (scripted by the dial string's carrier), its events, CDR and variables. */
import { randomUUID } from 'node:crypto';
import { AppSignal } from './clock.ts';
import { Channel } from './channel.ts';
import { defaultCarrier, REJECTS, type CarrierScript } from './carrier.ts';
import { parseDialString } from './dialstring.ts';
import { backupCdr, bLegCdrJson, postJsonCdr, q850Of, writeCdrFile, type BLegFacts } from './jsoncdr.ts';
import { schedTime } from './sched.ts';
import type { BLegResult } from './types.ts';
import { fill as fillTokens } from './tokens.ts';
import { type Pairs, TICK_MS, templatesOtherLeg } from './session-io.ts';
import { SessionApps } from './session-apps.ts';

export abstract class SessionBridge extends SessionApps {
  protected async bridge(arg: string, nth: number, signal: AppSignal): Promise<string> {
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
  protected endBLeg(uuid: string): void {
    this.sched.dropGroup(uuid);
    this.sched.onChange = undefined;
    if (this.bLeg?.uuid === uuid) this.bLeg = undefined;
  }

  protected afterBLegEnd(res: BLegResult, leg: BLegFacts, tokens: ReturnType<Channel['tokens']>, dialVars: Record<string, string>) {
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

  protected failVars(res: BLegResult, leg: BLegFacts, cause: string, sip?: { code: number; phrase: string }): string {
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

  protected otherLegHeaders(leg: BLegFacts, tokens: ReturnType<Channel['tokens']>): Pairs {
    const t: Record<string, string> = {
      'Other-Leg-Profile-Created-Time': String(leg.createdUs),
      'Other-Leg-Channel-Created-Time': String(leg.createdUs),
      'Other-Leg-Channel-Answered-Time': String(leg.answeredUs),
      'Other-Leg-Channel-Progress-Time': String(leg.progressUs),
    };
    return (templatesOtherLeg as Pairs).map(([k, v]) => [k, t[k] ?? fillTokens(v, tokens)]);
  }
}
