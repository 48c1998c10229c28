import type { Logger } from 'pino';
import { createActor, toPromise, type InspectionEvent } from 'xstate';
import type { Call } from './call.ts';
import { EffectRunner, effects, type Effects } from './effects.ts';
import { callMachine, type FlowOutcome } from './machine.ts';
import { resolveFlowOptions, type FlowOptions } from './options.ts';
import type { CallServices } from './services.ts';

export interface RunFlowExtras {
  /** A variant of callMachine (tests use `callMachine.provide(...)`). */
  machine?: typeof callMachine;
  /** Effects to use instead of the named ones (effects.ts), by name. */
  effects?: Partial<Effects>;
}

/** Logs state changes and the hangup of the call's actor to the call's logger (uuid in every line); effects: see runner. */
function inspector(log: Logger): (ev: InspectionEvent) => void {
  let last = '';
  return (ev) => {
    const isRoot = ev.actorRef.sessionId === ev.rootId;
    if (ev.type === '@xstate.snapshot' && isRoot) {
      const snap = ev.snapshot as { value?: unknown; status?: string };
      const state = JSON.stringify(snap.value);
      if (state !== last) {
        last = state;
        log.debug({ state: snap.value, event: ev.event.type }, 'flow state');
      }
    } else if (ev.type === '@xstate.event' && isRoot && ev.event.type === 'HANGUP') {
      log.debug('caller hung up');
    }
  };
}

/**
 * Runs one call through the flow: one actor per call, resolving with the outcome once the call is hung up
 * and every reservation settled. Never rejects for a flow error: if the machine itself breaks, the pending
 * reservation is still settled and the call hung up.
 */
export async function runCallFlow(
  call: Call,
  services: CallServices,
  opts: FlowOptions,
  logger: Logger,
  extras: RunFlowExtras = {},
): Promise<FlowOutcome> {
  const log = logger.child({ uuid: call.info.uuid });
  const resolved = resolveFlowOptions(opts);
  const machine = extras.machine ?? callMachine;
  const runner = new EffectRunner(
    extras.effects ? { ...effects, ...extras.effects } : effects,
    log.isLevelEnabled('trace') ? (name) => log.trace({ actor: name }, 'effect started') : undefined,
  );
  const actor = createActor(machine, {
    input: { call, services, opts: resolved, log, runner },
    // Inspection costs on every transition: only when its lines would be written.
    inspect: log.isLevelEnabled('debug') ? inspector(log) : undefined,
  });
  const onHangup = () => actor.send({ type: 'HANGUP' });
  actor.start();
  if (call.hangupSignal.aborted) onHangup();
  else call.hangupSignal.addEventListener('abort', onHangup, { once: true });
  try {
    const outcome = await toPromise(actor);
    // The one line a call writes at info (its start and the flow's steps are debug): what happened and what it cost.
    log.info(
      {
        did: call.info.did,
        callerId: call.info.callerId,
        ended: outcome.ended,
        cardId: outcome.cardId,
        callerHungUp: outcome.callerHungUp,
        calls: outcome.calls.map((a) => ({
          callId: a.callId,
          outcome: a.outcome,
          ...(a.settle && { billedSeconds: a.settle.billedSeconds, cost: a.settle.cost.toString() }),
          ...(a.settleError && { settleError: a.settleError }),
        })),
      },
      'call ended',
    );
    return outcome;
  } catch (err) {
    // A bug in the machine (an action or guard threw): still settle and hang up, fail closed.
    runner.stop();
    log.error({ err }, 'call flow crashed');
    const ctx = actor.getSnapshot().context;
    const calls = [...ctx.attempts];
    if (ctx.pending) {
      try {
        const settle = await services.settle(ctx.pending, undefined);
        calls[calls.length - 1] = { ...calls[calls.length - 1]!, settle };
      } catch (settleErr) {
        log.error({ err: settleErr, callId: ctx.pending.callId }, 'settle failed');
      }
    }
    await call.hangup('NORMAL_CLEARING');
    return {
      ended: 'error',
      callerHungUp: call.hungUp,
      did: call.info.did,
      language: ctx.lang,
      cardId: ctx.cardId,
      calls,
      played: ctx.played,
      error: err instanceof Error ? err.message : String(err),
    };
  } finally {
    call.hangupSignal.removeEventListener('abort', onHangup);
    actor.stop();
    runner.stop();
  }
}
