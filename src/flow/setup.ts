import { assign, enqueueActions, setup } from 'xstate';
import { describeAnnouncement, type Announcement } from './actors.ts';
import { hangupLike, usableCallerId, type EndReason, type FlowContext, type FlowInput, type FlowOutcome } from './context.ts';
import type { EffectEvent, EffectInput, EffectName } from './effects.ts';
import type { PromptName } from './prompts.ts';
import { nextAttempt } from './routing.ts';
import { markResume, type ResumeStage } from './resume.ts';
import { ServiceUnavailableError } from './services.ts';

/**
 * The call machine's vocabulary: every named action and guard, in one `setup()`; the effects are named in
 * effects.ts (actors.ts, resume.ts, voucher.ts) and run by the call's EffectRunner (see `runEffect`). The phases
 * (phases/*.ts) build their states with `flow.createStateConfig`, machine.ts puts them together; tests swap effects
 * with `runCallFlow(..., { effects })` and actions or guards with `callMachine.provide(...)`.
 */
export const flow = setup({
  types: {
    context: {} as FlowContext,
    input: {} as FlowInput,
    events: {} as { type: 'HANGUP' } | EffectEvent,
    output: {} as FlowOutcome,
  },
  delays: {
    bridgeGrace: ({ context }) => context.opts.bridgeHangupGraceMs,
  },
  actions: {
    /** The exit of every state that runs an effect: leaving the state aborts it (see runEffect). */
    stopEffect: ({ context }) => context.runner.stop(),
    markCallerGone: assign({ callerGone: true }),
    /**
     * Answers and sets, in one multiset, the prompts' language and what lets the flow regain the call after a bridge
     * (continue_on_fail: a failed bridge does not hang up; hangup_after_bridge=false: nor a finished one). Neither is
     * waited for: they leave with the first prompt, in one write. Once per call (the end prompt asks again, for a
     * call that failed before this).
     */
    prepareCall: enqueueActions(({ context, enqueue }) => {
      if (context.prepared) return;
      const variables: Array<[string, string]> = [['sound_prefix', `${context.opts.soundsPrefix}/${context.lang}`]];
      if (context.access) variables.push(['continue_on_fail', 'true'], ['hangup_after_bridge', 'false']);
      enqueue(() => context.call.prepare({ answer: true, variables }));
      enqueue.assign({ prepared: true });
    }),
    takeAuthorizedCard: assign(({ context }) =>
      context.auth?.ok ? { card: context.auth.card, cardId: context.auth.card.id, activated: context.auth.activated } : {},
    ),
    /** Seals where the flow is on the channel (with the next command), for a process that may take the call over. */
    markResume: ({ context }, params: { stage: ResumeStage }) => {
      if (!context.cardId) return;
      markResume(context.call, context.opts.resumeKey, {
        stage: params.stage,
        cardId: context.cardId,
        callId: params.stage === 'r' ? context.pending?.callId : undefined,
        sessionCalls: context.sessionCalls,
      });
    },
    // Only used on `effect.error`: the event carries the error.
    recordError: assign({ error: ({ event }) => (event as { error?: unknown }).error }),
    endWith: assign(({ context }, params: { reason: EndReason; prompt?: PromptName }) => ({
      ended: context.ended ?? params.reason,
      endPrompt: params.prompt,
    })),
    refuse: assign((_, params: { prompt: PromptName }) => ({ refusal: params.prompt })),
    recordPlayed: assign(({ context }, params: { items: Announcement[] }) => ({
      played: [...context.played, ...params.items.map(describeAnnouncement)],
    })),
    logUnknownNumber: ({ context }) => context.log.warn({ did: context.call.info.did }, 'access number unknown or disabled'),
    logLockedOut: ({ context }) => context.log.warn({ callerId: context.call.info.callerId }, 'caller locked out'),
    logError: ({ context }) => {
      const err = context.error;
      if (err instanceof ServiceUnavailableError) context.log.warn({ err }, 'service unavailable: failing closed');
      else context.log.error({ err }, 'call flow error');
    },
    logSettleError: ({ context }, params: { error: unknown }) =>
      context.log.error({ err: params.error, callId: context.pending?.callId }, 'settle failed'),
  },
  guards: {
    // greeting (phases/greeting.ts)
    hasAccess: ({ context }) => context.access !== undefined,
    // authentication (phases/auth.ts)
    cliFirst: ({ context }) => context.access!.authMode !== 'pin' && usableCallerId(context.call),
    cliOnly: ({ context }) => context.access!.authMode === 'cli',
    pinTriesLeft: ({ context }) => context.pinTry < context.access!.pinTries,
    offerBind: ({ context }) =>
      context.pinEntry !== undefined &&
      context.access!.authMode === 'cli-then-pin' &&
      context.access!.bindCliAfterPin &&
      usableCallerId(context.call),
    isDevice: ({ context }) => context.device?.ok === true,
    // destination (phases/destination.ts)
    entryOk: ({ context }) => context.entry?.ok === true,
    entryNotAllowed: ({ context }) => context.entry?.ok === false && context.entry.reason === 'not_allowed',
    destTriesLeft: ({ context }) => context.destTry < context.opts.destTries && context.device === undefined,
    // reservation and bridge (phases/reservation.ts, bridge.ts)
    callerGone: ({ context }) => context.callerGone || context.call.hungUp,
    dialStringBuilt: ({ context }) => context.dialString !== undefined,
    bridgeFailedHard: ({ context }) => context.bridgeError !== undefined,
    failover: ({ context }) => nextAttempt(context.bridge, context.attempts.at(-1), context.access!, context.onFailover).kind !== 'none',
    // after a call (phases/another-call.ts)
    answered: ({ context }) => context.bridge?.answered === true,
    anotherCallAllowed: ({ context }) => context.sessionCalls < context.access!.maxCallsPerSession,
    // closing (phases/closing.ts)
    hasPending: ({ context }) => context.pending !== undefined,
    hangupError: ({ context }) => hangupLike(context.error) || context.callerGone || context.call.hungUp,
    serviceUnavailable: ({ context }) => context.error instanceof ServiceUnavailableError,
  },
});

/** Where any phase goes when an effect throws: `failed` decides between closing quietly and service_unavailable. */
export const FAILED = { target: '#call.session.failed', actions: 'recordError' } as const;

/**
 * The entry action of a state that runs an effect: starts it with the input the state computes (after the state's
 * other entry actions, as an invoke would), and its end comes back as `<name>.done` (with `output`) or `effect.error`
 * (with `error`). The state's exit must be `stopEffect`: leaving the state aborts what is in flight.
 */
export const runEffect =
  <K extends EffectName>(name: K, input: (args: { context: FlowContext }) => EffectInput<K>) =>
  ({ context, self }: { context: FlowContext; self: { send(event: EffectEvent): void } }): void =>
    context.runner.start(name, input({ context }), self);
