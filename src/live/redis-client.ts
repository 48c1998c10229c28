import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config/env.ts';

/**
 * The Redis connection of the live store and the PIN lockouts, whichever way Redis is run:
 * - single: REDIS_URL;
 * - sentinel: the master of REDIS_SENTINEL_NAME, found through REDIS_SENTINELS; after a failover ioredis asks the
 *   sentinels again (and `failoverDetector` follows their +switch-master at once), and a READONLY reply (a demoted
 *   master) reconnects;
 * - cluster: REDIS_CLUSTER_NODES. Every key of one Lua script shares a hash tag ({c:<card>}, {pin:<subject>}), so
 *   each script runs on one slot; no command of ccard spans two cards or two lockout subjects.
 *
 * 'service': commands are never queued while disconnected and retried once at most, so a Redis outage fails new
 * calls closed at once instead of stacking them up. 'cli': a short command, a little more patient.
 */
export type RedisRole = 'service' | 'cli';

const readonlyReconnect = (err: Error) => (err.message.startsWith('READONLY') ? 2 : false);

function baseOptions(role: RedisRole): RedisOptions {
  return role === 'service'
    ? { maxRetriesPerRequest: 1, connectTimeout: 2000, enableOfflineQueue: false, enableAutoPipelining: true, reconnectOnError: readonlyReconnect }
    : { maxRetriesPerRequest: 2, connectTimeout: 5000, reconnectOnError: readonlyReconnect };
}

export function createRedisClient(target: RedisTarget, role: RedisRole = 'service', extra: RedisOptions = {}): Redis | Cluster {
  // TLS options (an object also turns TLS on for a redis:// URL; a rediss:// URL alone gets Node's trusted CAs).
  const tls = target.tls && { ...(target.tls.ca !== undefined && { ca: target.tls.ca }) };
  const base: RedisOptions = { ...baseOptions(role), ...(tls && { tls }), ...extra };
  switch (target.mode) {
    case 'single':
      return new Redis(target.url, base);
    case 'sentinel':
      return new Redis({
        ...base,
        sentinels: target.sentinels,
        name: target.name,
        role: 'master',
        failoverDetector: true,
        // The sentinels over TLS as well, and the master they name (enableTLSForSentinelMode) with `tls`.
        ...(tls && { sentinelTLS: tls, enableTLSForSentinelMode: true }),
        ...(target.password !== undefined && { password: target.password }),
        ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
      });
    case 'cluster': {
      const { enableOfflineQueue, enableAutoPipelining, ...redisOptions } = base;
      return new Cluster(target.nodes, {
        redisOptions: { ...redisOptions, ...(target.password !== undefined && { password: target.password }) },
        ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
        ...(enableAutoPipelining !== undefined && { enableAutoPipelining }),
        // Writes and the Lua scripts go to the masters only: a replica may lag behind a hold.
        scaleReads: 'master',
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
      });
    }
  }
}

/** Resolves when the client is ready; rejects on its first error or after timeoutMs. */
export function redisReady(client: Redis | Cluster, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`Redis not ready within ${timeoutMs} ms (status ${client.status})`)), timeoutMs);
    const onReady = () => finish();
    const onError = (err: Error) => finish(err);
    function finish(err?: Error) {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      if (err) reject(err);
      else resolve();
    }
    client.once('ready', onReady);
    client.once('error', onError);
  });
}

/** Where the client points, for log lines (never a password). */
export function describeRedis(target: RedisTarget): string {
  switch (target.mode) {
    case 'single': {
      const u = new URL(target.url);
      return `${u.protocol}//${u.host}${u.pathname}${target.tls && u.protocol === 'redis:' ? ' (TLS)' : ''}`;
    }
    case 'sentinel':
      return `sentinel ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}${target.tls ? ' (TLS)' : ''}`;
    case 'cluster':
      return `cluster ${target.nodes.map((s) => `${s.host}:${s.port}`).join(',')}${target.tls ? ' (TLS)' : ''}`;
  }
}
