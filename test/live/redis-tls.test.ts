/**
 * Redis over TLS (REDIS_TLS, REDIS_TLS_CA_FILE, rediss://): a single server, a Sentinel deployment whose sentinels
 * and data nodes listen with TLS only, and a 3-master Redis Cluster with TLS on its client and bus ports, all started
 * by the test with a test CA (test/helpers/redis-servers.ts). The live store reserves through each, and a client that
 * does not trust the CA, or does not speak TLS, is refused.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { loadConfig, type RedisTarget } from '../../src/config/env.ts';
import { createRedisClient, describeRedis, redisReady } from '../../src/live/redis-client.ts';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { RedisFarm, type RedisNode } from '../helpers/redis-servers.ts';

const farm = new RedisFarm({ tls: true });
const certs = farm.certs!;
const clients: Array<Redis | Cluster> = [];
const prefix = () => `tls:${randomBytes(4).toString('hex')}:`;
let single: RedisNode;

async function connect(target: RedisTarget): Promise<Redis | Cluster> {
  const c = createRedisClient(target);
  c.on('error', () => {});
  clients.push(c);
  await redisReady(c, 15_000);
  return c;
}

/** A card loaded with 1 000 µ: 600 reserved, then 500 more refused (not overspent), then the last 400 admitted. */
async function reservesExactly(redis: Redis | Cluster): Promise<void> {
  const store = new RedisLiveBalance(redis, { prefix: prefix() });
  const card = `t${randomBytes(3).toString('hex')}`;
  await store.load(card, { spendable: 1_000n, version: 1n });
  expect(await store.reserve(card, 'a', 600n, 60_000, 5)).toEqual({ ok: true, available: 400n });
  expect(await store.reserve(card, 'b', 500n, 60_000, 5)).toMatchObject({ ok: false, reason: 'insufficient' });
  expect(await store.reserve(card, 'c', 400n, 60_000, 5)).toEqual({ ok: true, available: 0n });
}

beforeAll(async () => {
  single = await farm.start();
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await farm.stop();
});

describe('Redis over TLS', () => {
  it('rediss:// with REDIS_TLS_CA_FILE: the live store reserves exactly', async () => {
    const cfg = loadConfig({ REDIS_URL: `rediss://127.0.0.1:${single.port}`, REDIS_TLS_CA_FILE: certs.caFile });
    expect(cfg.redis).toEqual({ mode: 'single', url: `rediss://127.0.0.1:${single.port}`, tls: { ca: certs.ca } });
    await reservesExactly(await connect(cfg.redis!));
  });

  it('REDIS_TLS=true turns TLS on for a redis:// URL too', async () => {
    const cfg = loadConfig({ REDIS_URL: `redis://127.0.0.1:${single.port}`, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: certs.caFile });
    expect(describeRedis(cfg.redis!)).toBe(`redis://127.0.0.1:${single.port} (TLS)`);
    await reservesExactly(await connect(cfg.redis!));
  });

  it('a server whose certificate the client does not trust, or a client without TLS, is refused', async () => {
    const untrusted = loadConfig({ REDIS_URL: `rediss://127.0.0.1:${single.port}` }).redis!;
    await expect(connect(untrusted)).rejects.toThrow(/certificate/i);
    const plain = createRedisClient({ mode: 'single', url: `redis://127.0.0.1:${single.port}` }, 'service', { connectTimeout: 1000, retryStrategy: () => null });
    plain.on('error', () => {});
    clients.push(plain);
    await expect(plain.ping()).rejects.toThrow();
  });

  it('Sentinel with TLS on the sentinels and the data nodes: ccard finds the master and reserves exactly', async () => {
    const set = await farm.sentinel('tlsmaster', 3);
    const cfg = loadConfig({
      REDIS_SENTINELS: set.sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      REDIS_SENTINEL_NAME: 'tlsmaster',
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: certs.caFile,
    });
    expect(cfg.redis).toMatchObject({ mode: 'sentinel', tls: { ca: certs.ca } });
    const redis = (await connect(cfg.redis!)) as Redis;
    expect(Number(/tcp_port:(\d+)/.exec(await redis.info('server'))![1])).toBe(set.master.port); // its TLS port
    expect(((await redis.call('ROLE')) as string[])[0]).toBe('master');
    await reservesExactly(redis);
  }, 60_000);

  it('Redis Cluster with TLS: reservations on cards spread over the masters', async () => {
    const nodes = await farm.cluster(3);
    const cfg = loadConfig({ REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(','), REDIS_TLS: '1', REDIS_TLS_CA_FILE: certs.caFile });
    const redis = await connect(cfg.redis!);
    for (let i = 0; i < 4; i++) await reservesExactly(redis);
  }, 60_000);

  it('refuses a CA file that is missing, not PEM, or given without TLS', () => {
    const junk = path.join(farm.dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    expect(() => loadConfig({ REDIS_URL: 'rediss://h:6379', REDIS_TLS_CA_FILE: path.join(farm.dir, 'nope.pem') })).toThrow(/REDIS_TLS_CA_FILE: cannot read .*ENOENT/);
    expect(() => loadConfig({ REDIS_URL: 'rediss://h:6379', REDIS_TLS_CA_FILE: junk })).toThrow(/REDIS_TLS_CA_FILE: .* holds no PEM certificate/);
    expect(() => loadConfig({ REDIS_URL: 'redis://h:6379', REDIS_TLS_CA_FILE: certs.caFile })).toThrow(/REDIS_TLS_CA_FILE: only used with REDIS_TLS=true/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'h:7000', REDIS_TLS: 'yes' })).toThrow(/REDIS_TLS: must be true or false/);
  });
});
