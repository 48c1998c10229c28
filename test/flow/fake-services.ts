import { randomUUID } from 'node:crypto';
import type { BridgeResult } from '../../src/flow/call.ts';
import type {
  AccessNumber,
  AuthorizeResult,
  CallContextInfo,
  CallServices,
  Reservation,
  ReserveHint,
  ReserveResult,
  SettleResult,
} from '../../src/flow/services.ts';
import { parseMoney, type Micros } from '../../src/money/money.ts';
import type { CardStatus } from '../../src/store/cards.ts';

export interface FakeCard {
  id: string;
  status: CardStatus;
  balance: Micros;
  /** Price of one second, for reservations and settlement. */
  perSecond: Micros;
}

export const accessNumber = (over: Partial<AccessNumber> = {}): AccessNumber => ({
  did: '15550001111',
  language: 'en',
  authMode: 'pin',
  gateway: 'carrier',
  failoverGateway: null,
  minDigits: 11,
  maxDigits: 15,
  allowedPrefixes: [],
  deniedPrefixes: ['1900'],
  countryCode: '1',
  nationalPrefix: '1',
  pinLength: 10,
  pinTries: 3,
  bindCliAfterPin: false,
  maxCallsPerSession: 1,
  ...over,
});

type Method = keyof CallServices;

/**
 * In-memory CallServices with call recording. Reservations: maxSeconds = floor(balance / perSecond) unless
 * `rateFor` says otherwise; reserve/settle hold and release like the real thing (settle debits billsec).
 */
export class FakeServices implements CallServices {
  readonly calls: Array<{ method: Method; args: unknown[] }> = [];
  numbers = new Map<string, AccessNumber>([['15550001111', accessNumber()]]);
  pins = new Map<string, string>([['1234567890', 'card-1']]);
  clis = new Map<string, string>();
  cards = new Map<string, FakeCard>([
    ['card-1', { id: 'card-1', status: 'active', balance: parseMoney('4.37'), perSecond: parseMoney('0.001') }],
  ]);
  lockedOut = false;
  /** Per destination number: a forced rating (a cap, or the reason reserve refuses). */
  rateFor = new Map<string, { ok: true; maxSeconds: number } | Extract<ReserveResult, { ok: false }>>();
  /** Forced reserve results, used in order before the normal behaviour. */
  reserveQueue: ReserveResult[] = [];
  /** Method -> error to throw (every time). */
  failing = new Map<Method, Error>();
  readonly held = new Map<string, Reservation>();
  readonly bound: Array<[string, string]> = [];

  private record(method: Method, args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.failing.get(method);
    if (err) throw err;
  }
  callsOf(method: Method): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }
  private card(id: string): FakeCard {
    const c = this.cards.get(id);
    if (!c) throw new Error(`FakeServices: no card ${id}`);
    return c;
  }
  private maxSeconds(card: FakeCard): number {
    return card.perSecond > 0n ? Number(card.balance / card.perSecond) : 0;
  }

  /** When true, accessNumber reads the caller ID's card too (cliCardId), as the real one does. */
  cliWithNumber = false;
  async accessNumber(did: string, callerId?: string) {
    this.record('accessNumber', [did]);
    const a = this.numbers.get(did);
    return a && this.cliWithNumber && callerId !== undefined ? { ...a, cliCardId: this.clis.get(callerId) ?? null } : a;
  }
  async cardIdByCli(callerId: string) {
    this.record('cardIdByCli', [callerId]);
    return this.clis.get(callerId);
  }
  async authorize(cardId: string): Promise<AuthorizeResult> {
    this.record('authorize', [cardId]);
    return this.authorizeCard(cardId);
  }
  async authorizeByPin(pin: string): Promise<AuthorizeResult> {
    this.record('authorizeByPin', [pin]);
    const id = this.pins.get(pin);
    return id === undefined ? { ok: false, reason: 'unknown' } : this.authorizeCard(id);
  }
  private authorizeCard(cardId: string): AuthorizeResult {
    const c = this.cards.get(cardId);
    if (!c) return { ok: false, reason: 'unknown' };
    if (c.status === 'disabled' || c.status === 'expired') return { ok: false, reason: c.status };
    if (c.balance <= 0n) return { ok: false, reason: 'no_balance' };
    const activated = c.status === 'pending';
    c.status = 'active';
    return {
      ok: true,
      activated,
      card: { id: c.id, serial: `S-${c.id}`, currency: 'USD', available: c.balance, balance: c.balance },
    };
  }
  async balance(cardId: string) {
    this.record('balance', [cardId]);
    return this.card(cardId).balance;
  }
  /** Runs inside reserve (e.g. the caller hangs up meanwhile). */
  onReserve: (() => void) | undefined;
  /** What the flow passed to reserve besides the card id. */
  readonly reserveHints: Array<ReserveHint | undefined> = [];
  async reserve(cardId: string, number: string, ctx: CallContextInfo, hint?: ReserveHint): Promise<ReserveResult> {
    this.record('reserve', [cardId, number, ctx]);
    this.reserveHints.push(hint);
    this.onReserve?.();
    const forced = this.reserveQueue.shift();
    if (forced) {
      if (forced.ok) this.held.set(forced.reservation.callId, forced.reservation);
      return forced;
    }
    const rated = this.rateFor.get(number);
    if (rated && !rated.ok) return rated;
    const c = this.card(cardId);
    const maxSeconds = rated ? rated.maxSeconds : this.maxSeconds(c);
    if (maxSeconds < 1) return { ok: false, reason: 'insufficient' };
    const reservation: Reservation = { callId: randomUUID(), cardId, maxSeconds, reserved: c.perSecond * BigInt(maxSeconds) };
    this.held.set(reservation.callId, reservation);
    return { ok: true, reservation };
  }
  async settle(reservation: Reservation, bridge: BridgeResult | undefined): Promise<SettleResult> {
    this.record('settle', [reservation, bridge]);
    this.held.delete(reservation.callId);
    const c = this.card(reservation.cardId);
    const billedSeconds = bridge?.answered && bridge.carrierCdr ? Math.min(bridge.carrierCdr.billsec, reservation.maxSeconds) : 0;
    const cost = c.perSecond * BigInt(billedSeconds);
    c.balance -= cost;
    return { billedSeconds, cost, balance: c.balance };
  }
  async isLockedOut(did: string, callerId: string) {
    this.record('isLockedOut', [did, callerId]);
    return this.lockedOut;
  }
  async recordPinFailure(did: string, callerId: string) {
    this.record('recordPinFailure', [did, callerId]);
  }
  async bindCli(callerId: string, cardId: string) {
    this.record('bindCli', [callerId, cardId]);
    this.bound.push([callerId, cardId]);
    this.clis.set(callerId, cardId);
  }

  /** Changes the single access number of the fixture. */
  setNumber(over: Partial<AccessNumber>): void {
    this.numbers.set('15550001111', accessNumber(over));
  }
}
