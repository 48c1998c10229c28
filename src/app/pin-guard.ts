import { countLockout } from '../metrics/index.ts';
import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from '../live/lua-script.ts';

/**
 * The caller-side defence against PIN guessing (design and bound: docs/design.md, "PIN guessing").
 *
 * - Each caller ID (a real number) has its own budget: `maxFailures` wrong PINs within `windowSec` lock that number
 *   out for `lockoutSec`.
 * - Each access number has one budget for *untrusted* callers (unknown numbers and withheld or non-numeric caller
 *   IDs together): `guardFailures` wrong PINs within `windowSec` make the access number refuse untrusted callers
 *   for `lockoutSec`. Spoofing many caller IDs therefore buys no more guesses than one.
 * - Trusted callers are never refused by either: a caller ID that entered a right PIN within `trustSec`, or one
 *   bound to a card on an access number that does not ask bound callers for a PIN. Their wrong PINs still count on
 *   their own number; reaching the limit ends the trust earned by a past success (a spoofer of a known-good number
 *   gets `maxFailures` guesses, once).
 * So an attacker can make unknown and withheld callers of one access number wait; never the cardholders who call
 * from their own number.
 */
export interface PinGuardConfig {
  maxFailures: number;
  windowSec: number;
  lockoutSec: number;
  /** Wrong PINs from untrusted callers on one access number within windowSec before it refuses them. */
  guardFailures: number;
  /** How long a right PIN keeps its caller ID trusted. */
  trustSec: number;
}

/** What the guard needs to know about a caller it would refuse (read only then: under attack, not per call). */
export type TrustLookup = (did: string, callerId: string) => Promise<boolean>;

export interface PinGuardEvent {
  kind: 'caller_locked' | 'access_number_guarded' | 'trust_revoked';
  did: string;
  callerId?: string;
}

export interface PinGuard {
  /** True when this caller must be refused on this access number. */
  isLockedOut(did: string, callerId: string, trusted: TrustLookup): Promise<boolean>;
  /** Counts one wrong PIN. */
  fail(did: string, callerId: string): Promise<void>;
  /** A right PIN: the caller ID is trusted for trustSec and its failures are forgotten. */
  succeed(callerId: string): Promise<void>;
}

// ---- metric hook: plain counters a metrics exporter can read -------------------------------------------------------

const counters = { callerLocked: 0, accessNumberGuarded: 0, trustRevoked: 0, refused: 0 };

/** Counts of PIN-guard events since the process started (for a metrics exporter). */
export function pinGuardCounters(): Readonly<typeof counters> {
  return { ...counters };
}

// ---- subjects --------------------------------------------------------------------------------------------------

/** A caller ID that names a real number; anything else (empty, "anonymous", all zeros) is withheld. */
export function callerNumber(callerId: string): string | undefined {
  return /^\+?[0-9]{3,20}$/.test(callerId) && !/^\+?0+$/.test(callerId) ? callerId : undefined;
}
const didKey = (did: string) => did.replace(/[^0-9A-Za-z+_.-]/g, '_').slice(0, 64);

// ---- Redis ------------------------------------------------------------------------------------------------------

// Each bucket is counted by one script over keys of one hash slot (so it also runs on a Redis cluster).
// KEYS: fails, lock, trust (the caller's; absent for an access number). ARGV: window, lockout, max.
// Returns flags: 1 = locked now, 4 = the trust of a past success revoked, 8 = the caller was trusted.
const FAIL_SCRIPT = new LuaScript(`
local trusted = KEYS[3] ~= nil and redis.call('EXISTS', KEYS[3]) == 1
local flags = 0
if trusted then flags = 8 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  flags = flags + 1
  if trusted then redis.call('DEL', KEYS[3]); flags = flags + 4 end
end
return flags
`);

// Whether each key exists, in one command: KEYS (cli lock, did lock, cli trust) or (did lock). Keys of two hash slots:
// on a standalone Redis only (a cluster asks each slot with EXISTS).
const CHECK_SCRIPT = new LuaScript(`
local r = {}
for i = 1, #KEYS do r[i] = redis.call('EXISTS', KEYS[i]) end
return r
`);

// KEYS: cli fails, cli lock, cli trust. ARGV: trustSec.
const SUCCEED_SCRIPT = new LuaScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[1])
return 1
`);

interface Store {
  check(did: string, cli: string | undefined): Promise<{ cliLocked: boolean; guarded: boolean; recent: boolean }>;
  fail(did: string, cli: string | undefined): Promise<number>;
  succeed(cli: string): Promise<void>;
}

class RedisStore implements Store {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly cfg: PinGuardConfig,
  ) {}
  // One hash slot per subject ({...}): a caller's keys together, an access number's keys together.
  private cli(cli: string | undefined): [string, string, string] {
    const base = `${this.prefix}{pin:cli:${cli ?? 'withheld'}}`;
    return [`${base}:fails`, `${base}:locked`, `${base}:trusted`];
  }
  private did(did: string): [string, string] {
    const base = `${this.prefix}{pin:did:${didKey(did)}}`;
    return [`${base}:fails`, `${base}:locked`];
  }
  // Every call asks twice (before its PIN prompt and with the PIN): one command each on a standalone Redis.
  async check(did: string, cli: string | undefined) {
    const [, lock, trust] = this.cli(cli);
    const [, dlock] = this.did(did);
    if (!this.redis.isCluster) {
      const r = (await CHECK_SCRIPT.run(this.redis, cli ? [lock, dlock, trust] : [dlock], [])) as number[];
      return cli ? { cliLocked: r[0] === 1, guarded: r[1] === 1, recent: r[2] === 1 } : { cliLocked: false, guarded: r[0] === 1, recent: false };
    }
    const [a, b, c] = await Promise.all([
      cli ? this.redis.exists(lock) : Promise.resolve(0),
      this.redis.exists(dlock),
      cli ? this.redis.exists(trust) : Promise.resolve(0),
    ]);
    return { cliLocked: a === 1, guarded: b === 1, recent: c === 1 };
  }
  async fail(did: string, cli: string | undefined): Promise<number> {
    const { windowSec, lockoutSec } = this.cfg;
    let flags = 0;
    if (cli) {
      const [f, l, t] = this.cli(cli);
      flags = Number(await FAIL_SCRIPT.run(this.redis, [f, l, t], [String(windowSec), String(lockoutSec), String(this.cfg.maxFailures)]));
    }
    // A trusted caller's failures stay on its own number; everyone else's also count on the access number.
    if (!(flags & 8)) {
      const [df, dl] = this.did(did);
      flags |= Number(await FAIL_SCRIPT.run(this.redis, [df, dl], [String(windowSec), String(lockoutSec), String(this.cfg.guardFailures)])) & 1 ? 2 : 0;
    }
    return flags;
  }
  async succeed(cli: string): Promise<void> {
    const [f, l, t] = this.cli(cli);
    await SUCCEED_SCRIPT.run(this.redis, [f, l, t], [String(this.cfg.trustSec)]);
  }
}

class MemoryStore implements Store {
  private readonly counts = new Map<string, { n: number; until: number }>();
  private readonly until = new Map<string, number>();
  constructor(
    private readonly cfg: PinGuardConfig,
    private readonly now: () => number,
  ) {}
  private live(key: string): boolean {
    const u = this.until.get(key);
    if (u === undefined) return false;
    if (u > this.now()) return true;
    this.until.delete(key);
    return false;
  }
  private count(key: string, max: number, lockKey: string): boolean {
    const now = this.now();
    if (this.counts.size > 10_000) for (const [k, c] of this.counts) if (c.until <= now) this.counts.delete(k);
    let c = this.counts.get(key);
    if (!c || c.until <= now) c = { n: 0, until: now + this.cfg.windowSec * 1000 };
    c.n++;
    if (c.n >= max) {
      this.counts.delete(key);
      this.until.set(lockKey, now + this.cfg.lockoutSec * 1000);
      return true;
    }
    this.counts.set(key, c);
    return false;
  }
  async check(did: string, cli: string | undefined) {
    return {
      cliLocked: cli ? this.live(`cli-lock:${cli}`) : false,
      guarded: this.live(`did-lock:${did}`),
      recent: cli ? this.live(`trust:${cli}`) : false,
    };
  }
  async fail(did: string, cli: string | undefined): Promise<number> {
    let flags = 0;
    const trusted = cli ? this.live(`trust:${cli}`) : false;
    if (cli && this.count(`cli:${cli}`, this.cfg.maxFailures, `cli-lock:${cli}`)) {
      flags |= 1;
      if (trusted) {
        this.until.delete(`trust:${cli}`);
        flags |= 4;
      }
    }
    if (!trusted && this.count(`did:${did}`, this.cfg.guardFailures, `did-lock:${did}`)) flags |= 2;
    return flags;
  }
  async succeed(cli: string): Promise<void> {
    this.counts.delete(`cli:${cli}`);
    this.until.delete(`cli-lock:${cli}`);
    if (this.until.size > 100_000) for (const [k, u] of this.until) if (u <= this.now()) this.until.delete(k);
    this.until.set(`trust:${cli}`, this.now() + this.cfg.trustSec * 1000);
  }
}

export interface PinGuardDeps {
  redis?: Redis | Cluster;
  redisPrefix?: string;
  now?: () => number;
  logger: { warn(obj: object, msg: string): void };
}

export function createPinGuard(cfg: PinGuardConfig, deps: PinGuardDeps): PinGuard {
  const store: Store = deps.redis
    ? new RedisStore(deps.redis, deps.redisPrefix ?? 'ccard:', cfg)
    : new MemoryStore(cfg, deps.now ?? Date.now);
  return {
    async isLockedOut(did, callerId, trusted) {
      const cli = callerNumber(callerId);
      const s = await store.check(did, cli);
      if (!s.cliLocked && !s.guarded) return false;
      if (s.recent) return false;
      // Only now, under a lock, is the caller's binding read.
      if (cli && (await trusted(did, cli))) return false;
      counters.refused++;
      return true;
    },
    async fail(did, callerId) {
      const cli = callerNumber(callerId);
      const flags = await store.fail(did, cli);
      if (flags & 1) {
        counters.callerLocked++;
        countLockout('cli');
        deps.logger.warn({ did, callerId: cli, lockoutSec: cfg.lockoutSec }, 'PIN guessing: caller ID locked out');
      }
      if (flags & 4) counters.trustRevoked++;
      if (flags & 2) {
        counters.accessNumberGuarded++;
        countLockout('did');
        deps.logger.warn(
          { did, lockoutSec: cfg.lockoutSec, failures: cfg.guardFailures },
          'PIN guessing on an access number: unknown and withheld callers refused; cardholders calling from their own number are not',
        );
      }
    },
    async succeed(callerId) {
      const cli = callerNumber(callerId);
      if (cli) await store.succeed(cli);
    },
  };
}
