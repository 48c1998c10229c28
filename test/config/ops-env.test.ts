import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/env.ts';
import { describeRedis } from '../../src/live/redis-client.ts';

const servers = { DATABASE_URL: 'postgres://h/db', CCARD_SECRET: 'x'.repeat(16) };

describe('configuration: Redis deployments, metrics and drain', () => {
  it('REDIS_URL, REDIS_SENTINELS + REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES; none: in-process', () => {
    expect(loadConfig({}).redis).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://h:6379' }).redis).toEqual({ mode: 'single', url: 'redis://h:6379' });
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000,10.0.0.2:7001 ,redis-3:7002', REDIS_PASSWORD: 'pw' }).redis).toEqual({
      mode: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'redis-3', port: 7002 },
      ],
      password: 'pw',
    });
    const s = loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'ccard', REDIS_SENTINEL_PASSWORD: 'sp' }).redis;
    expect(s).toEqual({ mode: 'sentinel', name: 'ccard', sentinels: [{ host: 's1', port: 26379 }], sentinelPassword: 'sp' });
    // Log lines name the deployment, never a password.
    expect(describeRedis(loadConfig({ REDIS_URL: 'redis://user:secret@h:6379/2' }).redis!)).toBe('redis://h:6379/2');
    expect(describeRedis(s!)).toBe('sentinel ccard via s1:26379');
  });

  it('more than one worker runs on Sentinel or Cluster as on one Redis', () => {
    expect(loadConfig({ ...servers, CCARD_WORKERS: '2', REDIS_CLUSTER_NODES: 'h:7000' }).CCARD_WORKERS).toBe(2);
    expect(loadConfig({ ...servers, CCARD_WORKERS: '2', REDIS_SENTINELS: 'h:26379', REDIS_SENTINEL_NAME: 'm' }).CCARD_WORKERS).toBe(2);
  });

  it('metrics token and drain delay', () => {
    expect(loadConfig({}).CCARD_METRICS_TOKEN).toBeUndefined();
    expect(loadConfig({}).CCARD_DRAIN_DELAY_SECONDS).toBe(0);
    expect(loadConfig({ CCARD_METRICS_TOKEN: 't'.repeat(16), CCARD_DRAIN_DELAY_SECONDS: '10' })).toMatchObject({
      CCARD_METRICS_TOKEN: 't'.repeat(16),
      CCARD_DRAIN_DELAY_SECONDS: 10,
    });
  });

  it.each([
    [{ REDIS_SENTINELS: 'h:26379' }, /REDIS_SENTINEL_NAME: required with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_NAME: 'm' }, /REDIS_SENTINELS: required with REDIS_SENTINEL_NAME/],
    [{ REDIS_SENTINELS: 'h:26379', REDIS_SENTINEL_NAME: 'bad name' }, /REDIS_SENTINEL_NAME: must be the master name/],
    [{ REDIS_URL: 'redis://h', REDIS_CLUSTER_NODES: 'h:7000' }, /REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/],
    [{ REDIS_SENTINELS: 'h:1', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'h:7000' }, /set only one of/],
    [{ REDIS_CLUSTER_NODES: 'h' }, /REDIS_CLUSTER_NODES: must be a comma-separated list of host:port/],
    [{ REDIS_CLUSTER_NODES: 'h:7000,h;rm:1' }, /REDIS_CLUSTER_NODES: must be a comma-separated list of host:port/],
    [{ REDIS_CLUSTER_NODES: 'h:70000' }, /REDIS_CLUSTER_NODES: every port must be 1-65535/],
    [{ REDIS_CLUSTER_NODES: ' , ' }, /REDIS_CLUSTER_NODES: must name at least one host:port/],
    [{ REDIS_SENTINELS: 'redis://h:26379', REDIS_SENTINEL_NAME: 'm' }, /REDIS_SENTINELS: must be a comma-separated list/],
    [{ CCARD_METRICS_TOKEN: 'short' }, /CCARD_METRICS_TOKEN: must be at least 16 characters/],
    [{ CCARD_DRAIN_DELAY_SECONDS: 'soon' }, /CCARD_DRAIN_DELAY_SECONDS: must be a whole number/],
    [{ CCARD_DRAIN_DELAY_SECONDS: '301' }, /CCARD_DRAIN_DELAY_SECONDS/],
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
