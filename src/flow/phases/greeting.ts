import { assign } from 'xstate';
import { languageOf, usableCallerId } from '../context.ts';
import { openResume, RESUME_VARIABLE } from '../resume.ts';
import { FAILED, flow, runEffect } from '../setup.ts';

// The start of every call: the access number and lockout check, then where the call goes (device, resumed, auth).

// The access number (with the caller ID's card) and the lockout check, at once. The answer goes out after
// them, with the first prompt (see prepareCall).
export const answering = flow.createStateConfig({
  entry: runEffect('greet', ({ context }) => ({
    services: context.services,
    did: context.call.info.did,
    callerId: context.call.info.callerId,
    cliCallerId: usableCallerId(context.call) ? context.call.info.callerId : undefined,
    device: context.call.info.device,
    ivrUuid: context.call.info.uuid,
  })),
  exit: 'stopEffect',
  on: {
    'greet.done': {
      target: 'greeted',
      actions: [
        assign(({ context, event }) => ({
          access: event.output.access,
          lang: languageOf(event.output.access),
          lockedOut: event.output.lockedOut,
          resumed: openResume(context.opts.resumeKey, context.call.info.uuid, context.call.channelVariable?.(RESUME_VARIABLE)),
          device: event.output.device,
        })),
        'prepareCall',
      ],
    },
    'effect.error': FAILED,
  },
});

export const greeted = flow.createStateConfig({
  always: [
    // A device call: its card from ccard's own directory variables, no PIN (src/flow/device.ts).
    { guard: ({ context }) => context.device?.ok === true, target: 'authorizing', actions: assign({ cardId: ({ context }) => (context.device as { cardId: string }).cardId }) },
    {
      guard: ({ context }) => context.device !== undefined,
      target: 'ending',
      actions: [
        ({ context }) => context.log.warn({ device: context.call.info.device, refused: context.device }, 'device call refused'),
        {
          type: 'endWith',
          // No CCARD_DEVICE_DID (or it is disabled): the service is not offered; anything else: not a valid card.
          params: ({ context }) =>
            context.device?.ok === false && context.device.reason === 'no_access'
              ? { reason: 'number_not_in_service', prompt: 'number_not_in_service' }
              : context.device?.ok === false && context.device.reason === 'lines'
                ? { reason: 'too_many_calls', prompt: 'too_many_calls' }
                : { reason: 'card_unknown', prompt: 'card_unknown' },
        },
      ],
    },
    {
      guard: ({ context }) => context.access !== undefined && context.lockedOut,
      target: 'ending',
      actions: ['logLockedOut', { type: 'endWith', params: { reason: 'locked_out', prompt: 'locked_out' } }],
    },
    // A call a dead ccard process handed over (socket_resume): carry on from where it was, no PIN again.
    { guard: ({ context }) => context.access !== undefined && context.resumed !== undefined, target: 'resuming' },
    { guard: 'hasAccess', target: 'choosingAuth' },
    {
      target: 'ending',
      actions: ['logUnknownNumber', { type: 'endWith', params: { reason: 'number_not_in_service', prompt: 'number_not_in_service' } }],
    },
  ],
});
