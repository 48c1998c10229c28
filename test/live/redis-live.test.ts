import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { createTestRedis } from '../helpers/env.ts';
import { liveBalanceContract } from './contract.ts';

const clients: Redis[] = [];

liveBalanceContract('RedisLiveBalance', {
  async create({ idleTtlMs }) {
    const { redis, prefix } = createTestRedis();
    clients.push(redis);
    return new RedisLiveBalance(redis, { prefix, idleTtlMs, ownsClient: true });
  },
});

describe('RedisLiveBalance specifics', () => {
  it('keeps every key of a card under the prefix and one hash tag (cluster slot)', async () => {
    const { redis, prefix } = createTestRedis();
    const store = new RedisLiveBalance(redis, { prefix });
    try {
      await store.load('77', { spendable: 100n, version: 1n });
      await store.reserve('77', 'call-1', 10n, 60_000, 1);
      const keys = await redis.keys(`${prefix}*`);
      expect(keys.sort()).toEqual([`${prefix}{c:77}:b`, `${prefix}{c:77}:e`, `${prefix}{c:77}:r`]);
      // The cached spendable has an idle TTL; the holds outlive it.
      const ttlB = await redis.pttl(`${prefix}{c:77}:b`);
      const ttlR = await redis.pttl(`${prefix}{c:77}:r`);
      expect(ttlB).toBeGreaterThan(0);
      expect(ttlR).toBeGreaterThan(ttlB);
    } finally {
      redis.disconnect();
    }
  });

  it('reloads its scripts after SCRIPT FLUSH and refuses amounts Lua cannot hold exactly', async () => {
    const { redis, prefix } = createTestRedis();
    const store = new RedisLiveBalance(redis, { prefix });
    try {
      await store.load('5', { spendable: 9_007_199_254_740_991n, version: 1n });
      expect(await store.peek('5')).toEqual({ available: 9_007_199_254_740_991n, active: 0 });
      await redis.script('FLUSH');
      expect(await store.reserve('5', 'a', 1n, 1000, 1)).toEqual({ ok: true, available: 9_007_199_254_740_990n });
      // Beyond the exact range a spendable is held at the range's edge (conservative), never refused: a card
      // holding more than ccard now allows must still place calls.
      expect(await store.load('5', { spendable: 9_223_372_036_854_000_000n, version: 2n })).toEqual({ available: 9_007_199_254_740_990n, active: 1 });
      await expect(store.peek('bad id')).rejects.toThrow(RangeError);
    } finally {
      redis.disconnect();
    }
  });
});
