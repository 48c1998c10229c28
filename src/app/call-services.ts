import type { Pool } from 'pg';
import type { Cluster, Redis } from 'ioredis';
import {
  ServiceUnavailableError,
  type AuthorizeResult,
  type CallServices,
  type ExtendResult,
  type ReserveResult,
  type SettleResult,
} from '../flow/services.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { PinKeys } from '../store/pin.ts';
import type { Micros } from '../money/money.ts';
import { bindCallerId, cardBalance, cardIdByCallerId, getCardByPin, CALLER_ID_RE, type CardRecord } from '../store/cards.ts';
import { statementName } from '../store/db.ts';
import { ACCESS_SELECT, ACCESS_WITH_CLI_SELECT, toAccessNumber } from '../store/access-numbers.ts';
import { authorizeCard } from '../billing/lifecycle.ts';
import { extendReservation } from '../billing/slices.ts';
import { reserveCall } from '../billing/reserve.ts';
import { settleFacts, settleReservation } from '../billing/settle.ts';
import type { CallFacts } from '../billing/debit.ts';
import type { BillingConfig, Log, RateLookup } from '../billing/billing-deps.ts';
import { closeOverdueCalls } from '../billing/overdue.ts';
import { recoverOpenCalls, type RecoverySummary } from '../billing/recovery.ts';
import { ingestJsonCdr, type IngestResult } from '../cdr/json-cdr.ts';
import { countBackendError, countLockout, countRefusal, refused, timeReservation } from '../metrics/index.ts';
import { createPinGuard } from './pin-guard.ts';
import { reserveRouted, settleRouted, type RoutingDeps } from '../billing/route-call.ts';
import { CarrierHealth, type CarrierHealthConfig } from '../billing/carrier-health.ts';
import { MemoryCarrierSlots, RedisCarrierSlots } from '../live/carrier-slots.ts';
import type { RateIndex } from '../store/rates.ts';

export interface LockoutConfig {
  /** Failed PIN tries from one caller ID within windowSec before it is locked out. */
  maxFailures: number;
  windowSec: number;
  lockoutSec: number;
  /**
   * Failed tries of untrusted callers (unknown and withheld caller IDs together) on one access number before it
   * refuses them for lockoutSec (default 20). Trusted callers are never refused: see src/app/pin-guard.ts.
   */
  guardFailures?: number;
  /** How long a right PIN keeps its caller ID trusted (default 30 days). */
  trustSec?: number;
}

export interface CallServicesConfig extends BillingConfig {
  lockout: LockoutConfig;
  /** Any single operation taking longer fails closed with ServiceUnavailableError (default 10 s). */
  opTimeoutMs?: number;
  /** Carrier failures before a cool-down (routing plans). */
  carrierHealth?: CarrierHealthConfig;
}

export interface CallServicesDeps {
  pool: Pool;
  live: LiveBalanceStore;
  rates: RateLookup;
  pinKeys: PinKeys;
  /** When given, lockout counters live in Redis (shared by every ccard process); else in this process. */
  redis?: Redis | Cluster;
  /** Prefix of the lockout keys in Redis (default 'ccard:'). */
  redisPrefix?: string;
  config: CallServicesConfig;
  logger: Log;
  /** Clock (tests). */
  now?: () => Date;
  /**
   * Where a call's ending goes when the database cannot take it now (src/cdr/journal.ts, replayed by
   * src/cdr/retry.ts until it lands). Without it such a settle only fails (the call waits for its CDR).
   */
  debitJournal?: { add(facts: CallFacts): Promise<unknown> };
}

/** CallServices plus the operations the server wires to its HTTP routes and startup. */
export interface CcardCallServices extends CallServices {
  ingestJsonCdr(bodyText: string, source?: 'json_cdr' | 'spool' | 'import'): Promise<IngestResult>;
  recoverOpenCalls(): Promise<RecoverySummary>;
  /** Ends the calls whose hold deadline passed without a CDR (calls.status 'expired'); returns how many. */
  closeOverdueCalls(): Promise<number>;
}

const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
]);
const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
const MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Connection is closed|Stream isn't writeable|Cannot use a pool after calling end|Client has encountered a connection error|Client was closed|enableOfflineQueue|Reached the max retries per request limit/i;

/** True when err means PostgreSQL or Redis could not be reached (not a bug or a constraint violation). */
export function isUnavailableError(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 4) return false;
  if (err instanceof ServiceUnavailableError || err.name === 'MaxRetriesPerRequestError') return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NET_CODES.has(code) || PG_UNAVAILABLE.has(code) || code.startsWith('08'))) return true;
  if (MESSAGES.test(err.message)) return true;
  if (err instanceof AggregateError && err.errors.some((e) => isUnavailableError(e, depth + 1))) return true;
  return isUnavailableError((err as { cause?: unknown }).cause, depth + 1);
}

class OpTimeout extends Error {
  readonly code = 'ETIMEDOUT';
}

/** Runs op; a connection failure or a timeout becomes ServiceUnavailableError (the flow then fails closed). */
export async function failClosed<T>(what: string, timeoutMs: number, op: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OpTimeout(`${what} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([op(), timeout]);
  } catch (err) {
    if (err instanceof ServiceUnavailableError) throw err;
    if (isUnavailableError(err)) {
      countBackendError(err);
      throw new ServiceUnavailableError(`${what}: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

// ---- the services ---------------------------------------------------------------------------------------------

const PIN_RE = /^[0-9]{4,20}$/;

/**
 * CallServices over PostgreSQL (the truth) and a LiveBalanceStore (holds of calls in progress). Every method
 * fails closed: PostgreSQL or Redis unreachable, or an operation slower than opTimeoutMs, throws
 * ServiceUnavailableError. Call recoverOpenCalls() once at startup before accepting calls.
 */
export function createCallServices(deps: CallServicesDeps): CcardCallServices {
  const { pool, live, config, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const timeoutMs = config.opTimeoutMs ?? 10_000;
  const billing = { pool, live, rates: deps.rates, config, logger };
  const pinGuard = createPinGuard(
    { ...config.lockout, guardFailures: config.lockout.guardFailures ?? 20, trustSec: config.lockout.trustSec ?? 30 * 86_400 },
    { ...(deps.redis && { redis: deps.redis }), redisPrefix: deps.redisPrefix ?? 'ccard:', now: () => now().getTime(), logger },
  );
  // A caller ID bound to a card is trusted where bound callers need no PIN (auth modes cli and cli-then-pin).
  const boundWithoutPin = async (did: string, callerId: string) =>
    (
      await pool.query(
        `SELECT 1 FROM access_numbers a, caller_ids c WHERE a.did = $1 AND a.auth_mode <> 'pin' AND c.caller_id = $2`,
        [did, callerId],
      )
    ).rowCount === 1;
  const guard = <T>(what: string, op: () => Promise<T>) => failClosed(what, timeoutMs, op);
  // Routing plans need the whole rate index (buy rates, plans, carriers): the RateCache the service passes has it.
  const rates = deps.rates as typeof deps.rates & { index?: RateIndex };
  const routing: RoutingDeps | undefined =
    'index' in rates
      ? {
          ...billing,
          index: () => rates.index!,
          slots: deps.redis ? new RedisCarrierSlots(deps.redis, deps.redisPrefix ?? 'ccard:') : new MemoryCarrierSlots(),
          health: new CarrierHealth(config.carrierHealth, logger),
        }
      : undefined;

  /** Status, expiry and first-use activation, then the card's spendable into the live store (one round trip). */
  async function authorize(cardOrId: string | CardRecord): Promise<AuthorizeResult> {
    const r = await authorizeCard(pool, cardOrId, now());
    if (!r.ok) return refused(r);
    const { card } = r;
    const { available } = await live.load(card.id, { spendable: card.balance + card.creditLimit, version: card.version });
    return {
      ok: true,
      activated: r.activated,
      card: {
        id: card.id,
        serial: card.serial,
        currency: card.currency,
        available,
        balance: card.balance,
        pricing: {
          rateTableId: card.rateTableId,
          taxPpm: card.taxPpm,
          maxConcurrentCalls: card.maxConcurrentCalls,
          routingPlanId: card.routingPlanId,
        },
      },
    };
  }

  return {
    accessNumber: (did, callerId) =>
      guard('accessNumber', async () => {
        const withCli = callerId !== undefined && CALLER_ID_RE.test(callerId);
        const r = await pool.query(
          withCli
            ? { name: statementName('ccard_access_cli'), text: ACCESS_WITH_CLI_SELECT, values: [did, callerId] }
            : { name: statementName('ccard_access'), text: ACCESS_SELECT, values: [did] },
        );
        return r.rows[0] ? toAccessNumber(r.rows[0], withCli) : undefined;
      }),


    // Never for an empty, anonymous or otherwise non-numeric caller ID.
    cardIdByCli: (callerId) => guard('cardIdByCli', () => cardIdByCallerId(pool, callerId)),

    authorize: (cardId) => guard('authorize', () => authorize(cardId)),

    authorizeByPin: (pin, caller) =>
      guard('authorizeByPin', async (): Promise<AuthorizeResult> => {
        // A PIN keyed while its caller is refused (the budget ran out during this call) is not even checked: an
        // attacker's calls already in the PIN prompt learn nothing more.
        const [card, refused] = await Promise.all([
          PIN_RE.test(pin) ? getCardByPin(pool, deps.pinKeys, pin) : undefined,
          caller ? pinGuard.isLockedOut(caller.did, caller.callerId, boundWithoutPin) : false,
        ]);
        if (!card || refused) return { ok: false, reason: 'unknown' };
        // A right PIN (whatever the card's state) makes its caller ID trusted: never refused by a guessing lockout.
        const [r] = await Promise.all([authorize(card), caller ? pinGuard.succeed(caller.callerId) : undefined]);
        return r;
      }),

    balance: (cardId) =>
      guard('balance', async (): Promise<Micros> => {
        const b = await cardBalance(pool, cardId);
        if (b === undefined) throw new Error(`no card ${cardId}`);
        return b;
      }),


    reserve: (cardId, number, ctx, hint) =>
      guard('reserve', (): Promise<ReserveResult> =>
        timeReservation(() =>
          routing ? reserveRouted(routing, cardId, number, ctx, now(), hint) : reserveCall(billing, cardId, number, ctx, now(), hint),
        ).then(refused),
      ),

    extend: (reservation, wantSeconds, talkedSeconds) =>
      guard('extend', (): Promise<ExtendResult> => extendReservation(billing, reservation, wantSeconds, talkedSeconds)),
    settle: async (reservation, bridge) => {
      try {
        return await guard('settle', (): Promise<SettleResult> =>
          routing ? settleRouted(routing, reservation, bridge) : settleReservation(billing, reservation, bridge),
        );
      } catch (err) {
        // The database is down: what the bridge said is kept durably and replayed until it lands, never dropped.
        const facts = err instanceof ServiceUnavailableError && deps.debitJournal ? settleFacts(reservation, bridge) : undefined;
        if (facts) {
          try {
            await deps.debitJournal!.add(facts);
            logger.warn({ callId: reservation.callId, err: (err as Error).message }, 'settle deferred: journaled, retried until it lands');
          } catch (jerr) {
            logger.error({ callId: reservation.callId, err: jerr }, 'settle failed and could not be journaled: the call waits for its CDR');
          }
        }
        throw err;
      }
    },

    isLockedOut: (did, callerId) =>
      guard('isLockedOut', async () => {
        const locked = await pinGuard.isLockedOut(did, callerId, boundWithoutPin);
        if (locked) countRefusal('locked_out');
        return locked;
      }),

    recordPinFailure: (did, callerId) =>
      guard('recordPinFailure', async () => {
        countRefusal('wrong_pin');
        await pinGuard.fail(did, callerId);
      }),

    bindCli: (callerId, cardId) =>
      guard('bindCli', async () => {
        await bindCallerId(pool, callerId, cardId);
      }),

    ingestJsonCdr: (bodyText, source) => guard('ingestJsonCdr', () => ingestJsonCdr({ pool, live, logger }, bodyText, source)),

    recoverOpenCalls: () => guard('recoverOpenCalls', () => recoverOpenCalls(pool, live, now(), logger)),

    closeOverdueCalls: () => guard('closeOverdueCalls', () => closeOverdueCalls(pool, live, now(), logger)),
  };
}
