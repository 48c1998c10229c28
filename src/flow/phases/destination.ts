import { assign } from 'xstate';
import type { Announcement } from '../actors.ts';
import { money, type FlowContext } from '../context.ts';
import { cleanDigits, digitsRequest } from '../digits.ts';
import { normaliseDestination, type NormaliseResult } from '../number.ts';
import { FAILED, flow, runEffect } from '../setup.ts';
import { announcing, fetchingBalance } from './balance.ts';
import { VOUCHER_KEY } from '../voucher.ts';

// The balance, then the destination: keyed, normalised and checked, with its tries; `*` replays the balance and
// the voucher key goes to phases/voucher.ts.

export const refreshingBalance = fetchingBalance('announcingBalance');

// Said ahead of the destination prompt, in the same write (see collectDigits).
export const announcingBalance = announcing(balanceItems, 'destination');

export const destination = flow.createStateConfig({
  initial: 'asking',
  states: {
    asking: {
      entry: [
        { type: 'recordPlayed', params: { items: [{ prompt: 'enter_destination' }] } },
        runEffect('collectDigits', ({ context }) => ({
          call: context.call,
          lang: context.lang,
          preamble: context.preamble,
          req: digitsRequest(context, 'destination', 'enter_destination'),
        })),
      ],
      exit: 'stopEffect',
      on: {
        'collectDigits.done': [
          {
            guard: ({ context, event }) => event.output.success && !context.call.hungUp && event.output.digits === '*',
            target: '#call.session.refreshingBalance',
            actions: assign({ preamble: [] }),
          },
          {
            guard: ({ context, event }) => voucherOffered(context) && cleanDigits(context.call, event.output) === VOUCHER_KEY,
            target: '#call.session.voucher',
            actions: assign({ preamble: [] }),
          },
          {
            target: 'routing',
            actions: assign(({ context, event }) => {
              const digits = cleanDigits(context.call, event.output);
              const entry: NormaliseResult =
                digits === undefined ? { ok: false, reason: 'invalid' } : normaliseDestination(digits, context.access!);
              return { entry, number: entry.ok ? entry.number : undefined, preamble: [] };
            }),
          },
        ],
        'effect.error': FAILED,
      },
    },
    routing: {
      always: [
        // Rating is part of the reservation: one atomic step says whether and how long the call may last.
        {
          guard: 'entryOk',
          target: '#call.reserving',
          actions: assign({ gateway: ({ context }) => context.access!.gateway, onFailover: false, triedCarriers: [] }),
        },
        { guard: 'entryNotAllowed', target: 'refusing', actions: { type: 'refuse', params: { prompt: 'destination_not_allowed' } } },
        { target: 'refusing', actions: { type: 'refuse', params: { prompt: 'invalid_destination' } } },
      ],
    },
    refusing: {
      entry: [
        assign({ destTry: ({ context }) => context.destTry + 1 }),
        assign({ played: ({ context }) => [...context.played, context.refusal!] }),
        runEffect('announce', ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: context.refusal! }] })),
      ],
      exit: 'stopEffect',
      on: {
        'announce.done': [
          { guard: 'destTriesLeft', target: 'asking' },
          {
            target: '#call.session.ending',
            actions: { type: 'endWith', params: { reason: 'destination_tries_exhausted', prompt: 'goodbye' } },
          },
        ],
        'effect.error': FAILED,
      },
    },
  },
});

function balanceItems(c: FlowContext): Announcement[] {
  return [{ prompt: 'you_have' }, money(c.card!.balance), ...(voucherOffered(c) ? [{ prompt: 'voucher_offer' } as const] : [])];
}

const voucherOffered = (c: FlowContext): boolean => c.access?.voucherRecharge === true && c.services.redeemVoucher !== undefined && c.device === undefined;
