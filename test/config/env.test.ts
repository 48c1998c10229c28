import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEMO_SECRET, loadConfig } from '../../src/config/env.ts';

describe('configuration', () => {
  it('runs on embedded defaults with an empty environment', () => {
    const cfg = loadConfig({});
    expect(cfg.embedded).toBe(true);
    expect(cfg.CCARD_ESL_PORT).toBe(8040);
    expect(cfg.CCARD_EVENT_FORMAT).toBe('json');
    expect(cfg.secret).toBe(DEMO_SECRET);
  });

  it('parses numbers and treats empty strings as unset', () => {
    const cfg = loadConfig({ CCARD_ESL_PORT: '9000', CCARD_HTTP_PORT: '', CCARD_MIN_CALL_SECONDS: '20' });
    expect(cfg.CCARD_ESL_PORT).toBe(9000);
    expect(cfg.CCARD_HTTP_PORT).toBe(8041);
    expect(cfg.CCARD_MIN_CALL_SECONDS).toBe(20);
  });

  it('CCARD_WORKERS: 1 by default, "auto" is one per core, more than one with PostgreSQL and Redis', () => {
    expect(loadConfig({}).CCARD_WORKERS).toBe(1);
    const servers = { DATABASE_URL: 'postgres://h/db', REDIS_URL: 'redis://h:6379', CCARD_SECRET: 'x'.repeat(16) };
    expect(loadConfig({ ...servers, CCARD_WORKERS: '3' }).CCARD_WORKERS).toBe(3);
    expect(loadConfig({ ...servers, CCARD_WORKERS: 'auto' }).CCARD_WORKERS).toBe(availableParallelism());
  });

  it.each([
    [{ CCARD_ESL_PORT: 'eighty' }, /CCARD_ESL_PORT: must be a whole number/],
    [{ CCARD_ESL_PORT: '70000' }, /CCARD_ESL_PORT/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgres:\/\/ URL/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL/],
    [{ CCARD_EVENT_FORMAT: 'xml' }, /CCARD_EVENT_FORMAT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ DATABASE_URL: 'postgres://h/db' }, /CCARD_SECRET: required when DATABASE_URL is set/],
    [{ CCARD_SECRET: 'short' }, /CCARD_SECRET: must be at least 16/],
    [{ CCARD_MIN_CALL_SECONDS: '600', CCARD_MAX_CALL_SECONDS: '300' }, /CCARD_MAX_CALL_SECONDS|CCARD_MIN_CALL_SECONDS/],
    [{ CCARD_SOUNDS_PREFIX: 'relative/path' }, /CCARD_SOUNDS_PREFIX: must be an absolute path/],
    [{ CCARD_WORKERS: 'many' }, /CCARD_WORKERS: must be a whole number or "auto"/],
    [{ CCARD_WORKERS: '0' }, /CCARD_WORKERS/],
    [{ CCARD_WORKERS: '2' }, /CCARD_WORKERS: more than one worker needs DATABASE_URL and REDIS_URL/],
    [{ CCARD_WORKERS: '2', DATABASE_URL: 'postgres://h/db', CCARD_SECRET: 'x'.repeat(16) }, /CCARD_WORKERS: more than one worker needs/],
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
