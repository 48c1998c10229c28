/**
 * Reservations in slices, the call's side (issue 15 §2; README-extend.md). The carrier leg starts capped at the
 * first slice (the dial string's execute_on_answer). Once it answers, a timer fires some seconds before the cap
 * (before the warning, when there is one); it asks billing to grow the hold by a slice (as much as the card can fund)
 * and re-arms the cap on the carrier leg in one write. When the card cannot fund a second more, nothing is sent: the
 * armed cap and its warning stay, and the call ends there. If ccard dies, FreeSWITCH still enforces the armed cap.
 *
 * The keeper is one timer at a time, killed by stop() (the bridge ends, or the flow leaves the state).
 */
import type { Logger } from 'pino';
import type { Call, CarrierAnswer } from './call.ts';
import type { CallServices, Reservation } from './services.ts';

export interface SliceKeeperInput {
  call: Call;
  services: CallServices;
  reservation: Reservation;
  /** The warning re-armed with every new cap (absolute path; played `secondsBeforeEnd` before it), if any. */
  warning?: { file: string; secondsBeforeEnd: number; minLeadSec: number };
  log: Logger;
}

export interface SliceKeeper {
  /** For BridgeRequest.onAnswered. */
  onAnswered(a: CarrierAnswer): void;
  /** Kills the timer; an extension in flight re-arms nothing afterwards. Idempotent. */
  stop(): void;
  /** The cap (seconds from answer) armed now. */
  readonly capSeconds: number;
  /** Extensions done and the last outcome, for the flow's record and the tests. */
  readonly extensions: number;
  readonly ended: 'running' | 'stopped' | 'unfunded' | 'gone' | 'error';
}

/** Seconds before the cap (before the warning) that the extension is tried: room for Redis, PostgreSQL and ESL. */
export function extensionLeadSec(sliceSeconds: number): number {
  return Math.min(10, Math.max(1, Math.floor(sliceSeconds / 3)));
}

/** Whether a warning fits before a cap that is `remaining` seconds away (as the dial string decides it). */
const warningFits = (w: SliceKeeperInput['warning'], remaining: number): w is NonNullable<SliceKeeperInput['warning']> =>
  w !== undefined && remaining > w.secondsBeforeEnd + w.minLeadSec;

/** A keeper that does nothing (no slices: one hold covers the whole call). */
export const NO_SLICES: SliceKeeper = {
  onAnswered: () => {},
  stop: () => {},
  capSeconds: 0,
  extensions: 0,
  ended: 'stopped',
};

export function startSliceKeeper(input: SliceKeeperInput): SliceKeeper {
  const { call, services, reservation: r, log } = input;
  const slice = r.sliceSeconds;
  if (!slice || !services.extend || !call.rearmCap) return NO_SLICES;
  const extend = services.extend.bind(services);
  const rearm = call.rearmCap.bind(call);
  const lead = extensionLeadSec(slice);
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let answer: CarrierAnswer | undefined;
  const state = {
    capSeconds: r.maxSeconds,
    extensions: 0,
    ended: 'running' as SliceKeeper['ended'],
  };

  const finish = (how: SliceKeeper['ended']): void => {
    if (state.ended === 'running') state.ended = how;
    clearTimeout(timer);
    timer = undefined;
  };

  /**
   * Next attempt: `lead` seconds before the warning (or the cap), placed on the half second of FreeSWITCH's clock
   * so that the whole-second tick of `+N` is the one counted here, even with some transit time.
   */
  const schedule = (): void => {
    if (state.ended !== 'running' || !answer) return;
    const warnBefore = warningFits(input.warning, state.capSeconds) ? input.warning!.secondsBeforeEnd : 0;
    const answerSec = Math.floor(answer.answeredUs / 1e6);
    const atUs = (answerSec + state.capSeconds - warnBefore - lead) * 1e6 + 500_000;
    const delayMs = Math.max(0, (atUs - answer.switchNowUs()) / 1000);
    timer = setTimeout(() => void attempt(), delayMs);
    timer.unref?.();
  };

  const attempt = async (): Promise<void> => {
    timer = undefined;
    if (state.ended !== 'running' || !answer || call.hungUp) return finish('stopped');
    const a = answer;
    const answerSec = Math.floor(a.answeredUs / 1e6);
    const talked = Math.floor(a.switchNowUs() / 1e6) - answerSec;
    try {
      const got = await extend(r, state.capSeconds + slice, talked);
      if (state.ended !== 'running') return;
      if (!got.ok) {
        log.info({ callId: r.callId, cap: state.capSeconds, reason: got.reason }, 'call not extended: it ends at its cap');
        return finish(got.reason === 'gone' ? 'gone' : 'unfunded');
      }
      // +N counts from FreeSWITCH's whole second when the API runs: the cap lands on answer second + new cap.
      const nowSec = Math.floor(a.switchNowUs() / 1e6);
      const inSeconds = answerSec + got.maxSeconds - nowSec;
      if (inSeconds < 1) return finish('stopped');
      const warning = warningFits(input.warning, inSeconds)
        ? { file: input.warning!.file, inSeconds: inSeconds - input.warning!.secondsBeforeEnd }
        : undefined;
      const armed = await rearm({ carrierUuid: a.carrierUuid, inSeconds, warning }, abort.signal);
      if (armed === 'gone') return finish('gone');
      state.capSeconds = got.maxSeconds;
      state.extensions++;
      log.debug({ callId: r.callId, cap: got.maxSeconds }, 'call extended');
      schedule();
    } catch (err) {
      // The cap armed before stays: the call ends there, never later than what is held.
      if (state.ended === 'running') log.warn({ err, callId: r.callId }, 'call extension failed: it ends at its cap');
      finish('error');
    }
  };

  return {
    onAnswered(a) {
      if (answer || state.ended !== 'running') return;
      answer = a;
      schedule();
    },
    stop() {
      abort.abort();
      finish('stopped');
    },
    get capSeconds() {
      return state.capSeconds;
    },
    get extensions() {
      return state.extensions;
    },
    get ended() {
      return state.ended;
    },
  };
}
