import type { Cluster, Redis } from 'ioredis';
import type { Micros } from '../money/money.ts';
import type { CardSnapshot, ExtendOutcome, LiveBalanceStore, ReserveOutcome } from './live-balance.ts';
import { LuaScript } from './lua-script.ts';

/**
 * LiveBalanceStore over Redis. Every operation is ONE Lua script, so it is atomic with respect to every other
 * ccard process. Deadlines come from the server's TIME inside the script, never from a client clock.
 *
 * Keys per card share the hash tag {c:<cardId>} so a card's scripts run on one Redis Cluster slot:
 *   <prefix>{c:ID}:b   hash  s = spendable micros, v = balance_version        (idle TTL, refreshed on use)
 *   <prefix>{c:ID}:r   hash  callId -> reserved micros
 *   <prefix>{c:ID}:e   zset  callId scored by its deadline (ms since epoch, server time)
 *
 * Lua numbers are doubles: every amount crossing into a script must be an integer within +-(2^53 - 1) micros
 * (+-9 billion currency units), checked before the call, and results are printed with %.0f (never "1e+15"),
 * so the arithmetic stays exact integer arithmetic.
 */

const COMMON = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(x) return string.format('%.0f', x) end
-- Expired holds are dropped together with the cached spendable: their debit may have committed in PostgreSQL
-- without the settle reaching Redis, so the next reserve must reload the balance.
local function purge(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  if #gone > 0 then
    redis.call('ZREM', KEYS[3], unpack(gone))
    redis.call('HDEL', KEYS[2], unpack(gone))
    redis.call('DEL', KEYS[1])
  end
end
local function held(skip)
  local all = redis.call('HGETALL', KEYS[2])
  local sum, n = 0, 0
  for i = 1, #all, 2 do
    if all[i] ~= skip then
      sum = sum + tonumber(all[i + 1])
      n = n + 1
    end
  end
  return sum, n
end
local function write_snap(s, v, idle)
  local cur = redis.call('HGET', KEYS[1], 'v')
  if (not cur) or tonumber(v) > tonumber(cur) then
    redis.call('HSET', KEYS[1], 's', s, 'v', v)
  end
  redis.call('PEXPIRE', KEYS[1], idle)
end
`;

// ARGV: idleMs
const PEEK = `${COMMON}
local now = now_ms()
purge(now)
local s = redis.call('HGET', KEYS[1], 's')
if not s then return {'needs_load'} end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local sum, n = held(nil)
return {'ok', fmt(tonumber(s) - sum), tostring(n)}
`;

// ARGV: spendable, version, idleMs
const LOAD = `${COMMON}
purge(now_ms())
write_snap(ARGV[1], ARGV[2], ARGV[3])
local sum, n = held(nil)
return {fmt(tonumber(redis.call('HGET', KEYS[1], 's')) - sum), tostring(n)}
`;

// ARGV: callId, amount, ttlMs, maxConcurrent, idleMs
const RESERVE = `${COMMON}
local now = now_ms()
purge(now)
local call, amount = ARGV[1], tonumber(ARGV[2])
local sum, n = held(call)
if n >= tonumber(ARGV[4]) then return {'too_many_calls', tostring(n)} end
local s = redis.call('HGET', KEYS[1], 's')
if not s then return {'needs_load'} end
local avail = tonumber(s) - sum
if avail < amount then return {'insufficient', fmt(avail)} end
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], call, ARGV[2])
redis.call('ZADD', KEYS[3], deadline, call)
-- The holds outlive the cached spendable (idle TTL) so an expired hold is always purged, dropping the cache,
-- before it can silently disappear.
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
local keep = tonumber(last[2]) + tonumber(ARGV[5]) + 60000
redis.call('PEXPIREAT', KEYS[2], fmt(keep))
redis.call('PEXPIREAT', KEYS[3], fmt(keep))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'ok', fmt(avail - amount)}
`;

// ARGV: callId, amount, ttlMs, idleMs. Grows an existing hold only (never re-creates one that is gone).
const EXTEND = `${COMMON}
local now = now_ms()
purge(now)
local call = ARGV[1]
local cur = redis.call('HGET', KEYS[2], call)
if not cur then return {'gone'} end
local s = redis.call('HGET', KEYS[1], 's')
if not s then return {'needs_load'} end
local sum = held(call)
local room = tonumber(s) - sum
local want = math.max(tonumber(ARGV[2]), tonumber(cur))
if room < want then return {'insufficient', fmt(room)} end
local deadline = math.max(now + tonumber(ARGV[3]), tonumber(redis.call('ZSCORE', KEYS[3], call)))
redis.call('HSET', KEYS[2], call, fmt(want))
redis.call('ZADD', KEYS[3], deadline, call)
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
local keep = tonumber(last[2]) + tonumber(ARGV[4]) + 60000
redis.call('PEXPIREAT', KEYS[2], fmt(keep))
redis.call('PEXPIREAT', KEYS[3], fmt(keep))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'ok', fmt(room - want)}
`;

// ARGV: callId, idleMs [, spendable, version]
const SETTLE = `${COMMON}
purge(now_ms())
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[3] then write_snap(ARGV[3], ARGV[4], ARGV[2]) end
return 'OK'
`;

// Read-only: the unexpired holds.
const LIST = `${COMMON}
local now = now_ms()
local out = {}
local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  local amount = redis.call('HGET', KEYS[2], live[i])
  if amount then
    out[#out + 1] = live[i]
    out[#out + 1] = amount
    out[#out + 1] = live[i + 1]
  end
end
return out
`;

const SCRIPTS = {
  peek: new LuaScript(PEEK),
  load: new LuaScript(LOAD),
  reserve: new LuaScript(RESERVE),
  extend: new LuaScript(EXTEND),
  settle: new LuaScript(SETTLE),
  list: new LuaScript(LIST),
};

const LUA_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Amounts pass through Lua doubles: refuse anything that would not be exact there. */
export function luaSafe(what: string, v: bigint): string {
  if (v > LUA_SAFE || v < -LUA_SAFE) throw new RangeError(`${what} out of the exact range of the live store: ${v}`);
  return v.toString();
}

/**
 * A spendable beyond the exact range is held as the range's edge: never more than the card has, and a card that
 * somehow holds more (a balance written before ccard bounded amounts) still places calls instead of failing each one.
 */
const clampSpendable = (v: bigint): bigint => (v > LUA_SAFE ? LUA_SAFE : v < -LUA_SAFE ? -LUA_SAFE : v);

const CARD_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export interface RedisLiveBalanceOptions {
  /** Prepended to every key (e.g. "ccard:"). */
  prefix?: string;
  /** A cached spendable not used for this long is dropped, so it is reloaded from PostgreSQL (default 1 h). */
  idleTtlMs?: number;
  /** close() also disconnects the client (default false: the caller owns the connection). */
  ownsClient?: boolean;
}

export class RedisLiveBalance implements LiveBalanceStore {
  readonly prefix: string;
  readonly idleTtlMs: number;
  private readonly ownsClient: boolean;

  constructor(
    private readonly redis: Redis | Cluster,
    opts: RedisLiveBalanceOptions = {},
  ) {
    this.prefix = opts.prefix ?? 'ccard:';
    this.idleTtlMs = opts.idleTtlMs ?? 3_600_000;
    this.ownsClient = opts.ownsClient ?? false;
    if (!Number.isInteger(this.idleTtlMs) || this.idleTtlMs < 1) throw new RangeError('idleTtlMs must be >= 1');
  }

  keys(cardId: string): [string, string, string] {
    if (!CARD_ID_RE.test(cardId)) throw new RangeError(`invalid card id for the live store: ${JSON.stringify(cardId)}`);
    const base = `${this.prefix}{c:${cardId}}`;
    return [`${base}:b`, `${base}:r`, `${base}:e`];
  }

  async peek(cardId: string): Promise<{ available: Micros; active: number } | 'needs_load'> {
    const r = (await SCRIPTS.peek.run(this.redis, this.keys(cardId), [String(this.idleTtlMs)])) as string[];
    if (r[0] === 'needs_load') return 'needs_load';
    return { available: BigInt(r[1]!), active: Number(r[2]) };
  }

  async load(cardId: string, snap: CardSnapshot): Promise<{ available: Micros; active: number }> {
    const r = (await SCRIPTS.load.run(this.redis, this.keys(cardId), [
      luaSafe('spendable', clampSpendable(snap.spendable)),
      luaSafe('version', snap.version),
      String(this.idleTtlMs),
    ])) as string[];
    return { available: BigInt(r[0]!), active: Number(r[1]) };
  }

  async reserve(cardId: string, callId: string, amount: Micros, ttlMs: number, maxConcurrent: number): Promise<ReserveOutcome> {
    if (amount < 0n) throw new RangeError('amount must not be negative');
    if (!Number.isFinite(ttlMs) || ttlMs < 1) throw new RangeError('ttlMs must be >= 1');
    const r = (await SCRIPTS.reserve.run(this.redis, this.keys(cardId), [
      callId,
      luaSafe('amount', amount),
      String(Math.ceil(ttlMs)),
      String(Math.min(maxConcurrent, Number.MAX_SAFE_INTEGER)),
      String(this.idleTtlMs),
    ])) as string[];
    switch (r[0]) {
      case 'ok':
        return { ok: true, available: BigInt(r[1]!) };
      case 'needs_load':
        return { ok: false, reason: 'needs_load' };
      case 'insufficient':
        return { ok: false, reason: 'insufficient', available: BigInt(r[1]!) };
      case 'too_many_calls':
        return { ok: false, reason: 'too_many_calls', active: Number(r[1]) };
      default:
        throw new Error(`unexpected reply from the reserve script: ${JSON.stringify(r)}`);
    }
  }

  async extend(cardId: string, callId: string, amount: Micros, ttlMs: number): Promise<ExtendOutcome> {
    if (amount < 0n) throw new RangeError('amount must not be negative');
    if (!Number.isFinite(ttlMs) || ttlMs < 1) throw new RangeError('ttlMs must be >= 1');
    const r = (await SCRIPTS.extend.run(this.redis, this.keys(cardId), [
      callId,
      luaSafe('amount', amount),
      String(Math.ceil(ttlMs)),
      String(this.idleTtlMs),
    ])) as string[];
    switch (r[0]) {
      case 'ok':
        return { ok: true, available: BigInt(r[1]!) };
      case 'gone':
        return { ok: false, reason: 'gone' };
      case 'needs_load':
        return { ok: false, reason: 'needs_load' };
      case 'insufficient':
        return { ok: false, reason: 'insufficient', available: BigInt(r[1]!) };
      default:
        throw new Error(`unexpected reply from the extend script: ${JSON.stringify(r)}`);
    }
  }

  async settle(cardId: string, callId: string, snap?: CardSnapshot): Promise<void> {
    const args = [callId, String(this.idleTtlMs)];
    if (snap) args.push(luaSafe('spendable', clampSpendable(snap.spendable)), luaSafe('version', snap.version));
    await SCRIPTS.settle.run(this.redis, this.keys(cardId), args);
  }

  async reservations(cardId: string): Promise<Array<{ callId: string; amount: Micros; expiresAt: number }>> {
    const r = (await SCRIPTS.list.run(this.redis, this.keys(cardId), [])) as string[];
    const out: Array<{ callId: string; amount: Micros; expiresAt: number }> = [];
    for (let i = 0; i + 2 < r.length; i += 3) out.push({ callId: r[i]!, amount: BigInt(r[i + 1]!), expiresAt: Number(r[i + 2]) });
    return out;
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.redis.quit().catch(() => undefined);
  }
}
