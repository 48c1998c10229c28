import type { Micros } from '../money/money.ts';
import type { BridgeResult } from './call.ts';
import type { PromptName } from './prompts.ts';

/**
 * What the call flow needs from billing and storage. Implemented by src/app/call-services.ts over PostgreSQL
 * and the live balance store; tests can replace it. Every method may throw ServiceUnavailableError when
 * PostgreSQL or Redis cannot be reached: the flow then plays `service_unavailable` and hangs up (fail closed).
 */
export class ServiceUnavailableError extends Error {
  readonly code = 'SERVICE_UNAVAILABLE';
}

export type AuthMode = 'pin' | 'cli' | 'cli-then-pin';

export interface AccessNumber {
  did: string;
  language: string;
  authMode: AuthMode;
  gateway: string;
  failoverGateway: string | null;
  minDigits: number;
  maxDigits: number;
  allowedPrefixes: string[];
  deniedPrefixes: string[];
  countryCode: string;
  nationalPrefix: string;
  pinLength: number;
  pinTries: number;
  bindCliAfterPin: boolean;
  maxCallsPerSession: number;
  /** Offer voucher recharge (key 0) after the balance announcement. */
  voucherRecharge?: boolean;
  /**
   * The card bound to the caller ID given to accessNumber, read in the same query: null when none, undefined when
   * it was not looked up (then the flow asks cardIdByCli).
   */
  cliCardId?: string | null;
}

export interface CardView {
  id: string;
  serial: string;
  currency: string;
  /** Balance plus credit limit minus what other live calls hold: what this caller may spend now. */
  available: Micros;
  /** The card's balance as stored (what "you have" announces). */
  balance: Micros;
  /** What rating the card needs, as read when it was authorized: the reservation then reads nothing again. */
  pricing?: CardPricing;
}

export interface CardPricing {
  rateTableId: string;
  taxPpm: number;
  maxConcurrentCalls: number;
  /** The card's routing plan, else its series' (null: the access number's gateway). */
  routingPlanId?: string | null;
}

export type AuthorizeResult =
  | { ok: true; card: CardView; activated: boolean }
  | { ok: false; reason: 'unknown' | 'disabled' | 'expired' | 'no_balance' };

export interface Reservation {
  /** The carrier leg's uuid (set with origination_uuid) and the key of the CDR and the debit. */
  callId: string;
  cardId: string;
  maxSeconds: number;
  reserved: Micros;
  /**
   * Reservations in slices: maxSeconds is the current slice's cap, announceSeconds what the card's available
   * balance bought for this call when it was reserved (what the caller is told), sliceSeconds how much each
   * extension asks for, and ceilingSeconds the longest any call may last. Absent: one hold for the whole call.
   */
  announceSeconds?: number;
  sliceSeconds?: number;
  ceilingSeconds?: number;
  /** Set when a routing plan chose the carrier (src/billing/route-call.ts); else the access number's gateway. */
  route?: RouteChoice;
}

export interface RouteChoice {
  carrierId: string;
  carrier: string;
  gateway: string;
  /** The number as the carrier wants it (its prefix strip / add). */
  dialNumber: string;
  /** Another carrier of the plan could take a congestion-class failure over. */
  more: boolean;
}

/**
 * Why a reservation was refused, each with its own prompt: no rate for the destination; the balance buys less than
 * the shortest call allowed; the card's calls are all in use; the card is unknown, disabled or expired now (it was
 * authorized, then changed during the IVR); the funds could not be held after several tries (other calls on the
 * card kept changing what is left: the caller may try again).
 */
export type ReserveRefusal =
  | 'no_rate'
  | 'insufficient'
  | 'too_many_calls'
  | 'card_unknown'
  | 'card_disabled'
  | 'card_expired'
  | 'retry'
  /** Routing: every carrier for the destination costs more than the card pays (prompt: the plan's loss prompt). */
  | 'loss'
  /** Routing: no carrier can take the call now (tried, cooling down, at its call limit). */
  | 'no_carrier';

export type ReserveResult = { ok: true; reservation: Reservation } | { ok: false; reason: ReserveRefusal; prompt?: PromptName };

/** Growing a running call's hold (see extend). */
export type ExtendResult = { ok: true; maxSeconds: number } | { ok: false; reason: 'gone' | 'insufficient' };

export interface SettleResult {
  /** Seconds billed and what they cost (0 when the carrier never answered). */
  billedSeconds: number;
  cost: Micros;
  /** Balance after the settlement. */
  balance: Micros;
}

export interface CallContextInfo {
  ivrUuid: string;
  did: string;
  callerId: string;
}

export interface ReserveHint {
  card?: CardView;
  available?: Micros;
  /** Carriers already tried for this destination in this call (failover): routing skips them. */
  triedCarriers?: readonly string[];
}

export interface CallServices {
  /** The access number's settings; with a callerId, also the card bound to it (cliCardId). */
  accessNumber(did: string, callerId?: string): Promise<AccessNumber | undefined>;
  /**
   * The card holding this PIN, authorized (see authorize), in one read: 'unknown' when no card has this PIN.
   * `caller`: who keyed it (a right PIN makes the caller ID trusted by the guessing lockout).
   */
  authorizeByPin(pin: string, caller?: { did: string; callerId: string }): Promise<AuthorizeResult>;
  /** Card id whitelisted for this caller ID, undefined when none. */
  cardIdByCli(callerId: string): Promise<string | undefined>;
  /** Checks status and expiry, activates a pending card (charging its activation fee once), returns its balance. */
  authorize(cardId: string): Promise<AuthorizeResult>;
  /** Current balance (for "you have ..." announcements). */
  balance(cardId: string): Promise<Micros>;
  /**
   * Rates `number` (E.164 digits) for the card, holds the funds for cost(maxSeconds) atomically and records the
   * pending call in PostgreSQL (only while the card is still active). `hint`: the authorized card (its pricing) and
   * what it could spend then (the first guess of the available amount), to skip reads.
   */
  reserve(cardId: string, number: string, ctx: CallContextInfo, hint?: ReserveHint): Promise<ReserveResult>;
  /**
   * Ends a reservation: debits the card from the carrier CDR when it answered (idempotent on callId),
   * otherwise releases the hold. Must always complete (it is never aborted by a hangup).
   */
  settle(reservation: Reservation, bridge: BridgeResult | undefined): Promise<SettleResult>;
  /**
   * Grows the hold of an answered call to cover `wantSeconds` in all (fewer when the card cannot fund that many;
   * 'insufficient' when it cannot fund a single second more), with `talkedSeconds` already talked; the new cap is
   * recorded before it is returned. 'gone' when the call no longer holds anything (settled or expired).
   */
  extend?(reservation: Reservation, wantSeconds: number, talkedSeconds: number): Promise<ExtendResult>;
  /** Brute-force protection: true when this caller ID or DID is locked out. */
  isLockedOut(did: string, callerId: string): Promise<boolean>;
  /** Records a failed PIN try (counts towards the lockout). */
  recordPinFailure(did: string, callerId: string): Promise<void>;
  /** Binds a caller ID to a card (cli-then-pin with bindCliAfterPin). */
  bindCli(callerId: string, cardId: string): Promise<void>;
  /** A device call's card, after checking its claims (src/flow/device.ts); absent: device calls are refused. */
  /** IVR voucher recharge (src/flow/voucher.ts); absent: the voucher menu is never offered. */
  redeemVoucher?(cardId: string, number: string, did: string, callerId: string): Promise<import('./voucher.ts').IvrVoucherResult>;
  deviceCall?(claims: import('./device.ts').DeviceClaims, ivrUuid: string): Promise<import('./device.ts').DeviceCallResult>;
}
