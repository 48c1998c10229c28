import { assign } from 'xstate';
import { classifyBridge } from '../bridge-outcome.ts';
import { errorText, hangupLike, updateLast, type FlowContext } from '../context.ts';
import { nextAttempt } from '../routing.ts';
import { flow, runEffect } from '../setup.ts';
import type { SliceKeeperInput } from '../slices.ts';

// The bridge to the carrier, settling its reservation (always, outside the abort path) and where to go next:
// closing, failover to another carrier, or after the call.

export const bridging = flow.createStateConfig({
  entry: runEffect('bridge', ({ context }) => ({
    call: context.call,
    lang: context.lang,
    preamble: context.preamble,
    req: {
      dialString: context.dialString!,
      // In slices the cap grows while the call runs: wait up to the longest call any slice could reach.
      timeoutMs:
        (context.opts.originateTimeoutSec + (context.pending!.ceilingSeconds ?? context.pending!.maxSeconds) + context.opts.bridgeMarginSec) * 1000,
    },
    slices: sliceInput(context),
  })),
  exit: ['stopEffect', assign({ preamble: [] })],
  on: {
    'bridge.done': {
      target: 'settlingCall',
      actions: assign(({ context, event }) => ({
        bridge: event.output,
        callerGone: context.callerGone || event.output.callerHungUp,
        attempts: updateLast(context.attempts, { bridge: event.output, outcome: classifyBridge(event.output) }),
      })),
    },
    'effect.error': {
      target: 'settlingCall',
      actions: assign(({ context, event }) =>
        hangupLike(event.error) ? { callerGone: true } : { bridgeError: event.error, error: event.error },
      ),
    },
  },
  initial: 'connected',
  states: {
    connected: { on: { HANGUP: { target: 'callerGone', actions: 'markCallerGone' } } },
    // The bridge result (with the carrier CDR) normally follows the hangup at once; do not wait forever.
    callerGone: { after: { bridgeGrace: '#call.settlingCall' } },
  },
});

export const settlingCall = flow.createStateConfig({
  entry: runEffect('settle', ({ context }) => ({ services: context.services, reservation: context.pending!, bridge: context.bridge })),
  exit: 'stopEffect',
  on: {
    'settle.done': {
      target: 'routingAfterCall',
      actions: assign(({ context, event }) => ({
        pending: undefined,
        attempts: updateLast(context.attempts, { settle: event.output }),
      })),
    },
    'effect.error': {
      target: 'routingAfterCall',
      actions: [
        { type: 'logSettleError', params: ({ event }) => ({ error: event.error }) },
        assign(({ context, event }) => ({
          pending: undefined,
          error: event.error,
          bridgeError: context.bridgeError ?? event.error,
          attempts: updateLast(context.attempts, { settleError: errorText(event.error) }),
        })),
      ],
    },
  },
});

export const routingAfterCall = flow.createStateConfig({
  always: [
    { guard: 'callerGone', target: 'closing' },
    { guard: 'bridgeFailedHard', target: '#call.session.failed' },
    {
      guard: 'failover',
      target: 'reserving',
      actions: assign(({ context }) => {
        const next = nextAttempt(context.bridge, context.attempts.at(-1), context.access!, context.onFailover);
        if (next.kind === 'next_carrier') return { onFailover: true, triedCarriers: [...context.triedCarriers, next.tried] };
        return { gateway: next.kind === 'failover_gateway' ? next.gateway : context.gateway, onFailover: true };
      }),
    },
    { target: '#call.session.afterCall' },
  ],
});

/** What the slice keeper needs for this call (src/flow/slices.ts); undefined when one hold covers the call. */
function sliceInput(c: FlowContext): SliceKeeperInput | undefined {
  const r = c.pending!;
  if (!r.sliceSeconds) return undefined;
  const o = c.opts;
  const warning =
    o.warningPrompt === null
      ? undefined
      : {
          file: `${o.soundsPrefix}/${c.lang}/ccard/${o.warningRate}/${o.warningPrompt}.wav`,
          secondsBeforeEnd: o.warningSecondsBeforeEnd,
          minLeadSec: o.warningMinLeadSec,
        };
  return { call: c.call, services: c.services, reservation: r, warning, log: c.log };
}
