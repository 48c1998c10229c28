import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/env.ts';
import { journalDir } from '../../src/app/cdr-intake.ts';

describe('configuration of the CDR intake', () => {
  it('defaults: no spool, the journal under the data directory, /cdr on the API port for loopback clients', () => {
    const cfg = loadConfig({});
    expect(cfg.CCARD_CDR_SPOOL_DIR).toEqual([]);
    expect(cfg.CCARD_CDR_SPOOL_SCAN_SECONDS).toBe(5);
    expect(journalDir(cfg)).toBe('.data/journal');
    expect(cfg.CCARD_CDR_CREDENTIALS).toBeUndefined();
    expect(cfg.CCARD_CDR_PORT).toBeUndefined();
  });

  it('parses a list of spool directories, credentials and a listener of its own', () => {
    const cfg = loadConfig({
      CCARD_CDR_SPOOL_DIR: '/var/log/freeswitch/json_cdr_err, /mnt/fs2/json_cdr_err,',
      CCARD_JOURNAL_DIR: '/var/lib/ccard/journal',
      CCARD_CDR_CREDENTIALS: 'freeswitch:long-enough-password',
      CCARD_CDR_HOST: '10.0.0.5',
      CCARD_CDR_PORT: '8042',
    });
    expect(cfg.CCARD_CDR_SPOOL_DIR).toEqual(['/var/log/freeswitch/json_cdr_err', '/mnt/fs2/json_cdr_err']);
    expect(journalDir(cfg)).toBe('/var/lib/ccard/journal');
    expect(cfg.CCARD_CDR_CREDENTIALS).toBe('freeswitch:long-enough-password');
    expect([cfg.CCARD_CDR_HOST, cfg.CCARD_CDR_PORT]).toEqual(['10.0.0.5', 8042]);
  });

  it.each([
    [{ CCARD_CDR_CREDENTIALS: 'no-colon-here' }, /CCARD_CDR_CREDENTIALS: must be user:password/],
    [{ CCARD_CDR_CREDENTIALS: 'fs:short' }, /CCARD_CDR_CREDENTIALS: must be user:password \(password at least 8/],
    [{ CCARD_CDR_PORT: 'http' }, /CCARD_CDR_PORT: must be a whole number/],
    [{ CCARD_CDR_SPOOL_SCAN_SECONDS: '0' }, /CCARD_CDR_SPOOL_SCAN_SECONDS/],
  ])('refuses %o with a message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
