import { Redis } from 'ioredis';
import type { LiveBalanceStore } from '../../src/live/live-balance.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { createTestRedis } from '../helpers/env.ts';

export interface StoreKind {
  name: string;
  /** A new store; `shared` stores of one kind see the same holds (Redis: same prefix). */
  make(): { store: LiveBalanceStore; redis?: Redis; prefix?: string };
  /** A second store instance seeing the same data as a crashed one would after a restart. */
  restart(previous: LiveBalanceStore): LiveBalanceStore;
}

export const storeKinds: StoreKind[] = [
  {
    name: 'redis',
    make() {
      const { redis, prefix } = createTestRedis();
      return { store: new RedisLiveBalance(redis, { prefix, ownsClient: true }), redis, prefix };
    },
    restart(previous) {
      const p = previous as RedisLiveBalance;
      const { redis } = createTestRedis();
      return new RedisLiveBalance(redis, { prefix: p.prefix, ownsClient: true });
    },
  },
  {
    name: 'memory',
    make() {
      return { store: new MemoryLiveBalance() };
    },
    // The in-process store dies with the process: a restart starts empty.
    restart() {
      return new MemoryLiveBalance();
    },
  },
];
