import { assign } from 'xstate';
import { classifyBridge } from '../bridge-outcome.ts';
import { flow, runEffect } from '../setup.ts';

// A call a dead ccard process handed over (socket_resume, src/flow/resume.ts): carry on from the stage it sealed.

export const resuming = flow.createStateConfig({
  always: [
    {
      guard: ({ context }) => context.resumed!.stage === 'r',
      target: '#call.resumeSettling',
      actions: assign(({ context }) => ({ cardId: context.resumed!.cardId, sessionCalls: context.resumed!.sessionCalls })),
    },
    {
      target: 'authorizing',
      actions: assign(({ context }) => ({ cardId: context.resumed!.cardId, sessionCalls: context.resumed!.sessionCalls })),
    },
  ],
});

// A call handed over with a reservation: settle it from what the channel says (outside `session`, so a hangup
// meanwhile does not cut it short), then the card again (its balance, its status) and on as after any call.
export const resumeSettling = flow.createStateConfig({
  entry: runEffect('resumeSettle', ({ context }) => ({
    call: context.call,
    services: context.services,
    reservation: { callId: context.resumed!.callId!, cardId: context.resumed!.cardId, maxSeconds: 0, reserved: 0n },
  })),
  exit: 'stopEffect',
  on: {
    'resumeSettle.done': {
      target: 'resumed',
      actions: assign(({ context, event }) => ({
        bridge: event.output.bridge,
        callerGone: context.callerGone || context.call.hungUp,
        attempts: [
          {
            callId: context.resumed!.callId!,
            number: '',
            gateway: '',
            maxSeconds: 0,
            bridge: event.output.bridge,
            outcome: classifyBridge(event.output.bridge),
            settle: event.output.settle,
          },
        ],
      })),
    },
    'effect.error': {
      target: 'resumed',
      actions: [{ type: 'logSettleError', params: ({ event }) => ({ error: event.error }) }, assign({ bridge: undefined })],
    },
  },
});

export const resumed = flow.createStateConfig({
  always: [{ guard: 'callerGone', target: 'closing' }, { target: '#call.session.authorizing' }],
});
