import { assign } from 'xstate';
import { usableCallerId, type EndReason } from '../context.ts';
import { cleanDigits, digitsRequest, validPin } from '../digits.ts';
import { normaliseDestination, type NormaliseResult } from '../number.ts';
import type { PromptName } from '../prompts.ts';
import { FAILED, flow, runEffect } from '../setup.ts';

// Authentication: the caller id's card, else the PIN (with its tries and lockout), then authorizing the card,
// activation, and the offer to bind the caller id.

const AUTH_REFUSAL = {
  unknown: 'card_unknown',
  disabled: 'card_disabled',
  expired: 'card_expired',
  no_balance: 'no_balance',
} as const satisfies Record<string, EndReason & PromptName>;

export const choosingAuth = flow.createStateConfig({
  always: [
    // accessNumber read the caller ID's card too (cliCardId): no second lookup.
    {
      guard: ({ context }) => usableCallerId(context.call) && context.access!.authMode !== 'pin' && typeof context.access!.cliCardId === 'string',
      target: 'authorizing',
      actions: assign({ cardId: ({ context }) => context.access!.cliCardId! }),
    },
    {
      guard: ({ context }) => context.access!.authMode !== 'pin' && context.access!.cliCardId === null,
      target: 'noCliCard',
    },
    { guard: 'cliFirst', target: 'lookingUpCli' },
    { guard: 'cliOnly', target: 'ending', actions: { type: 'endWith', params: { reason: 'card_unknown', prompt: 'card_unknown' } } },
    { target: 'pin' },
  ],
});

export const noCliCard = flow.createStateConfig({
  always: [
    { guard: 'cliOnly', target: 'ending', actions: { type: 'endWith', params: { reason: 'card_unknown', prompt: 'card_unknown' } } },
    { target: 'pin' },
  ],
});

export const lookingUpCli = flow.createStateConfig({
  entry: runEffect('cardByCli', ({ context }) => ({ services: context.services, callerId: context.call.info.callerId })),
  exit: 'stopEffect',
  on: {
    'cardByCli.done': [
      { guard: ({ event }) => event.output !== undefined, target: 'authorizing', actions: assign({ cardId: ({ event }) => event.output }) },
      { guard: 'cliOnly', target: 'ending', actions: { type: 'endWith', params: { reason: 'card_unknown', prompt: 'card_unknown' } } },
      { target: 'pin' },
    ],
    'effect.error': FAILED,
  },
});

export const pin = flow.createStateConfig({
  initial: 'asking',
  states: {
    asking: {
      entry: [
        { type: 'recordPlayed', params: { items: [{ prompt: 'enter_pin' }] } },
        runEffect('collectDigits', ({ context }) => ({ call: context.call, req: digitsRequest(context, 'pin', 'enter_pin') })),
      ],
      exit: 'stopEffect',
      on: {
        'collectDigits.done': [
          {
            guard: ({ context, event }) => validPin(context, event.output),
            target: 'checking',
            actions: assign({ pinEntry: ({ event }) => event.output.digits }),
          },
          { target: 'rejected' },
        ],
        'effect.error': FAILED,
      },
    },
    // The PIN's card, read and authorized in one step; 'unknown' means no card has this PIN.
    checking: {
      entry: runEffect('authorizeByPin', ({ context }) => ({ services: context.services, pin: context.pinEntry!, did: context.call.info.did, callerId: context.call.info.callerId })),
      exit: 'stopEffect',
      on: {
        'authorizeByPin.done': [
          { guard: ({ event }) => !event.output.ok && event.output.reason === 'unknown', target: 'recordingFailure' },
          { target: '#call.session.authorized', actions: assign({ auth: ({ event }) => event.output }) },
        ],
        'effect.error': FAILED,
      },
    },
    recordingFailure: {
      entry: runEffect('recordPinFailure', ({ context }) => ({ services: context.services, did: context.call.info.did, callerId: context.call.info.callerId })),
      exit: 'stopEffect',
      on: {
        'recordPinFailure.done': 'rejected',
        'effect.error': FAILED,
      },
    },
    rejected: {
      entry: assign({ pinTry: ({ context }) => context.pinTry + 1, pinEntry: undefined }),
      always: [
        { guard: 'pinTriesLeft', target: 'sayingInvalid' },
        { target: '#call.session.ending', actions: { type: 'endWith', params: { reason: 'too_many_attempts', prompt: 'too_many_attempts' } } },
      ],
    },
    sayingInvalid: {
      entry: [
        { type: 'recordPlayed', params: { items: [{ prompt: 'invalid_pin' }] } },
        runEffect('announce', ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: 'invalid_pin' }] })),
      ],
      exit: 'stopEffect',
      on: {
        'announce.done': 'asking',
        'effect.error': FAILED,
      },
    },
  },
});

export const authorizing = flow.createStateConfig({
  entry: runEffect('authorize', ({ context }) => ({ services: context.services, cardId: context.cardId! })),
  exit: 'stopEffect',
  on: {
    'authorize.done': { target: 'authorized', actions: assign({ auth: ({ event }) => event.output }) },
    'effect.error': FAILED,
  },
});

export const authorized = flow.createStateConfig({
  always: [
    {
      guard: ({ context }) => context.auth?.ok === true && context.auth.activated,
      target: 'announcingActivation',
      actions: ['takeAuthorizedCard', { type: 'markResume', params: { stage: 'a' } }],
    },
    // Resumed after a finished call: its remaining balance and the "another call" offer, as before the crash.
    {
      guard: ({ context }) => context.auth?.ok === true && context.resumed?.stage === 'm',
      target: 'fetchingRemaining',
      actions: ['takeAuthorizedCard', assign({ resumed: undefined, sessionCalls: ({ context }) => Math.max(0, context.sessionCalls - 1) })],
    },
    // Resumed with a reservation that was answered (now settled): the same as after any call.
    {
      guard: ({ context }) => context.auth?.ok === true && context.resumed?.stage === 'r' && context.bridge?.answered === true,
      target: 'afterCall',
      actions: ['takeAuthorizedCard', assign({ resumed: undefined })],
    },
    {
      guard: ({ context }) => context.auth?.ok === true,
      target: 'afterAuthorize',
      actions: ['takeAuthorizedCard', assign({ resumed: undefined }), { type: 'markResume', params: { stage: 'a' } }],
    },
    {
      // unknown, disabled, expired or no balance: each has its prompt
      target: 'ending',
      actions: {
        type: 'endWith',
        params: ({ context }) => {
          const refused = AUTH_REFUSAL[context.auth?.ok === false ? context.auth.reason : 'unknown'];
          return { reason: refused, prompt: refused };
        },
      },
    },
  ],
});

export const announcingActivation = flow.createStateConfig({
  entry: [
    { type: 'recordPlayed', params: { items: [{ prompt: 'card_activated' }] } },
    runEffect('announce', ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: 'card_activated' }] })),
  ],
  exit: 'stopEffect',
  on: {
    'announce.done': 'afterAuthorize',
    'effect.error': FAILED,
  },
});

export const afterAuthorize = flow.createStateConfig({
  always: [
    // A device dialled its destination already: no balance announcement, no destination prompt.
    {
      guard: 'isDevice',
      target: 'destination.routing',
      actions: assign(({ context }) => {
        const dialled = context.call.info.did;
        const entry: NormaliseResult = /^\+?\d{1,32}$/.test(dialled) ? normaliseDestination(dialled, context.access!) : { ok: false, reason: 'invalid' };
        return { entry, number: entry.ok ? entry.number : undefined };
      }),
    },
    { guard: 'offerBind', target: 'offeringBind' },
    { target: 'announcingBalance' },
  ],
});

export const offeringBind = flow.createStateConfig({
  entry: [
    { type: 'recordPlayed', params: { items: [{ prompt: 'bind_cli_offer' }] } },
    runEffect('collectDigits', ({ context }) => ({ call: context.call, req: digitsRequest(context, 'menu', 'bind_cli_offer') })),
  ],
  exit: 'stopEffect',
  on: {
    'collectDigits.done': [
      { guard: ({ context, event }) => cleanDigits(context.call, event.output) === '1', target: 'bindingCli' },
      { target: 'announcingBalance' },
    ],
    'effect.error': FAILED,
  },
});

export const bindingCli = flow.createStateConfig({
  entry: runEffect('bindCli', ({ context }) => ({ services: context.services, callerId: context.call.info.callerId, cardId: context.cardId! })),
  exit: 'stopEffect',
  on: {
    'bindCli.done': 'confirmingBind',
    'effect.error': FAILED,
  },
});

export const confirmingBind = flow.createStateConfig({
  entry: [
    { type: 'recordPlayed', params: { items: [{ prompt: 'cli_bound' }] } },
    runEffect('announce', ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: 'cli_bound' }] })),
  ],
  exit: 'stopEffect',
  on: {
    'announce.done': 'announcingBalance',
    'effect.error': FAILED,
  },
});
