import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from './lua-script.ts';

/**
 * Per-carrier simultaneous-call limit. A slot is held from the reservation to the settle of one attempt; it has a
 * deadline (the reservation's), so a slot whose settle never came (a crash) frees itself. Redis when configured
 * (shared by every ccard process, one Lua script: atomic), else this process's memory.
 */
export interface CarrierSlots {
  /** Takes a slot when fewer than `max` are held; false when the carrier is full. */
  acquire(carrierId: string, token: string, max: number, ttlMs: number): Promise<boolean>;
  /** Moves a held slot's deadline (once the call's own hold deadline is known). */
  renew(carrierId: string, token: string, ttlMs: number): Promise<void>;
  release(carrierId: string, token: string): Promise<void>;
  /** Slots held now. */
  active(carrierId: string): Promise<number>;
}

export class MemoryCarrierSlots implements CarrierSlots {
  private readonly held = new Map<string, Map<string, number>>();
  constructor(private readonly now: () => number = Date.now) {}

  private live(carrierId: string): Map<string, number> {
    let m = this.held.get(carrierId);
    if (!m) this.held.set(carrierId, (m = new Map()));
    const t = this.now();
    for (const [k, until] of m) if (until <= t) m.delete(k);
    return m;
  }

  async acquire(carrierId: string, token: string, max: number, ttlMs: number): Promise<boolean> {
    const m = this.live(carrierId);
    if (m.size >= max) return false;
    m.set(token, this.now() + ttlMs);
    return true;
  }

  async renew(carrierId: string, token: string, ttlMs: number): Promise<void> {
    const m = this.held.get(carrierId);
    if (m?.has(token)) m.set(token, this.now() + ttlMs);
  }

  async release(carrierId: string, token: string): Promise<void> {
    this.held.get(carrierId)?.delete(token);
  }

  async active(carrierId: string): Promise<number> {
    return this.live(carrierId).size;
  }
}

// KEYS[1] zset token -> deadline (server ms). ARGV: token, max, ttlMs.
const ACQUIRE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 60000)
return 1
`);
const RENEW = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
`);
const ACTIVE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`);

export class RedisCarrierSlots implements CarrierSlots {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix = 'ccard:',
  ) {}
  private key(carrierId: string): string {
    return `${this.prefix}{carrier:${carrierId}}:slots`;
  }
  async acquire(carrierId: string, token: string, max: number, ttlMs: number): Promise<boolean> {
    return (await ACQUIRE.run(this.redis, [this.key(carrierId)], [token, String(max), String(Math.ceil(ttlMs))])) === 1;
  }
  async renew(carrierId: string, token: string, ttlMs: number): Promise<void> {
    await RENEW.run(this.redis, [this.key(carrierId)], [token, String(Math.ceil(ttlMs))]);
  }
  async release(carrierId: string, token: string): Promise<void> {
    await this.redis.zrem(this.key(carrierId), token);
  }
  async active(carrierId: string): Promise<number> {
    return Number(await ACTIVE.run(this.redis, [this.key(carrierId)], []));
  }
}
