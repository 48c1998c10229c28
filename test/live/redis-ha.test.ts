import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import type { Pool } from 'pg';
import { loadConfig, type RedisTarget } from '../../src/config/env.ts';
import { createRedisClient, redisReady } from '../../src/live/redis-client.ts';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { createCallServices } from '../../src/app/call-services.ts';
import { carrier } from '../../src/sim/index.ts';
import { RedisFarm, type RedisNode } from '../helpers/redis-servers.ts';
import { liveBalanceContract } from './contract.ts';
import { startHarness } from '../e2e/harness.ts';

/**
 * The live store and the PIN lockouts on a real Redis Cluster (3 masters) and a real Sentinel deployment (a master,
 * a replica, 3 sentinels), both started here on loopback ports and killed at the end. Every Lua script and every
 * lockout command must run on one slot (a CROSSSLOT error would fail the contract), and a Sentinel failover must
 * keep the holds that were replicated and never let a card be overspent after it.
 */
const farm = new RedisFarm();
let clusterNodes: RedisNode[] | undefined;
let sentinelSet: Awaited<ReturnType<RedisFarm['sentinel']>> | undefined;
const SENTINEL_NAME = 'ccardmaster';

const clients: Array<Redis | Cluster> = [];
const prefix = () => `ha:${randomBytes(4).toString('hex')}:`;

async function clusterTarget(): Promise<RedisTarget> {
  clusterNodes ??= await farm.cluster(3);
  return { mode: 'cluster', nodes: clusterNodes.map((n) => ({ host: n.host, port: n.port })) };
}
async function sentinelTarget(): Promise<RedisTarget> {
  sentinelSet ??= await farm.sentinel(SENTINEL_NAME, 3);
  return { mode: 'sentinel', name: SENTINEL_NAME, sentinels: sentinelSet.sentinels.map((n) => ({ host: n.host, port: n.port })) };
}
async function client(target: RedisTarget): Promise<Redis | Cluster> {
  const c = createRedisClient(target);
  c.on('error', () => {});
  clients.push(c);
  await redisReady(c);
  return c;
}

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await farm.stop();
});

const lockoutServices = (redis: Redis | Cluster) =>
  createCallServices({
    // The lockout never touches PostgreSQL or the live store.
    pool: {} as Pool,
    live: {} as never,
    rates: { ruleFor: () => undefined },
    pinKeys: {} as never,
    redis,
    redisPrefix: prefix(),
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    config: {
      minCallSeconds: 10,
      maxCallSeconds: 3600,
      originateTimeoutSec: 60,
      holdMarginSec: 60,
      lockout: { maxFailures: 3, windowSec: 60, lockoutSec: 60 },
    },
  });

describe('Redis Cluster', () => {
  liveBalanceContract('RedisLiveBalance on a 3-master Redis Cluster', {
    async create({ idleTtlMs }) {
      return new RedisLiveBalance(await client(await clusterTarget()), { prefix: prefix(), idleTtlMs });
    },
  });

  it('two processes reserving on cards spread over every master admit exactly what each card holds', async () => {
    const target = await clusterTarget();
    const p = prefix();
    const [a, b] = [new RedisLiveBalance(await client(target), { prefix: p }), new RedisLiveBalance(await client(target), { prefix: p })];
    const cards = Array.from({ length: 12 }, (_, i) => `k${i}x${randomBytes(2).toString('hex')}`);
    // The cards' keys live on more than one master: the test spans nodes, not just slots.
    const probe = (await client(target)) as Cluster;
    const owners = new Set<string>();
    for (const card of cards) {
      const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', a.keys(card)[0]));
      const ranges = (await probe.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      const owner = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)!;
      owners.add(`${owner[2][0]}:${owner[2][1]}`);
    }
    expect(owners.size).toBeGreaterThanOrEqual(2);

    for (const card of cards) await a.load(card, { spendable: 1_000n, version: 1n });
    const attempts = cards.flatMap((card) =>
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).reserve(card, `call-${i}`, 100n, 60_000, 50).then((r) => ({ card, r }))),
    );
    const results = await Promise.all(attempts);
    for (const card of cards) {
      const mine = results.filter((x) => x.card === card);
      expect(mine.filter((x) => x.r.ok)).toHaveLength(10);
      expect(await b.peek(card)).toEqual({ available: 0n, active: 10 });
    }
  });

  it('PIN lockouts work on the cluster (both keys of a subject share one slot)', async () => {
    const services = lockoutServices(await client(await clusterTarget()));
    expect(await services.isLockedOut('18005550100', '15551110000')).toBe(false);
    for (let i = 0; i < 3; i++) await services.recordPinFailure('18005550100', '15551110000');
    expect(await services.isLockedOut('18005550100', '15551110000')).toBe(true);
    expect(await services.isLockedOut('18005550100', '15551119999')).toBe(false);
  });

  it('a call through the real service with REDIS_CLUSTER_NODES is reserved, debited and released on the cluster', async () => {
    const target = (await clusterTarget()) as Extract<RedisTarget, { mode: 'cluster' }>;
    const h = await startHarness({ env: { REDIS_URL: '', REDIS_CLUSTER_NODES: target.nodes.map((n) => `${n.host}:${n.port}`).join(',') } });
    try {
      expect(h.service.config.redis?.mode).toBe('cluster');
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { outcome } = await h.place({
        did: h.data.did,
        callerId: '15551230000',
        digits: [`${card.pin}#`, '15557654321#', ''],
        carrier: () => carrier.answer(500, 3000),
      });
      expect(outcome.ended).toBe('completed');
      expect(outcome.calls[0]!.settle!.cost).toBeGreaterThan(0n);
      expect(await h.balance(card.id)).toBe(before - outcome.calls[0]!.settle!.cost);
      expect(await h.service.live.reservations(card.id)).toEqual([]);
      const ready = await fetch(`http://127.0.0.1:${h.service.http.port}/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: { redis: string } }).checks.redis).toBe('ok');
    } finally {
      await h.close();
    }
  });
});

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
    const deadline = Date.now() + 20_000;
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
  }, 30_000);
});
