import { hangupLike, errorText, initialContext } from './context.ts';
import { flow } from './setup.ts';
import { afterCall, announcingFailure, announcingRemaining, countingCall, fetchingRemaining, offeringAnother } from './phases/another-call.ts';
import {
  afterAuthorize,
  announcingActivation,
  authorized,
  authorizing,
  bindingCli,
  choosingAuth,
  confirmingBind,
  lookingUpCli,
  noCliCard,
  offeringBind,
  pin,
} from './phases/auth.ts';
import { bridging, routingAfterCall, settlingCall } from './phases/bridge.ts';
import { closing, ending, failed, sayingEnd } from './phases/closing.ts';
import { announcingBalance, destination, refreshingBalance } from './phases/destination.ts';
import { answering, greeted } from './phases/greeting.ts';
import { buildingDialString, reserveRefused, reserved, reserving } from './phases/reservation.ts';
import { resumed, resumeSettling, resuming } from './phases/resume.ts';
import { voucher } from './phases/voucher.ts';

export type { CallAttempt, EndReason, FlowInput, FlowOutcome } from './context.ts';
export { usableCallerId } from './context.ts';
export { durationItems } from './phases/reservation.ts';

/**
 * The whole call flow at a glance. Each state's config (the effect it runs, where it goes) lives in the phase module
 * named beside it; the named effects are in effects.ts, the actions and guards in setup.ts, the context in context.ts.
 * The README (src/flow/README.md) walks through the states.
 *
 *   session:  answering → greeted → [resuming] → choosingAuth → noCliCard | lookingUpCli | pin → authorizing →
 *             authorized → announcingActivation → afterAuthorize → offeringBind → bindingCli → confirmingBind →
 *             announcingBalance ⇄ refreshingBalance | voucher → destination ─→ reserving
 *             reserveRefused → destination.refusing | ending;  buildingDialString ─→ bridging
 *             afterCall → fetchingRemaining → announcingRemaining | announcingFailure → countingCall →
 *             offeringAnother → destination | ending;  failed → ending | closing;  ending → sayingEnd → closing
 *   top level (a hangup only marks the caller gone): reserving → reserved → session.buildingDialString;
 *             resumeSettling → resumed → session.authorizing; bridging → settlingCall → routingAfterCall →
 *             reserving (failover) | session.afterCall | session.failed | closing;  closing → done
 */
export const callMachine = flow.createMachine({
  id: 'call',
  context: ({ input }) => initialContext(input),
  // Outside `session` a hangup only marks the caller gone: reserving, bridging and settling finish first.
  on: { HANGUP: { actions: 'markCallerGone' } },
  initial: 'session',
  states: {
    session: {
      on: { HANGUP: { target: '#call.closing', actions: 'markCallerGone' } },
      initial: 'answering',
      states: {
        // phases/greeting.ts
        answering,
        greeted,
        // phases/resume.ts
        resuming,
        // phases/auth.ts
        choosingAuth,
        noCliCard,
        lookingUpCli,
        pin,
        authorizing,
        authorized,
        announcingActivation,
        afterAuthorize,
        offeringBind,
        bindingCli,
        confirmingBind,
        // phases/destination.ts
        refreshingBalance,
        announcingBalance,
        destination,
        // phases/voucher.ts
        voucher,
        // phases/reservation.ts
        reserveRefused,
        buildingDialString,
        // phases/another-call.ts
        afterCall,
        fetchingRemaining,
        announcingRemaining,
        announcingFailure,
        countingCall,
        offeringAnother,
        // phases/closing.ts
        failed,
        ending,
        sayingEnd,
      },
    },
    // phases/reservation.ts
    reserving,
    reserved,
    // phases/resume.ts
    resumeSettling,
    resumed,
    // phases/bridge.ts
    bridging,
    settlingCall,
    routingAfterCall,
    // phases/closing.ts
    closing,
    done: { type: 'final' },
  },
  output: ({ context }) => ({
    ended: context.ended ?? (context.callerGone ? 'caller_hangup' : 'error'),
    callerHungUp: context.callerGone,
    did: context.call.info.did,
    language: context.lang,
    cardId: context.cardId,
    calls: context.attempts,
    played: context.played,
    ...(context.error !== undefined && !hangupLike(context.error) ? { error: errorText(context.error) } : {}),
  }),
});
