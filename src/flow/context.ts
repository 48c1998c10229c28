import type { Logger } from 'pino';
import { isEslError } from '../esl/errors.ts';
import { formatMoney, type Micros } from '../money/money.ts';
import type { Announcement } from './actors.ts';
import type { BridgeOutcome } from './bridge-outcome.ts';
import type { BridgeResult, Call } from './call.ts';
import type { DeviceCallResult } from './device.ts';
import type { EffectRunner } from './effects.ts';
import type { NormaliseResult } from './number.ts';
import type { ResolvedFlowOptions } from './options.ts';
import { LANGUAGES, type Language, type PromptName } from './prompts.ts';
import type { ResumeState } from './resume.ts';
import type { AccessNumber, AuthorizeResult, CallServices, CardView, Reservation, RouteChoice, SettleResult } from './services.ts';
import type { IvrVoucherResult } from './voucher.ts';

// What every phase of the call machine (machine.ts, phases/) reads and writes, and the helpers they share.

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
  /** Runs the effects of the call, one at a time (effects.ts). */
  runner: EffectRunner;
}

export interface FlowContext extends FlowInput {
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

/**
 * Every field of the context, in order, with its initial value (the input's and the arrays' are set per call). V8
 * copies an object built from it cheaply, and XState copies the context on every assign; an object literal that
 * spreads the input and then adds ~35 fields is built on a slow path instead (~0.1 ms a call), and a plain literal
 * of this size turns into a dictionary on its first copy (each assign ~10x slower).
 */
const INITIAL: FlowContext = {
  call: undefined as never,
  services: undefined as never,
  opts: undefined as never,
  log: undefined as never,
  runner: undefined as never,
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
};

export function initialContext(input: FlowInput): FlowContext {
  return { ...INITIAL, ...input, preamble: [], triedCarriers: [], attempts: [], played: [] };
}

const USABLE_CLI_RE = /^\+?\d{3,20}$/;

/** Withheld, anonymous, empty or all-zero caller ids never authenticate by CLI (nor get bound). */
export function usableCallerId(call: Call): boolean {
  const { callerId, callerIdWithheld } = call.info;
  return !callerIdWithheld && USABLE_CLI_RE.test(callerId) && !/^\+?0+$/.test(callerId);
}

export const languageOf = (access: AccessNumber | undefined): Language =>
  (LANGUAGES as readonly string[]).includes(access?.language ?? '') ? (access!.language as Language) : 'en';

export const hangupLike = (err: unknown): boolean =>
  isEslError(err, 'ESL_HANGUP') || isEslError(err, 'ESL_SOCKET_CLOSED') || isEslError(err, 'ESL_ABORTED');

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export const money = (m: Micros): Announcement => ({ say: 'CURRENCY', text: formatMoney(m, 2) });

export const updateLast = (attempts: CallAttempt[], patch: Partial<CallAttempt>): CallAttempt[] =>
  attempts.length === 0 ? attempts : [...attempts.slice(0, -1), { ...attempts[attempts.length - 1]!, ...patch }];

