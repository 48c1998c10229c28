import { assign } from 'xstate';
import type { BridgeResult } from '../call.ts';
import { errorText, updateLast } from '../context.ts';
import { flow } from '../setup.ts';

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
  ],
  invoke: {
    src: 'announce',
    input: ({ context }) => ({
      call: context.call,
      lang: context.lang,
      items: [...context.preamble, ...(context.endPrompt ? [{ prompt: context.endPrompt }] : [])],
    }),
    onDone: '#call.closing',
    // Nothing left to say: a failed goodbye still closes the call.
    onError: '#call.closing',
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
      invoke: {
        src: 'settle',
        // Only reservations that never reached the bridge get here (bridging always goes to settlingCall):
        // nothing was dialled, so say so and the hold is released at once instead of waiting for its deadline.
        input: ({ context }) => ({ services: context.services, reservation: context.pending!, bridge: NOT_BRIDGED }),
        onDone: {
          target: 'hangingUp',
          actions: assign(({ context, event }) => ({ pending: undefined, attempts: updateLast(context.attempts, { settle: event.output }) })),
        },
        onError: {
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
      invoke: {
        src: 'hangup',
        input: ({ context }) => ({ call: context.call }),
        onDone: '#call.done',
        onError: '#call.done',
      },
    },
  },
});
