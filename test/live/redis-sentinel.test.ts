/**
 * The live store and the PIN lockouts through real Redis Sentinels (a master, a replica, 3 sentinels, started by
 * the test: test/live/redis-ha.ts), and a failover: the replicated holds survive and the card is not overspent on
 * the new master.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/env.ts';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { liveBalanceContract } from './contract.ts';
import { client, lockoutServices, prefix, sentinelSet, sentinelTarget } from './redis-ha.ts';

describe('Redis Sentinel', () => {
  liveBalanceContract('RedisLiveBalance through Redis Sentinel', {
    async create({ idleTtlMs }) {
      return new RedisLiveBalance(await client(await sentinelTarget()), { prefix: prefix(), idleTtlMs });
    },
  });

  it('PIN lockouts work through the sentinel-managed master', async () => {
    const services = lockoutServices(await client(await sentinelTarget()));
    for (let i = 0; i < 3; i++) await services.recordPinFailure('18005550100', '15552220000');
    expect(await services.isLockedOut('18005550100', '15552220000')).toBe(true);
  });

  it('the config names the sentinel deployment', () => {
    const cfg = loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'm1' });
    expect(cfg.redis).toEqual({
      mode: 'sentinel',
      name: 'm1',
      sentinels: [
        { host: '127.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
    });
  });

  it('a failover keeps the replicated holds, and the card is not overspent on the new master', async () => {
    const target = await sentinelTarget();
    const redis = await client(target);
    const store = new RedisLiveBalance(redis, { prefix: prefix() });
    const card = `f${randomBytes(3).toString('hex')}`;
    await store.load(card, { spendable: 1_000n, version: 1n });
    expect(await store.reserve(card, 'before', 600n, 120_000, 5)).toEqual({ ok: true, available: 400n });
    // The hold reached the replica before the master dies (Redis replication is asynchronous).
    expect(Number(await (redis as Redis).call('WAIT', '1', '2000'))).toBe(1);

    const old = sentinelSet!.master;
    await old.kill('SIGKILL');
    // New callers fail closed while there is no master, then the client follows the sentinels to the replica.
    // A failover normally takes ~2 s here; a loaded CI machine can make the sentinels' first attempt fail (they retry
    // after twice the failover timeout), so the wait is generous and still bounded.
    const deadline = Date.now() + 45_000;
    let seen: Awaited<ReturnType<typeof store.peek>> | undefined;
    while (Date.now() < deadline) {
      seen = await store.peek(card).catch(() => undefined);
      if (seen) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toEqual({ available: 400n, active: 1 });
    // The client now talks to the promoted replica, which is a master.
    const info = await (redis as Redis).info('server');
    expect(Number(/tcp_port:(\d+)/.exec(info)![1])).toBe(sentinelSet!.replica.port);
    expect(((await (redis as Redis).call('ROLE')) as string[])[0]).toBe('master');
    expect(await store.reserve(card, 'after', 500n, 120_000, 5)).toEqual({ ok: false, reason: 'insufficient', available: 400n });
    expect(await store.reserve(card, 'after', 400n, 120_000, 5)).toEqual({ ok: true, available: 0n });
  }, 60_000);
});
