import { assign } from 'xstate';
import type { BridgeResult } from '../call.ts';
import { errorText, updateLast } from '../context.ts';
import { flow, runEffect } from '../setup.ts';

// The end of every call: an error's way out, the goodbye, then settling what is still held and hanging up.

/** The settle input for a reservation whose bridge was never sent. */
const NOT_BRIDGED: BridgeResult = {
  disposition: 'NOT_BRIDGED',
  hangupCause: undefined,
  answered: false,
  carrierCdr: undefined,
  callerHungUp: true,
};

export const failed = flow.createStateConfig({
  entry: 'logError',
  always: [
    { guard: 'hangupError', target: '#call.closing', actions: 'markCallerGone' },
    {
      guard: 'serviceUnavailable',
      target: 'ending',
      actions: { type: 'endWith', params: { reason: 'service_unavailable', prompt: 'service_unavailable' } },
    },
    { target: '#call.closing', actions: { type: 'endWith', params: { reason: 'error' } } },
  ],
});

export const ending = flow.createStateConfig({
  always: [{ guard: ({ context }) => context.endPrompt !== undefined || context.preamble.length > 0, target: 'sayingEnd' }, { target: '#call.closing' }],
});

export const sayingEnd = flow.createStateConfig({
  entry: [
    'prepareCall',
    assign({ played: ({ context }) => (context.endPrompt ? [...context.played, context.endPrompt] : context.played) }),
    runEffect('announce', ({ context }) => ({
      call: context.call,
      lang: context.lang,
      items: [...context.preamble, ...(context.endPrompt ? [{ prompt: context.endPrompt }] : [])],
    })),
  ],
  exit: 'stopEffect',
  on: {
    'announce.done': '#call.closing',
    // Nothing left to say: a failed goodbye still closes the call.
    'effect.error': '#call.closing',
  },
});

export const closing = flow.createStateConfig({
  // Our own hangup fires hangupSignal too: it says nothing about the caller any more.
  on: { HANGUP: { actions: [] } },
  initial: 'choosing',
  states: {
    choosing: {
      always: [{ guard: 'hasPending', target: 'settling' }, { target: 'hangingUp' }],
    },
    settling: {
      // Only reservations that never reached the bridge get here (bridging always goes to settlingCall):
      // nothing was dialled, so say so and the hold is released at once instead of waiting for its deadline.
      entry: runEffect('settle', ({ context }) => ({ services: context.services, reservation: context.pending!, bridge: NOT_BRIDGED })),
      exit: 'stopEffect',
      on: {
        'settle.done': {
          target: 'hangingUp',
          actions: assign(({ context, event }) => ({ pending: undefined, attempts: updateLast(context.attempts, { settle: event.output }) })),
        },
        'effect.error': {
          target: 'hangingUp',
          actions: [
            { type: 'logSettleError', params: ({ event }) => ({ error: event.error }) },
            assign(({ context, event }) => ({
              pending: undefined,
              attempts: updateLast(context.attempts, { settleError: errorText(event.error) }),
            })),
          ],
        },
      },
    },
    hangingUp: {
      entry: runEffect('hangup', ({ context }) => ({ call: context.call })),
      exit: 'stopEffect',
      on: {
        'hangup.done': '#call.done',
        'effect.error': '#call.done',
      },
    },
  },
});
