import type { Logger } from 'pino';
import { assign, enqueueActions, setup } from 'xstate';
import { isEslError } from '../esl/errors.ts';
import { formatMoney, type Micros } from '../money/money.ts';
import { describeAnnouncement, flowActors, type Announcement } from './actors.ts';
import { classifyBridge, OUTCOME_PROMPT, type BridgeOutcome } from './bridge-outcome.ts';
import type { BridgeResult, Call, DigitsRequest, DigitsResult } from './call.ts';
import { buildDialString } from './dial-string.ts';
import { nextAttempt } from './routing.ts';
import { MAX_DIALLING_PREFIX_LENGTH, normaliseDestination, type NormaliseResult } from './number.ts';
import type { ResolvedFlowOptions } from './options.ts';
import { LANGUAGES, promptPath, type Language, type PromptName } from './prompts.ts';
import type { SliceKeeperInput } from './slices.ts';
import { markResume, openResume, RESUME_VARIABLE, resumeActors, type ResumeStage, type ResumeState } from './resume.ts';
import {
  ServiceUnavailableError,
  type AccessNumber,
  type AuthorizeResult,
  type CallServices,
  type CardView,
  type Reservation,
  type ReserveRefusal,
  type RouteChoice,
  type SettleResult,
} from './services.ts';
import { DEVICE_LOW_SECONDS, type DeviceCallResult } from './device.ts';
import { VOUCHER_KEY, VOUCHER_MAX_DIGITS, voucherActors, type IvrVoucherResult } from './voucher.ts';

/** The settle input for a reservation whose bridge was never sent. */
const NOT_BRIDGED: BridgeResult = {
  disposition: 'NOT_BRIDGED',
  hangupCause: undefined,
  answered: false,
  carrierCdr: undefined,
  callerHungUp: true,
};

/** How the call ended; the first reason found wins (a hangup during the goodbye prompt stays 'completed'). */
export type EndReason =
  | 'completed'
  | 'caller_hangup'
  | 'number_not_in_service'
  | 'locked_out'
  | 'card_unknown'
  | 'too_many_attempts'
  | 'card_disabled'
  | 'card_expired'
  | 'no_balance'
  | 'destination_tries_exhausted'
  | 'too_many_calls'
  | 'service_unavailable'
  | 'error';

/** One carrier attempt: one reservation, at most one bridge, exactly one settle. */
export interface CallAttempt {
  callId: string;
  number: string;
  gateway: string;
  /** The carrier a routing plan chose (absent: the access number's gateway). */
  route?: RouteChoice;
  maxSeconds: number;
  dialString?: string;
  bridge?: BridgeResult;
  /** 'not_bridged' when the flow never got to (or out of) the bridge. */
  outcome: BridgeOutcome | 'not_bridged';
  settle?: SettleResult;
  settleError?: string;
}

export interface FlowOutcome {
  ended: EndReason;
  callerHungUp: boolean;
  did: string;
  language: Language;
  cardId: string | undefined;
  calls: CallAttempt[];
  /** Prompt names and `say:<TYPE>:<text>` items, in the order the flow asked for them. */
  played: string[];
  /** Message of the error that ended the call, if one did. */
  error?: string;
}

export interface FlowInput {
  call: Call;
  services: CallServices;
  opts: ResolvedFlowOptions;
  log: Logger;
}

interface FlowContext extends FlowInput {
  access: AccessNumber | undefined;
  lang: Language;
  cardId: string | undefined;
  card: CardView | undefined;
  activated: boolean;
  pinTry: number;
  destTry: number;
  pinEntry: string | undefined;
  entry: NormaliseResult | undefined;
  refusal: PromptName | undefined;
  number: string | undefined;
  /** Prompts said ahead of the next digits prompt (or the goodbye), sent with it in one write. */
  preamble: Announcement[];
  lockedOut: boolean;
  /** prepareCall ran: the answer and the call's variables are sent. */
  prepared: boolean;
  auth: AuthorizeResult | undefined;
  gateway: string | undefined;
  onFailover: boolean;
  /** Carriers of a routing plan already tried for this destination (failover skips them). */
  triedCarriers: string[];
  /** Reserved and not yet settled: whoever ends the call must settle it. */
  pending: Reservation | undefined;
  dialString: string | undefined;
  bridge: BridgeResult | undefined;
  bridgeError: unknown;
  attempts: CallAttempt[];
  sessionCalls: number;
  played: string[];
  endPrompt: PromptName | undefined;
  ended: EndReason | undefined;
  callerGone: boolean;
  error: unknown;
  /** The state a dead ccard process sealed on this channel (src/flow/resume.ts), until it is acted on. */
  resumed: ResumeState | undefined;
  /** A call from a device (src/flow/device.ts): the result of checking its claims. */
  device: DeviceCallResult | undefined;
  /** The last IVR voucher redemption (src/flow/voucher.ts). */
  voucher: IvrVoucherResult | undefined;
}

const USABLE_CLI_RE = /^\+?\d{3,20}$/;

/** Withheld, anonymous, empty or all-zero caller ids never authenticate by CLI (nor get bound). */
export function usableCallerId(call: Call): boolean {
  const { callerId, callerIdWithheld } = call.info;
  return !callerIdWithheld && USABLE_CLI_RE.test(callerId) && !/^\+?0+$/.test(callerId);
}

const languageOf = (access: AccessNumber | undefined): Language =>
  (LANGUAGES as readonly string[]).includes(access?.language ?? '') ? (access!.language as Language) : 'en';

const hangupLike = (err: unknown): boolean =>
  isEslError(err, 'ESL_HANGUP') || isEslError(err, 'ESL_SOCKET_CLOSED') || isEslError(err, 'ESL_ABORTED');

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const money = (m: Micros): Announcement => ({ say: 'CURRENCY', text: formatMoney(m, 2) });

function digitsRequest(
  c: FlowContext,
  kind: 'pin' | 'destination' | 'menu' | 'voucher',
  prompt: PromptName,
): DigitsRequest {
  const base = {
    tries: 1,
    terminators: '#',
    prompt: promptPath(prompt),
    invalidPrompt: c.opts.pagdInvalidPrompt,
    digitTimeoutMs: c.opts.digitTimeoutMs,
  };
  const a = c.access!;
  switch (kind) {
    case 'pin':
      return { ...base, min: a.pinLength, max: a.pinLength, timeoutMs: c.opts.pinTimeoutMs, variable: 'ccard_pin', regex: `^\\d{${a.pinLength}}$` };
    case 'destination':
      return {
        ...base,
        min: 1,
        max: a.maxDigits + MAX_DIALLING_PREFIX_LENGTH,
        timeoutMs: c.opts.destTimeoutMs,
        variable: 'ivr_destination',
        regex: '^(\\d+|\\*)$',
      };
    case 'voucher':
      return { ...base, min: VOUCHER_MAX_DIGITS, max: VOUCHER_MAX_DIGITS, timeoutMs: c.opts.pinTimeoutMs, variable: 'ccard_voucher', regex: `^\\d{${VOUCHER_MAX_DIGITS}}$` };
    case 'menu':
      return { ...base, min: 1, max: 1, timeoutMs: c.opts.menuTimeoutMs, variable: 'ccard_choice', regex: '^\\d$' };
  }
}

/** FreeSWITCH keeps partial digits on timeout or hangup (observation 5): check success, the digits and the call. */
const cleanDigits = (call: Call, r: DigitsResult): string | undefined =>
  r.success && !call.hungUp && r.digits !== undefined && /^\d+$/.test(r.digits) ? r.digits : undefined;

const validPin = (c: FlowContext, r: DigitsResult): boolean => cleanDigits(c.call, r)?.length === c.access!.pinLength;

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

function dialStringFor(c: FlowContext, r: Reservation): string {
  const o = c.opts;
  const warn =
    o.warningPrompt !== null && r.maxSeconds > o.warningSecondsBeforeEnd + o.warningMinLeadSec
      ? {
          file: `${o.soundsPrefix}/${c.lang}/ccard/${o.warningRate}/${o.warningPrompt}.wav`,
          secondsBeforeEnd: o.warningSecondsBeforeEnd,
        }
      : undefined;
  return buildDialString({
    gateway: r.route?.gateway ?? c.gateway!,
    number: r.route?.dialNumber ?? c.number!,
    callId: r.callId,
    cardId: r.cardId,
    originateTimeoutSec: o.originateTimeoutSec,
    maxSeconds: r.maxSeconds,
    warning: warn,
  });
}

const updateLast = (attempts: CallAttempt[], patch: Partial<CallAttempt>): CallAttempt[] =>
  attempts.length === 0 ? attempts : [...attempts.slice(0, -1), { ...attempts[attempts.length - 1]!, ...patch }];

const AUTH_REFUSAL = {
  unknown: 'card_unknown',
  disabled: 'card_disabled',
  expired: 'card_expired',
  no_balance: 'no_balance',
} as const satisfies Record<string, EndReason & PromptName>;

const RESERVE_REFUSAL = {
  no_rate: 'no_rate',
  insufficient: 'insufficient_balance',
  too_many_calls: 'too_many_calls',
  card_unknown: 'card_unknown',
  card_disabled: 'card_disabled',
  card_expired: 'card_expired',
  retry: 'try_again',
  loss: 'destination_unprofitable',
  no_carrier: 'congestion',
} as const satisfies Record<ReserveRefusal, PromptName>;

/** Refusals about the card, not the number: the call ends (with this reason and prompt) instead of asking again. */
const ENDS_CALL: ReadonlySet<PromptName> = new Set(['too_many_calls', 'card_unknown', 'card_disabled', 'card_expired'] satisfies EndReason[]);

const FAILED = { target: '#call.session.failed', actions: 'recordError' } as const;

export const callMachine = setup({
  types: {
    context: {} as FlowContext,
    input: {} as FlowInput,
    events: {} as { type: 'HANGUP' },
    output: {} as FlowOutcome,
  },
  actors: { ...flowActors, ...resumeActors, ...voucherActors },
  delays: {
    bridgeGrace: ({ context }) => context.opts.bridgeHangupGraceMs,
  },
  actions: {
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
    // Only used as onError of an invoke: the event is an error event (the setup event type names HANGUP only).
    recordError: assign({ error: ({ event }) => (event as unknown as { error?: unknown }).error }),
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
    hasAccess: ({ context }) => context.access !== undefined,
    cliFirst: ({ context }) => context.access!.authMode !== 'pin' && usableCallerId(context.call),
    cliOnly: ({ context }) => context.access!.authMode === 'cli',
    pinTriesLeft: ({ context }) => context.pinTry < context.access!.pinTries,
    destTriesLeft: ({ context }) => context.destTry < context.opts.destTries && context.device === undefined,
    isDevice: ({ context }) => context.device?.ok === true,
    offerBind: ({ context }) =>
      context.pinEntry !== undefined &&
      context.access!.authMode === 'cli-then-pin' &&
      context.access!.bindCliAfterPin &&
      usableCallerId(context.call),
    entryOk: ({ context }) => context.entry?.ok === true,
    entryNotAllowed: ({ context }) => context.entry?.ok === false && context.entry.reason === 'not_allowed',
    callerGone: ({ context }) => context.callerGone || context.call.hungUp,
    hasPending: ({ context }) => context.pending !== undefined,
    dialStringBuilt: ({ context }) => context.dialString !== undefined,
    answered: ({ context }) => context.bridge?.answered === true,
    bridgeFailedHard: ({ context }) => context.bridgeError !== undefined,
    failover: ({ context }) => nextAttempt(context.bridge, context.attempts.at(-1), context.access!, context.onFailover).kind !== 'none',
    anotherCallAllowed: ({ context }) => context.sessionCalls < context.access!.maxCallsPerSession,
    hangupError: ({ context }) => hangupLike(context.error) || context.callerGone || context.call.hungUp,
    serviceUnavailable: ({ context }) => context.error instanceof ServiceUnavailableError,
  },
}).createMachine({
  id: 'call',
  context: ({ input }) => ({
    ...input,
    access: undefined,
    lang: 'en',
    cardId: undefined,
    card: undefined,
    activated: false,
    pinTry: 0,
    destTry: 0,
    pinEntry: undefined,
    entry: undefined,
    refusal: undefined,
    number: undefined,
    preamble: [],
    lockedOut: false,
    prepared: false,
    auth: undefined,
    gateway: undefined,
    onFailover: false,
    triedCarriers: [],
    pending: undefined,
    dialString: undefined,
    bridge: undefined,
    bridgeError: undefined,
    attempts: [],
    sessionCalls: 0,
    played: [],
    endPrompt: undefined,
    ended: undefined,
    callerGone: false,
    error: undefined,
    resumed: undefined,
    device: undefined,
    voucher: undefined,
  }),
  // Outside `session` a hangup only marks the caller gone: reserving, bridging and settling finish first.
  on: { HANGUP: { actions: 'markCallerGone' } },
  initial: 'session',
  states: {
    session: {
      on: { HANGUP: { target: '#call.closing', actions: 'markCallerGone' } },
      initial: 'answering',
      states: {
        // The access number (with the caller ID's card) and the lockout check, at once. The answer goes out after
        // them, with the first prompt (see prepareCall).
        answering: {
          invoke: {
            src: 'greet',
            input: ({ context }) => ({
              services: context.services,
              did: context.call.info.did,
              callerId: context.call.info.callerId,
              cliCallerId: usableCallerId(context.call) ? context.call.info.callerId : undefined,
              device: context.call.info.device,
              ivrUuid: context.call.info.uuid,
            }),
            onDone: {
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
            onError: FAILED,
          },
        },
        greeted: {
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
        },
        resuming: {
          always: [
            {
              guard: ({ context }) => context.resumed!.stage === 'r',
              target: '#call.resumeSettling',
              actions: assign(({ context }) => ({ cardId: context.resumed!.cardId, sessionCalls: context.resumed!.sessionCalls })),
            },
            {
              target: 'authorizing',
              actions: assign(({ context }) => ({ cardId: context.resumed!.cardId, sessionCalls: context.resumed!.sessionCalls })),
            },
          ],
        },
        choosingAuth: {
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
        },
        noCliCard: {
          always: [
            { guard: 'cliOnly', target: 'ending', actions: { type: 'endWith', params: { reason: 'card_unknown', prompt: 'card_unknown' } } },
            { target: 'pin' },
          ],
        },
        lookingUpCli: {
          invoke: {
            src: 'cardByCli',
            input: ({ context }) => ({ services: context.services, callerId: context.call.info.callerId }),
            onDone: [
              { guard: ({ event }) => event.output !== undefined, target: 'authorizing', actions: assign({ cardId: ({ event }) => event.output }) },
              { guard: 'cliOnly', target: 'ending', actions: { type: 'endWith', params: { reason: 'card_unknown', prompt: 'card_unknown' } } },
              { target: 'pin' },
            ],
            onError: FAILED,
          },
        },
        pin: {
          initial: 'asking',
          states: {
            asking: {
              entry: { type: 'recordPlayed', params: { items: [{ prompt: 'enter_pin' }] } },
              invoke: {
                src: 'collectDigits',
                input: ({ context }) => ({ call: context.call, req: digitsRequest(context, 'pin', 'enter_pin') }),
                onDone: [
                  {
                    guard: ({ context, event }) => validPin(context, event.output),
                    target: 'checking',
                    actions: assign({ pinEntry: ({ event }) => event.output.digits }),
                  },
                  { target: 'rejected' },
                ],
                onError: FAILED,
              },
            },
            // The PIN's card, read and authorized in one step; 'unknown' means no card has this PIN.
            checking: {
              invoke: {
                src: 'authorizeByPin',
                input: ({ context }) => ({ services: context.services, pin: context.pinEntry!, did: context.call.info.did, callerId: context.call.info.callerId }),
                onDone: [
                  { guard: ({ event }) => !event.output.ok && event.output.reason === 'unknown', target: 'recordingFailure' },
                  { target: '#call.session.authorized', actions: assign({ auth: ({ event }) => event.output }) },
                ],
                onError: FAILED,
              },
            },
            recordingFailure: {
              invoke: {
                src: 'recordPinFailure',
                input: ({ context }) => ({ services: context.services, did: context.call.info.did, callerId: context.call.info.callerId }),
                onDone: 'rejected',
                onError: FAILED,
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
              entry: { type: 'recordPlayed', params: { items: [{ prompt: 'invalid_pin' }] } },
              invoke: {
                src: 'announce',
                input: ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: 'invalid_pin' }] }),
                onDone: 'asking',
                onError: FAILED,
              },
            },
          },
        },
        authorizing: {
          invoke: {
            src: 'authorize',
            input: ({ context }) => ({ services: context.services, cardId: context.cardId! }),
            onDone: { target: 'authorized', actions: assign({ auth: ({ event }) => event.output }) },
            onError: FAILED,
          },
        },
        authorized: {
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
        },
        announcingActivation: {
          entry: { type: 'recordPlayed', params: { items: [{ prompt: 'card_activated' }] } },
          invoke: {
            src: 'announce',
            input: ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: 'card_activated' }] }),
            onDone: 'afterAuthorize',
            onError: FAILED,
          },
        },
        afterAuthorize: {
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
        },
        offeringBind: {
          entry: { type: 'recordPlayed', params: { items: [{ prompt: 'bind_cli_offer' }] } },
          invoke: {
            src: 'collectDigits',
            input: ({ context }) => ({ call: context.call, req: digitsRequest(context, 'menu', 'bind_cli_offer') }),
            onDone: [
              { guard: ({ context, event }) => cleanDigits(context.call, event.output) === '1', target: 'bindingCli' },
              { target: 'announcingBalance' },
            ],
            onError: FAILED,
          },
        },
        bindingCli: {
          invoke: {
            src: 'bindCli',
            input: ({ context }) => ({ services: context.services, callerId: context.call.info.callerId, cardId: context.cardId! }),
            onDone: 'confirmingBind',
            onError: FAILED,
          },
        },
        confirmingBind: {
          entry: { type: 'recordPlayed', params: { items: [{ prompt: 'cli_bound' }] } },
          invoke: {
            src: 'announce',
            input: ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: 'cli_bound' }] }),
            onDone: 'announcingBalance',
            onError: FAILED,
          },
        },
        refreshingBalance: {
          invoke: {
            src: 'balance',
            input: ({ context }) => ({ services: context.services, cardId: context.cardId! }),
            onDone: {
              target: 'announcingBalance',
              actions: assign({ card: ({ context, event }) => ({ ...context.card!, balance: event.output }) }),
            },
            onError: FAILED,
          },
        },
        // Said ahead of the destination prompt, in the same write (see collectDigits).
        announcingBalance: {
          entry: assign({
            played: ({ context }) => [...context.played, ...balanceItems(context).map(describeAnnouncement)],
            preamble: ({ context }) => balanceItems(context),
          }),
          always: 'destination',
        },
        destination: {
          initial: 'asking',
          states: {
            asking: {
              entry: { type: 'recordPlayed', params: { items: [{ prompt: 'enter_destination' }] } },
              invoke: {
                src: 'collectDigits',
                input: ({ context }) => ({
                  call: context.call,
                  lang: context.lang,
                  preamble: context.preamble,
                  req: digitsRequest(context, 'destination', 'enter_destination'),
                }),
                onDone: [
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
                onError: FAILED,
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
              ],
              invoke: {
                src: 'announce',
                input: ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: context.refusal! }] }),
                onDone: [
                  { guard: 'destTriesLeft', target: 'asking' },
                  {
                    target: '#call.session.ending',
                    actions: { type: 'endWith', params: { reason: 'destination_tries_exhausted', prompt: 'goodbye' } },
                  },
                ],
                onError: FAILED,
              },
            },
          },
        },
        // Voucher recharge (src/flow/voucher.ts): key it, hear the result and the new balance, back to the destination.
        voucher: {
          initial: 'asking',
          states: {
            asking: {
              entry: { type: 'recordPlayed', params: { items: [{ prompt: 'enter_voucher' }] } },
              invoke: {
                src: 'collectDigits',
                input: ({ context }) => ({ call: context.call, req: digitsRequest(context, 'voucher', 'enter_voucher') }),
                onDone: [
                  // Keyed digits, right or wrong, are a try (a wrong one counts toward the lockout); nothing keyed is not.
                  {
                    guard: ({ context, event }) => !context.call.hungUp && /^\d+$/.test(event.output.digits ?? ''),
                    target: 'redeeming',
                    actions: assign({ number: ({ event }) => event.output.digits }),
                  },
                  { target: '#call.session.announcingBalance' },
                ],
                onError: FAILED,
              },
            },
            redeeming: {
              invoke: {
                src: 'redeemVoucher',
                input: ({ context }) => ({
                  services: context.services,
                  cardId: context.cardId!,
                  number: context.number!,
                  did: context.call.info.did,
                  callerId: context.call.info.callerId,
                }),
                onDone: { target: 'told', actions: assign({ voucher: ({ event }) => event.output, number: undefined }) },
                onError: FAILED,
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
              entry: assign({ played: ({ context }) => [...context.played, context.refusal!] }),
              invoke: {
                src: 'announce',
                input: ({ context }) => ({ call: context.call, lang: context.lang, items: [{ prompt: context.refusal! }] }),
                onDone: { target: '#call.session.announcingBalance', actions: assign({ refusal: undefined }) },
                onError: FAILED,
              },
            },
          },
        },
        reserveRefused: {
          always: [
            {
              guard: ({ context }) => ENDS_CALL.has(context.refusal!),
              target: 'ending',
              actions: { type: 'endWith', params: ({ context }) => ({ reason: context.refusal as EndReason, prompt: context.refusal! }) },
            },
            { target: 'destination.refusing' },
          ],
        },
        buildingDialString: {
          entry: assign(({ context }) => {
            try {
              const dialString = dialStringFor(context, context.pending!);
              return { dialString, attempts: updateLast(context.attempts, { dialString }) };
            } catch (error) {
              return { dialString: undefined, error };
            }
          }),
          always: [{ guard: 'dialStringBuilt', target: '#call.bridging' }, { target: 'failed' }],
        },
        afterCall: {
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
        },
        fetchingRemaining: {
          invoke: {
            src: 'balance',
            input: ({ context }) => ({ services: context.services, cardId: context.cardId! }),
            onDone: {
              target: 'announcingRemaining',
              actions: assign({ card: ({ context, event }) => ({ ...context.card!, balance: event.output }) }),
            },
            onError: FAILED,
          },
        },
        // Said ahead of the next prompt (another call, or goodbye), in the same write.
        announcingRemaining: {
          entry: assign({
            played: ({ context }) => [...context.played, ...remainingItems(context).map(describeAnnouncement)],
            preamble: ({ context }) => remainingItems(context),
          }),
          always: 'countingCall',
        },
        announcingFailure: {
          entry: assign({
            played: ({ context }) => [...context.played, failurePrompt(context)],
            preamble: ({ context }) => [{ prompt: failurePrompt(context) }],
          }),
          always: 'countingCall',
        },
        countingCall: {
          entry: [assign({ sessionCalls: ({ context }) => context.sessionCalls + 1 }), { type: 'markResume', params: { stage: 'm' } }],
          always: [
            { guard: 'anotherCallAllowed', target: 'offeringAnother' },
            { target: 'ending', actions: { type: 'endWith', params: { reason: 'completed', prompt: 'goodbye' } } },
          ],
        },
        offeringAnother: {
          entry: { type: 'recordPlayed', params: { items: [{ prompt: 'another_call' }] } },
          invoke: {
            src: 'collectDigits',
            input: ({ context }) => ({
              call: context.call,
              lang: context.lang,
              preamble: context.preamble,
              req: digitsRequest(context, 'menu', 'another_call'),
            }),
            onDone: [
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
            onError: FAILED,
          },
        },
        failed: {
          entry: 'logError',
          always: [
            { guard: 'hangupError', target: '#call.closing', actions: 'markCallerGone' },
            {
              guard: 'serviceUnavailable',
              target: 'ending',
              actions: { type: 'endWith', params: { reason: 'service_unavailable', prompt: 'service_unavailable' } },
            },
            { target: '#call.closing', actions: { type: 'endWith', params: { reason: 'error' } } },
          ],
        },
        ending: {
          always: [{ guard: ({ context }) => context.endPrompt !== undefined || context.preamble.length > 0, target: 'sayingEnd' }, { target: '#call.closing' }],
        },
        sayingEnd: {
          entry: [
            'prepareCall',
            assign({ played: ({ context }) => (context.endPrompt ? [...context.played, context.endPrompt] : context.played) }),
          ],
          invoke: {
            src: 'announce',
            input: ({ context }) => ({
              call: context.call,
              lang: context.lang,
              items: [...context.preamble, ...(context.endPrompt ? [{ prompt: context.endPrompt }] : [])],
            }),
            onDone: '#call.closing',
            // Nothing left to say: a failed goodbye still closes the call.
            onError: '#call.closing',
          },
        },
      },
    },

    // Outside `session`: a hangup meanwhile only marks the caller gone, so a hold that is made is always recorded
    // (and then released). The reservation rates the call too; its cap is what the duration announcement says.
    reserving: {
      invoke: {
        src: 'reserve',
        input: ({ context }) => ({
          services: context.services,
          cardId: context.cardId!,
          number: context.number!,
          ctx: { ivrUuid: context.call.info.uuid, did: context.call.info.did, callerId: context.call.info.callerId },
          // What the card could spend when it was authorized is the first guess (the Lua script has the last word).
          // Once a reservation was made in this session (another call, a failover) that figure is stale: the live
          // store is read instead.
          hint: {
            card: context.card,
            available: context.attempts.length === 0 ? context.card?.available : undefined,
            triedCarriers: context.triedCarriers,
          },
        }),
        onDone: [
          {
            guard: ({ event }) => event.output.ok,
            target: 'reserved',
            actions: [
              assign(({ context, event }) => {
              if (!event.output.ok) return {};
              const r = event.output.reservation;
              const attempt: CallAttempt = {
                callId: r.callId,
                number: context.number!,
                gateway: r.route?.gateway ?? context.gateway!,
                ...(r.route && { route: r.route }),
                maxSeconds: r.maxSeconds,
                outcome: 'not_bridged',
              };
              // "This call can last up to N minutes" goes out with the bridge (once: not again on a failover). In
              // slices: what the card's available balance buys for this call now, not the first slice. A device call
              // is silent unless the balance is low.
              const announce = r.announceSeconds ?? r.maxSeconds;
              const quiet = context.onFailover || (context.device !== undefined && announce >= DEVICE_LOW_SECONDS);
              const preamble = quiet ? [] : durationItems(announce);
              return {
                pending: r,
                bridge: undefined,
                bridgeError: undefined,
                dialString: undefined,
                attempts: [...context.attempts, attempt],
                preamble,
                played: [...context.played, ...preamble.map(describeAnnouncement)],
              };
            }),
              // Leaves with the bridge: a process that takes the call over settles this reservation.
              { type: 'markResume', params: { stage: 'r' } },
            ],
          },
          {
            target: '#call.session.reserveRefused',
            actions: assign({
              refusal: ({ event }) =>
                event.output.ok ? undefined : (event.output.prompt ?? RESERVE_REFUSAL[event.output.reason]),
            }),
          },
        ],
        onError: FAILED,
      },
    },
    reserved: {
      always: [{ guard: 'callerGone', target: 'closing' }, { target: '#call.session.buildingDialString' }],
    },

    // A call handed over with a reservation: settle it from what the channel says (outside `session`, so a hangup
    // meanwhile does not cut it short), then the card again (its balance, its status) and on as after any call.
    resumeSettling: {
      invoke: {
        src: 'resumeSettle',
        input: ({ context }) => ({
          call: context.call,
          services: context.services,
          reservation: { callId: context.resumed!.callId!, cardId: context.resumed!.cardId, maxSeconds: 0, reserved: 0n },
        }),
        onDone: {
          target: 'resumed',
          actions: assign(({ context, event }) => ({
            bridge: event.output.bridge,
            callerGone: context.callerGone || context.call.hungUp,
            attempts: [
              {
                callId: context.resumed!.callId!,
                number: '',
                gateway: '',
                maxSeconds: 0,
                bridge: event.output.bridge,
                outcome: classifyBridge(event.output.bridge),
                settle: event.output.settle,
              },
            ],
          })),
        },
        onError: {
          target: 'resumed',
          actions: [{ type: 'logSettleError', params: ({ event }) => ({ error: event.error }) }, assign({ bridge: undefined })],
        },
      },
    },
    resumed: {
      always: [{ guard: 'callerGone', target: 'closing' }, { target: '#call.session.authorizing' }],
    },

    bridging: {
      exit: assign({ preamble: [] }),
      invoke: {
        src: 'bridge',
        input: ({ context }) => ({
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
        }),
        onDone: {
          target: 'settlingCall',
          actions: assign(({ context, event }) => ({
            bridge: event.output,
            callerGone: context.callerGone || event.output.callerHungUp,
            attempts: updateLast(context.attempts, { bridge: event.output, outcome: classifyBridge(event.output) }),
          })),
        },
        onError: {
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
    },

    settlingCall: {
      invoke: {
        src: 'settle',
        input: ({ context }) => ({ services: context.services, reservation: context.pending!, bridge: context.bridge }),
        onDone: {
          target: 'routingAfterCall',
          actions: assign(({ context, event }) => ({
            pending: undefined,
            attempts: updateLast(context.attempts, { settle: event.output }),
          })),
        },
        onError: {
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
    },
    routingAfterCall: {
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
    },

    closing: {
      // Our own hangup fires hangupSignal too: it says nothing about the caller any more.
      on: { HANGUP: { actions: [] } },
      initial: 'choosing',
      states: {
        choosing: {
          always: [{ guard: 'hasPending', target: 'settling' }, { target: 'hangingUp' }],
        },
        settling: {
          invoke: {
            src: 'settle',
            // Only reservations that never reached the bridge get here (bridging always goes to settlingCall):
            // nothing was dialled, so say so and the hold is released at once instead of waiting for its deadline.
            input: ({ context }) => ({ services: context.services, reservation: context.pending!, bridge: NOT_BRIDGED }),
            onDone: {
              target: 'hangingUp',
              actions: assign(({ context, event }) => ({ pending: undefined, attempts: updateLast(context.attempts, { settle: event.output }) })),
            },
            onError: {
              target: 'hangingUp',
              actions: [
                { type: 'logSettleError', params: ({ event }) => ({ error: event.error }) },
                assign(({ context, event }) => ({
                  pending: undefined,
                  attempts: updateLast(context.attempts, { settleError: errorText(event.error) }),
                })),
              ],
            },
          },
        },
        hangingUp: {
          invoke: {
            src: 'hangup',
            input: ({ context }) => ({ call: context.call }),
            onDone: '#call.done',
            onError: '#call.done',
          },
        },
      },
    },
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

function balanceItems(c: FlowContext): Announcement[] {
  return [{ prompt: 'you_have' }, money(c.card!.balance), ...(voucherOffered(c) ? [{ prompt: 'voucher_offer' } as const] : [])];
}

const voucherOffered = (c: FlowContext): boolean => c.access?.voucherRecharge === true && c.services.redeemVoucher !== undefined && c.device === undefined;

function remainingItems(c: FlowContext): Announcement[] {
  return [{ prompt: 'remaining_balance' }, money(c.card!.balance)];
}

/** mod_say_en reads a time of 0 as the current time: under a minute gets its own prompt, never "0". */
export function durationItems(maxSeconds: number): Announcement[] {
  const minutes = Math.floor(maxSeconds / 60);
  if (minutes < 1) return [{ prompt: 'less_than_one_minute' }];
  return [{ prompt: 'call_can_last' }, { say: 'NUMBER', text: String(minutes) }, { prompt: minutes === 1 ? 'minute' : 'minutes' }];
}

function failurePrompt(c: FlowContext): PromptName {
  const outcome = c.bridge ? classifyBridge(c.bridge) : 'failed';
  return outcome === 'answered' ? 'call_failed' : OUTCOME_PROMPT[outcome];
}
