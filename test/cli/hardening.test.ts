import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { cli, type CliRun } from './helpers.ts';

let db: TestDb;
let run: (...args: string[]) => Promise<CliRun>;
let dir: string;

const failsWith = (r: CliRun, re: RegExp) => {
  expect(r.code, r.err).toBe(1);
  expect(r.err).toMatch(re);
  expect(r.err.trim().split('\n')).toHaveLength(1);
};

beforeAll(async () => {
  db = await createTestDb();
  run = cli(db);
  dir = await mkdtemp(path.join(tmpdir(), 'ccard-cli-hard-'));
  await writeFile(path.join(dir, 'rates.csv'), 'prefix,destination,rate\n1,USA,0.01\n');
  expect((await run('rates', 'import', 'std', path.join(dir, 'rates.csv'))).code).toBe(0);
  const r = await run(
    'series', 'create', '--name', 'Evil \u001b]0;owned\u0007\u001b[2J name\u202e', '--number', '300', '--count', '3',
    '--rate-table', 'std', '--balance', '5', '--status', 'active', '--notes', 'line\u001b[31mred\u009b2J',
  );
  expect(r.code, r.err).toBe(0);
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('--with-pins output files', () => {
  it('are created with mode 0600', async () => {
    const f = path.join(dir, 'pins.csv');
    const r = await run('cards', 'export', '--series', '300', '--out', f, '--with-pins');
    expect(r.code, r.err).toBe(0);
    expect((await stat(f)).mode & 0o777).toBe(0o600);
    expect((await readFile(f, 'utf8')).split('\n')[0]).toBe('serial,pin,balance,currency,status,expires_at');
  });

  it('never follow a symbolic link, and never overwrite a file', async () => {
    const target = path.join(dir, 'target.txt');
    await writeFile(target, 'keep me');
    const link = path.join(dir, 'link.csv');
    await symlink(target, link);
    failsWith(await run('cards', 'export', '--series', '300', '--out', link, '--with-pins'), /cannot write .*link\.csv/);
    expect(await readFile(target, 'utf8')).toBe('keep me');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    failsWith(await run('cards', 'export', '--series', '300', '--out', target, '--with-pins'), /already exists/);
    expect(await readFile(target, 'utf8')).toBe('keep me');
    // Without PINs an existing file is replaced, but a symlink is still refused.
    failsWith(await run('cards', 'export', '--series', '300', '--out', link), /symbolic link/);
    expect(await readFile(target, 'utf8')).toBe('keep me');
  });

  it('a write error is one line naming the file, and a partial PIN file is removed', async () => {
    failsWith(await run('cards', 'export', '--series', '300', '--out', '/dev/full'), /cannot write \/dev\/full: ENOSPC/);
    failsWith(await run('cdr', 'export', '--out', '/dev/full'), /cannot write \/dev\/full: ENOSPC/);
    failsWith(await run('cards', 'export', '--series', '300', '--out', path.join(dir, 'no-such-dir', 'x.csv'), '--with-pins'), /cannot write .*ENOENT/);
    expect(existsSync(path.join(dir, 'no-such-dir'))).toBe(false);
  });
});

describe('cdr import', () => {
  it('refuses a file larger than 1 MiB without reading it whole, and a non-file', async () => {
    const big = path.join(dir, 'big.cdr.json');
    await writeFile(big, `{"x":"${'a'.repeat(1024 * 1024)}"}`);
    const r = await run('cdr', 'import', big, '/dev/zero', '--json');
    expect(r.code).toBe(1);
    const results = JSON.parse(r.out) as Array<{ file: string; status: string; detail: string }>;
    expect(results[0]).toMatchObject({ status: 'unreadable', detail: expect.stringMatching(/larger than 1048576 bytes/) });
    expect(results[1]).toMatchObject({ status: 'unreadable', detail: expect.stringMatching(/not a regular file/) });
  });
});

describe('operator text on a terminal', () => {
  it('series names and notes are printed without escape or control sequences', async () => {
    for (const args of [['series', 'list'], ['series', 'show', '300']]) {
      const r = await run(...args);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('Evil ]0;owned[2J name');
      expect(r.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    }
    const show = await run('series', 'show', '300');
    expect(show.out).toContain('line[31mred2J');
    // JSON stays exact (escaped by JSON itself).
    expect((await run('series', 'show', '300', '--json')).json().notes).toBe('line\u001b[31mred\u009b2J');
  });
});
