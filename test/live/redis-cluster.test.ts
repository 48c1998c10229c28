/**
 * The live store, the PIN lockouts and a call through the real service on a real Redis Cluster of 3 masters,
 * started by the test (test/live/redis-ha.ts). Every Lua script and lockout command must run on one slot: a
 * CROSSSLOT error would fail the contract.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import type { RedisTarget } from '../../src/config/env.ts';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { carrier } from '../../src/sim/index.ts';
import { liveBalanceContract } from './contract.ts';
import { startHarness, waitFor } from '../e2e/harness.ts';
import { client, clusterNodes, clusterTarget, lockoutServices, prefix } from './redis-ha.ts';

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

describe('Redis Cluster losing a master', () => {
  it('/ready turns 503 when a master of the cluster is gone (its slots are not served)', async () => {
    const target = (await clusterTarget()) as Extract<RedisTarget, { mode: 'cluster' }>;
    const h = await startHarness({ env: { REDIS_URL: '', REDIS_CLUSTER_NODES: target.nodes.map((n) => `${n.host}:${n.port}`).join(',') } });
    try {
      expect((await fetch(`http://127.0.0.1:${h.service.http.port}/ready`)).status).toBe(200);
      await clusterNodes![2]!.kill('SIGKILL');
      const body = await waitFor(
        'the cluster to be reported down',
        async () => {
          const r = await fetch(`http://127.0.0.1:${h.service.http.port}/ready`);
          return r.status === 503 ? ((await r.json()) as { checks: { redis: string; postgres: string } }) : undefined;
        },
        15_000,
      );
      expect(body.checks).toMatchObject({ redis: 'failed', postgres: 'ok' });
    } finally {
      await h.close();
    }
  }, 30_000);
});

