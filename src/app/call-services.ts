import type { Pool } from 'pg';
import type { Cluster, Redis } from 'ioredis';
import {
  ServiceUnavailableError,
  type AuthorizeResult,
  type CallServices,
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
import {
  expireOverdueCalls,
  recoverOpenCalls,
  reserveCall,
  settleReservation,
  type BillingConfig,
  type Log,
  type RateLookup,
  type RecoverySummary,
} from '../billing/settle.ts';
import { ingestJsonCdr, type IngestResult } from '../cdr/json-cdr.ts';
import { reserveRouted, settleRouted, type RoutingDeps } from '../billing/route-call.ts';
import { CarrierHealth, type CarrierHealthConfig } from '../billing/carrier-health.ts';
import { MemoryCarrierSlots, RedisCarrierSlots } from '../live/carrier-slots.ts';
import type { RateIndex } from '../store/rates.ts';

export interface LockoutConfig {
  /** Failed PIN tries from one caller ID within windowSec before it is locked out. */
  maxFailures: number;
  windowSec: number;
  lockoutSec: number;
  /** Failed tries on one access number (all callers together) before the DID is locked (default maxFailures x 10). */
  didMaxFailures?: number;
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
}

/** CallServices plus the operations the server wires to its HTTP routes and startup. */
export interface CcardCallServices extends CallServices {
  ingestJsonCdr(bodyText: string): Promise<IngestResult>;
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
      throw new ServiceUnavailableError(`${what}: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

// ---- PIN brute-force lockout ----------------------------------------------------------------------------------

interface Lockout {
  isLocked(subject: string): Promise<boolean>;
  /** Counts one failure; locks the subject once `max` failures fall within the window. */
  fail(subject: string, max: number): Promise<void>;
}

const FAIL_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[1])
end
return n
`;

class RedisLockout implements Lockout {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly cfg: LockoutConfig,
  ) {}
  private keys(subject: string): [string, string] {
    const base = `${this.prefix}{pin:${subject}}`;
    return [`${base}:fails`, `${base}:locked`];
  }
  async isLocked(subject: string): Promise<boolean> {
    return (await this.redis.exists(this.keys(subject)[1])) === 1;
  }
  async fail(subject: string, max: number): Promise<void> {
    const [count, lock] = this.keys(subject);
    await this.redis.eval(FAIL_SCRIPT, 2, count, lock, String(max), String(this.cfg.windowSec), String(this.cfg.lockoutSec));
  }
}

class MemoryLockout implements Lockout {
  private readonly fails = new Map<string, { n: number; until: number }>();
  private readonly locked = new Map<string, number>();
  constructor(
    private readonly cfg: LockoutConfig,
    private readonly now: () => number,
  ) {}
  async isLocked(subject: string): Promise<boolean> {
    const until = this.locked.get(subject);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.locked.delete(subject);
    return false;
  }
  async fail(subject: string, max: number): Promise<void> {
    const now = this.now();
    // Forget stale windows so the maps do not grow with every caller ever seen.
    if (this.fails.size > 10_000) for (const [k, f] of this.fails) if (f.until <= now) this.fails.delete(k);
    let f = this.fails.get(subject);
    if (!f || f.until <= now) f = { n: 0, until: now + this.cfg.windowSec * 1000 };
    f.n++;
    if (f.n >= max) {
      this.locked.set(subject, now + this.cfg.lockoutSec * 1000);
      this.fails.delete(subject);
    } else this.fails.set(subject, f);
  }
}

/** A caller ID that is not a number (empty, "anonymous", "unknown"...) shares one bucket: hiding does not help. */
const cliSubject = (callerId: string) => `cli:${CALLER_ID_RE.test(callerId) ? callerId : 'anonymous'}`;
const didSubject = (did: string) => `did:${did.replace(/[^0-9A-Za-z+_.-]/g, '_').slice(0, 64)}`;

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
  const lockout: Lockout = deps.redis
    ? new RedisLockout(deps.redis, deps.redisPrefix ?? 'ccard:', config.lockout)
    : new MemoryLockout(config.lockout, () => now().getTime());
  const didMax = config.lockout.didMaxFailures ?? config.lockout.maxFailures * 10;
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
    if (!r.ok) return r;
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

    authorizeByPin: (pin) =>
      guard('authorizeByPin', async (): Promise<AuthorizeResult> => {
        const card = PIN_RE.test(pin) ? await getCardByPin(pool, deps.pinKeys, pin) : undefined;
        return card ? authorize(card) : { ok: false, reason: 'unknown' };
      }),

    balance: (cardId) =>
      guard('balance', async (): Promise<Micros> => {
        const b = await cardBalance(pool, cardId);
        if (b === undefined) throw new Error(`no card ${cardId}`);
        return b;
      }),


    reserve: (cardId, number, ctx, hint) =>
      guard('reserve', (): Promise<ReserveResult> =>
        routing ? reserveRouted(routing, cardId, number, ctx, now(), hint) : reserveCall(billing, cardId, number, ctx, now(), hint),
      ),

    settle: (reservation, bridge) =>
      guard('settle', (): Promise<SettleResult> =>
        routing ? settleRouted(routing, reservation, bridge) : settleReservation(billing, reservation, bridge),
      ),

    isLockedOut: (did, callerId) =>
      guard('isLockedOut', async () => {
        const [cli, dn] = await Promise.all([lockout.isLocked(cliSubject(callerId)), lockout.isLocked(didSubject(did))]);
        return cli || dn;
      }),

    recordPinFailure: (did, callerId) =>
      guard('recordPinFailure', async () => {
        await Promise.all([lockout.fail(cliSubject(callerId), config.lockout.maxFailures), lockout.fail(didSubject(did), didMax)]);
      }),

    bindCli: (callerId, cardId) =>
      guard('bindCli', async () => {
        await bindCallerId(pool, callerId, cardId);
      }),

    ingestJsonCdr: (bodyText) => guard('ingestJsonCdr', () => ingestJsonCdr({ pool, live, logger }, bodyText)),

    recoverOpenCalls: () => guard('recoverOpenCalls', () => recoverOpenCalls(pool, live, now(), logger)),

    closeOverdueCalls: () => guard('closeOverdueCalls', () => expireOverdueCalls(pool, live, now())),
  };
}
