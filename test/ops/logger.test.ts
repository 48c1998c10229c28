/**
 * The service's logger (src/app/logger.ts): lines below warn wait in a buffer; a warn or worse writes everything
 * held, in order, before the logging call returns.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BufferedLog, createLogger } from '../../src/app/logger.ts';

function sink() {
  const writes: string[] = [];
  // A flush interval no test here reaches: only the levels, the size and end() write.
  const dest = new BufferedLog({ write: (s: string) => void writes.push(s) }, 3_600_000);
  const log = pino({ level: 'debug' }, dest);
  const msgs = (i: number) => writes[i]!.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  return { writes, dest, log, msgs };
}

describe('the buffered log destination', () => {
  it('holds info and debug lines; a warn writes them and itself in order, in one write', () => {
    const { writes, dest, log, msgs } = sink();
    log.info('one');
    log.child({ call: 'x' }).debug('two');
    expect(writes).toEqual([]);
    log.warn('three');
    expect(writes).toHaveLength(1);
    expect(msgs(0)).toEqual(['one', 'two', 'three']);
    log.error('four');
    expect(msgs(1)).toEqual(['four']);
    log.info('five');
    expect(writes).toHaveLength(2);
    dest.end();
    expect(msgs(2)).toEqual(['five']);
    dest.end();
    expect(writes).toHaveLength(3);
  });

  it('writes when 64 KiB are held, whatever the level', () => {
    const { writes, dest, log } = sink();
    const big = 'x'.repeat(1000);
    let n = 0;
    while (writes.length === 0 && n < 1000) log.info({ big }, `line ${n++}`);
    expect(n).toBeGreaterThan(30);
    expect(n).toBeLessThan(80);
    expect(writes[0]!.length).toBeGreaterThanOrEqual(64 * 1024);
    expect(writes[0]!.trim().split('\n')).toHaveLength(n);
    dest.end();
  });
});

describe('createLogger', () => {
  it('flushMs 0: every line is on its file descriptor when the call returns', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ccard-log-'));
    const file = path.join(dir, 'out.log');
    const fd = openSync(file, 'w');
    try {
      const log = createLogger({ level: 'info', flushMs: 0, fd });
      log.info({ a: 1 }, 'hello');
      log.debug('not at info');
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['hello']);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lines still held when the process ends', () => {
  const LOGGER = fileURLToPath(new URL('../../src/app/logger.ts', import.meta.url));
  const run = (end: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      const { createLogger } = await import(${JSON.stringify(LOGGER)});
      const log = createLogger({ level: 'info', flushMs: 60000 });
      log.info('held');
      setTimeout(() => { ${end} }, 10);
    `], { encoding: 'utf8', timeout: 30_000 });
  const msgs = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);

  it('are written at a normal exit and at an uncaught exception', () => {
    const normal = run('process.exit(0)');
    expect(normal.status).toBe(0);
    expect(msgs(normal.stdout)).toEqual(['held']);
    const crash = run("throw new Error('boom')");
    expect(crash.status).not.toBe(0);
    expect(msgs(crash.stdout)).toEqual(['held']);
  });
});
