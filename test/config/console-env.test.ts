import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/env.ts';

describe('console configuration', () => {
  it('has safe defaults', () => {
    const c = loadConfig({});
    expect([c.CCARD_TRUST_PROXY, c.CCARD_COOKIE_SECURE, c.CCARD_SESSION_IDLE_SECONDS, c.CCARD_SESSION_MAX_SECONDS]).toEqual([false, 'auto', 3600, 43_200]);
  });

  it('reads the variables and names a bad one', () => {
    const c = loadConfig({ CCARD_TRUST_PROXY: 'true', CCARD_COOKIE_SECURE: 'always', CCARD_SESSION_IDLE_SECONDS: '600', CCARD_SESSION_MAX_SECONDS: '3600' });
    expect([c.CCARD_TRUST_PROXY, c.CCARD_COOKIE_SECURE, c.CCARD_SESSION_IDLE_SECONDS, c.CCARD_SESSION_MAX_SECONDS]).toEqual([true, 'always', 600, 3600]);
    expect(() => loadConfig({ CCARD_TRUST_PROXY: 'maybe' })).toThrow(/CCARD_TRUST_PROXY: must be true or false/);
    expect(() => loadConfig({ CCARD_COOKIE_SECURE: 'yes' })).toThrow(ConfigError);
    expect(() => loadConfig({ CCARD_SESSION_IDLE_SECONDS: '5' })).toThrow(/CCARD_SESSION_IDLE_SECONDS/);
  });
});
