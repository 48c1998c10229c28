import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { RedisTarget } from '../../src/config/env.ts';
import { createRedisClient, redisReady } from '../../src/live/redis-client.ts';
import { createCallServices } from '../../src/app/call-services.ts';
import { RedisFarm, type RedisNode } from '../helpers/redis-servers.ts';

/**
 * Shared by redis-cluster.test.ts and redis-sentinel.test.ts: the deployments are started on first use (on loopback
 * ports, by RedisFarm) and killed after the file's tests.
 */
const farm = new RedisFarm();
export let clusterNodes: RedisNode[] | undefined;
export let sentinelSet: Awaited<ReturnType<RedisFarm['sentinel']>> | undefined;
export const SENTINEL_NAME = 'ccardmaster';

const clients: Array<Redis | Cluster> = [];
export const prefix = () => `ha:${randomBytes(4).toString('hex')}:`;

export async function clusterTarget(): Promise<RedisTarget> {
  clusterNodes ??= await farm.cluster(3);
  return { mode: 'cluster', nodes: clusterNodes.map((n) => ({ host: n.host, port: n.port })) };
}
export async function sentinelTarget(): Promise<RedisTarget> {
  sentinelSet ??= await farm.sentinel(SENTINEL_NAME, 3);
  return { mode: 'sentinel', name: SENTINEL_NAME, sentinels: sentinelSet.sentinels.map((n) => ({ host: n.host, port: n.port })) };
}
export async function client(target: RedisTarget): Promise<Redis | Cluster> {
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

export const lockoutServices = (redis: Redis | Cluster) =>
  createCallServices({
    // The lockout never touches the live store; PostgreSQL only to ask whether a caller ID is bound (none is).
    pool: { query: async () => ({ rows: [], rowCount: 0 }) } as unknown as Pool,
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

