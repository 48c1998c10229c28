import { assign } from 'xstate';
import { describeAnnouncement, type Announcement } from '../actors.ts';
import { updateLast, type CallAttempt, type EndReason, type FlowContext } from '../context.ts';
import { DEVICE_LOW_SECONDS } from '../device.ts';
import { buildDialString } from '../dial-string.ts';
import type { PromptName } from '../prompts.ts';
import type { Reservation, ReserveRefusal } from '../services.ts';
import { FAILED, flow, runEffect } from '../setup.ts';

// Rating and holding the call's cost (one atomic step), what a refusal does, and the dial string for the bridge.

const RESERVE_REFUSAL = {
  no_rate: 'no_rate',
  insufficient: 'insufficient_balance',
  too_many_calls: 'too_many_calls',
  card_unknown: 'card_unknown',
  card_disabled: 'card_disabled',
  card_expired: 'card_expired',
  retry: 'try_again',
  loss: 'destination_unprofitable',
  no_carrier: 'congestion',
} as const satisfies Record<ReserveRefusal, PromptName>;

/** Refusals about the card, not the number: the call ends (with this reason and prompt) instead of asking again. */
const ENDS_CALL: ReadonlySet<PromptName> = new Set(['too_many_calls', 'card_unknown', 'card_disabled', 'card_expired'] satisfies EndReason[]);

// Outside `session`: a hangup meanwhile only marks the caller gone, so a hold that is made is always recorded
// (and then released). The reservation rates the call too; its cap is what the duration announcement says.
export const reserving = flow.createStateConfig({
  entry: runEffect('reserve', ({ context }) => ({
    services: context.services,
    cardId: context.cardId!,
    number: context.number!,
    ctx: { ivrUuid: context.call.info.uuid, did: context.call.info.did, callerId: context.call.info.callerId },
    // What the card could spend when it was authorized is the first guess (the Lua script has the last word).
    // Once a reservation was made in this session (another call, a failover) that figure is stale: the live
    // store is read instead.
    hint: {
      card: context.card,
      available: context.attempts.length === 0 ? context.card?.available : undefined,
      triedCarriers: context.triedCarriers,
    },
  })),
  exit: 'stopEffect',
  on: {
    'reserve.done': [
      {
        guard: ({ event }) => event.output.ok,
        target: 'reserved',
        actions: [
          assign(({ context, event }) => {
            if (!event.output.ok) return {};
            const r = event.output.reservation;
            const attempt: CallAttempt = {
              callId: r.callId,
              number: context.number!,
              gateway: r.route?.gateway ?? context.gateway!,
              ...(r.route && { route: r.route }),
              maxSeconds: r.maxSeconds,
              outcome: 'not_bridged',
            };
            // "This call can last up to N minutes" goes out with the bridge (once: not again on a failover). In
            // slices: what the card's available balance buys for this call now, not the first slice. A device call
            // is silent unless the balance is low.
            const announce = r.announceSeconds ?? r.maxSeconds;
            const quiet = context.onFailover || (context.device !== undefined && announce >= DEVICE_LOW_SECONDS);
            const preamble = quiet ? [] : durationItems(announce);
            return {
              pending: r,
              bridge: undefined,
              bridgeError: undefined,
              dialString: undefined,
              attempts: [...context.attempts, attempt],
              preamble,
              played: [...context.played, ...preamble.map(describeAnnouncement)],
            };
          }),
          // Leaves with the bridge: a process that takes the call over settles this reservation.
          { type: 'markResume', params: { stage: 'r' } },
        ],
      },
      {
        target: '#call.session.reserveRefused',
        actions: assign({
          refusal: ({ event }) =>
            event.output.ok ? undefined : (event.output.prompt ?? RESERVE_REFUSAL[event.output.reason]),
        }),
      },
    ],
    'effect.error': FAILED,
  },
});

export const reserved = flow.createStateConfig({
  always: [{ guard: 'callerGone', target: 'closing' }, { target: '#call.session.buildingDialString' }],
});

export const reserveRefused = flow.createStateConfig({
  always: [
    {
      guard: ({ context }) => ENDS_CALL.has(context.refusal!),
      target: 'ending',
      actions: { type: 'endWith', params: ({ context }) => ({ reason: context.refusal as EndReason, prompt: context.refusal! }) },
    },
    { target: 'destination.refusing' },
  ],
});

export const buildingDialString = flow.createStateConfig({
  entry: assign(({ context }) => {
    try {
      const dialString = dialStringFor(context, context.pending!);
      return { dialString, attempts: updateLast(context.attempts, { dialString }) };
    } catch (error) {
      return { dialString: undefined, error };
    }
  }),
  always: [{ guard: 'dialStringBuilt', target: '#call.bridging' }, { target: 'failed' }],
});

/** mod_say_en reads a time of 0 as the current time: under a minute gets its own prompt, never "0". */
export function durationItems(maxSeconds: number): Announcement[] {
  const minutes = Math.floor(maxSeconds / 60);
  if (minutes < 1) return [{ prompt: 'less_than_one_minute' }];
  return [{ prompt: 'call_can_last' }, { say: 'NUMBER', text: String(minutes) }, { prompt: minutes === 1 ? 'minute' : 'minutes' }];
}

function dialStringFor(c: FlowContext, r: Reservation): string {
  const o = c.opts;
  const warn =
    o.warningPrompt !== null && r.maxSeconds > o.warningSecondsBeforeEnd + o.warningMinLeadSec
      ? {
          file: `${o.soundsPrefix}/${c.lang}/ccard/${o.warningRate}/${o.warningPrompt}.wav`,
          secondsBeforeEnd: o.warningSecondsBeforeEnd,
        }
      : undefined;
  return buildDialString({
    gateway: r.route?.gateway ?? c.gateway!,
    number: r.route?.dialNumber ?? c.number!,
    callId: r.callId,
    cardId: r.cardId,
    originateTimeoutSec: o.originateTimeoutSec,
    maxSeconds: r.maxSeconds,
    warning: warn,
  });
}
