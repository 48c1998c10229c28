import { assign } from 'xstate';
import { describeAnnouncement, type Announcement } from '../actors.ts';
import type { FlowContext } from '../context.ts';
import { FAILED, flow, runEffect } from '../setup.ts';

// State shapes two phases share: the card's balance read again (before the destination prompt, and after a call),
// and what is said ahead of the next prompt.

/** Reads the card's balance into context.card, then `target`. */
export const fetchingBalance = (target: string) =>
  flow.createStateConfig({
    entry: runEffect('balance', ({ context }) => ({ services: context.services, cardId: context.cardId! })),
    exit: 'stopEffect',
    on: {
      'balance.done': {
        target,
        actions: assign({ card: ({ context, event }) => ({ ...context.card!, balance: event.output }) }),
      },
      'effect.error': FAILED,
    },
  });

/** Queues `items` ahead of the next prompt (they leave in the same write: see collectDigits), then `next`. */
export const announcing = (items: (c: FlowContext) => Announcement[], next: string) =>
  flow.createStateConfig({
    entry: assign({
      played: ({ context }) => [...context.played, ...items(context).map(describeAnnouncement)],
      preamble: ({ context }) => items(context),
    }),
    always: next,
  });
