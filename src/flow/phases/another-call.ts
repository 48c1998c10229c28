import { assign } from 'xstate';
import { describeAnnouncement, type Announcement } from '../actors.ts';
import { classifyBridge, OUTCOME_PROMPT } from '../bridge-outcome.ts';
import { money, type FlowContext } from '../context.ts';
import { cleanDigits, digitsRequest } from '../digits.ts';
import type { PromptName } from '../prompts.ts';
import { FAILED, flow, runEffect } from '../setup.ts';
import { announcing, fetchingBalance } from './balance.ts';

// After a call: the remaining balance or the failure's prompt, then another call (press 1) or goodbye.

export const afterCall = flow.createStateConfig({
  always: [
    // A device call ends with its one call: the failure prompt (busy, no answer...) if it failed, then hangup.
    {
      guard: 'isDevice',
      target: 'ending',
      actions: [
        assign({ preamble: ({ context }) => (context.bridge?.answered ? [] : [{ prompt: failurePrompt(context) }]) }),
        assign({ played: ({ context }) => [...context.played, ...context.preamble.map(describeAnnouncement)] }),
        { type: 'endWith', params: { reason: 'completed' } },
      ],
    },
    // The debit returned the balance after it: say that one.
    {
      guard: ({ context }) => context.bridge?.answered === true && context.attempts.at(-1)?.settle !== undefined,
      target: 'announcingRemaining',
      actions: assign({ card: ({ context }) => ({ ...context.card!, balance: context.attempts.at(-1)!.settle!.balance }) }),
    },
    { guard: 'answered', target: 'fetchingRemaining' },
    { target: 'announcingFailure' },
  ],
});

export const fetchingRemaining = fetchingBalance('announcingRemaining');

// Said ahead of the next prompt (another call, or goodbye), in the same write.
export const announcingRemaining = announcing(remainingItems, 'countingCall');

export const announcingFailure = announcing((c) => [{ prompt: failurePrompt(c) }], 'countingCall');

export const countingCall = flow.createStateConfig({
  entry: [assign({ sessionCalls: ({ context }) => context.sessionCalls + 1 }), { type: 'markResume', params: { stage: 'm' } }],
  always: [
    { guard: 'anotherCallAllowed', target: 'offeringAnother' },
    { target: 'ending', actions: { type: 'endWith', params: { reason: 'completed', prompt: 'goodbye' } } },
  ],
});

export const offeringAnother = flow.createStateConfig({
  entry: [
    { type: 'recordPlayed', params: { items: [{ prompt: 'another_call' }] } },
    runEffect('collectDigits', ({ context }) => ({
      call: context.call,
      lang: context.lang,
      preamble: context.preamble,
      req: digitsRequest(context, 'menu', 'another_call'),
    })),
  ],
  exit: 'stopEffect',
  on: {
    'collectDigits.done': [
      {
        guard: ({ context, event }) => cleanDigits(context.call, event.output) === '1',
        target: 'destination',
        actions: [{ type: 'markResume', params: { stage: 'a' } }, assign({
          preamble: [],
          destTry: 0,
          entry: undefined,
          number: undefined,
          bridge: undefined,
          dialString: undefined,
          onFailover: false,
        })],
      },
      { target: 'ending', actions: [assign({ preamble: [] }), { type: 'endWith', params: { reason: 'completed', prompt: 'goodbye' } }] },
    ],
    'effect.error': FAILED,
  },
});

function remainingItems(c: FlowContext): Announcement[] {
  return [{ prompt: 'remaining_balance' }, money(c.card!.balance)];
}

function failurePrompt(c: FlowContext): PromptName {
  const outcome = c.bridge ? classifyBridge(c.bridge) : 'failed';
  return outcome === 'answered' ? 'call_failed' : OUTCOME_PROMPT[outcome];
}
