import { assign } from 'xstate';
import { digitsRequest } from '../digits.ts';
import type { Micros } from '../../money/money.ts';
import { FAILED, flow, runEffect } from '../setup.ts';

// Voucher recharge (src/flow/voucher.ts): key it, hear the result and the new balance, back to the destination.
export const voucher = flow.createStateConfig({
  initial: 'asking',
  states: {
    asking: {
      entry: [
        { type: 'recordPlayed', params: { items: [{ prompt: 'enter_voucher' }] } },
        runEffect('collectDigits', ({ context }) => ({ call: context.call, req: digitsRequest(context, 'voucher', 'enter_voucher') })),
      ],
      exit: 'stopEffect',
      on: {
        'collectDigits.done': [
          // Keyed digits, right or wrong, are a try (a wrong one counts toward the lockout); nothing keyed is not.
          {
            guard: ({ context, event }) => !context.call.hungUp && /^\d+$/.test(event.output.digits ?? ''),
            target: 'redeeming',
            actions: assign({ number: ({ event }) => event.output.digits }),
          },
          { target: '#call.session.announcingBalance' },
        ],
        'effect.error': FAILED,
      },
    },
    redeeming: {
      entry: runEffect('redeemVoucher', ({ context }) => ({
        services: context.services,
        cardId: context.cardId!,
        number: context.number!,
        did: context.call.info.did,
        callerId: context.call.info.callerId,
      })),
      exit: 'stopEffect',
      on: {
        'redeemVoucher.done': { target: 'told', actions: assign({ voucher: ({ event }) => event.output, number: undefined }) },
        'effect.error': FAILED,
      },
    },
    told: {
      always: [
        {
          guard: ({ context }) => context.voucher?.ok === true,
          target: 'announcing',
          actions: assign({
            card: ({ context }) => {
              const v = context.voucher as { amount: Micros; balance: Micros };
              return { ...context.card!, balance: v.balance, available: context.card!.available + v.amount };
            },
            refusal: 'voucher_accepted',
          }),
        },
        { guard: ({ context }) => context.voucher?.ok === false && context.voucher.reason === 'locked', target: '#call.session.ending', actions: { type: 'endWith', params: { reason: 'locked_out', prompt: 'locked_out' } } },
        { guard: ({ context }) => context.voucher?.ok === false && context.voucher.reason === 'card', target: '#call.session.ending', actions: { type: 'endWith', params: { reason: 'card_disabled', prompt: 'card_disabled' } } },
        { guard: ({ context }) => context.voucher?.ok === false && context.voucher.reason === 'currency', target: 'announcing', actions: assign({ refusal: 'voucher_wrong_currency' }) },
        { target: 'announcing', actions: assign({ refusal: 'voucher_invalid' }) },
      ],
    },
    announcing: {
      entry: [
        assign({ played: ({ context }) => [...context.played, context.refusal!] }),
        runEffect('announce', ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: context.refusal! }] })),
      ],
      exit: 'stopEffect',
      on: {
        'announce.done': { target: '#call.session.announcingBalance', actions: assign({ refusal: undefined }) },
        'effect.error': FAILED,
      },
    },
  },
});
