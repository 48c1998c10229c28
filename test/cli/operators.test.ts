import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { runCli } from '../../src/cli/main.ts';
import { recordAudit } from '../../src/store/admin/audit.ts';
import { operatorLogin } from '../../src/store/admin/operators.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { cli, SECRET, type CliRun } from './helpers.ts';

let db: TestDb;
let run: (...args: string[]) => Promise<CliRun>;
const ctx = () => ({ pool: db.pool, pinKeys: derivePinKeys(SECRET) });

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

/** `ccard <args>` with `input` on stdin. */
async function runWithStdin(input: string, ...args: string[]): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(['node', 'ccard', ...args], {
    env: { DATABASE_URL: db.url, CCARD_SECRET: SECRET },
    stdout,
    stderr,
    stdin: Readable.from([input]),
    pool: db.pool,
  });
  return { code, out: stdout.text, err: stderr.text, json: () => JSON.parse(stdout.text) };
}

beforeAll(async () => {
  db = await createTestDb();
  run = cli(db);
});
afterAll(async () => {
  await db?.drop();
});

describe('ccard operator', () => {
  it('adds an operator with a printed one-time password that logs in', async () => {
    const r = await run('operator', 'add', 'alice', '--role', 'admin');
    expect(r.code, r.err).toBe(0);
    const pw = r.out.trim();
    expect(pw).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(r.err).toMatch(/not shown again/);
    const s = await operatorLogin(ctx(), { login: 'alice', password: pw });
    expect(s.session.role).toBe('admin');
  });

  it('takes the password from stdin', async () => {
    const r = await runWithStdin('a piped password\n', 'operator', 'add', 'bob', '--password-stdin');
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toContain('a piped password');
    expect((await operatorLogin(ctx(), { login: 'bob', password: 'a piped password' })).session.role).toBe('operator');
    const short = await runWithStdin('short\n', 'operator', 'add', 'carol', '--password-stdin');
    expect(short.code).toBe(1);
    expect(short.err).toMatch(/password: must be at least 10 characters/);
  });

  it('lists, changes roles and passwords, removes; refuses bad input with one line', async () => {
    expect((await run('operator', 'set-role', 'bob', 'viewer')).out).toMatch(/now viewer/);
    const list = (await run('operator', 'list', '--json')).json();
    expect(list.map((o: { login: string; role: string }) => [o.login, o.role])).toEqual([['alice', 'admin'], ['bob', 'viewer']]);
    const pw = await run('operator', 'passwd', 'bob');
    expect(pw.code).toBe(0);
    await expect(operatorLogin(ctx(), { login: 'bob', password: 'a piped password' })).rejects.toThrow(/invalid login or password/);
    expect((await operatorLogin(ctx(), { login: 'bob', password: pw.out.trim() })).session.login).toBe('bob');
    const bad = await run('operator', 'set-role', 'bob', 'king');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/must be admin, operator or viewer/);
    expect((await run('operator', 'add', 'alice')).err).toMatch(/already exists/);
    expect((await run('operator', 'remove', 'alice')).err).toMatch(/last admin/);
    expect((await run('operator', 'remove', 'bob')).code).toBe(0);
    expect((await run('operator', 'remove', 'bob')).err).toMatch(/unknown operator "bob"/);
  });
});

describe('ccard audit list', () => {
  it('filters by actor, object and date, newest first', async () => {
    await recordAudit(db, { actor: 'operator:alice', action: 'PATCH /v1/cards/:serial', object: 'card:100-000000001', status: 200, before: { status: 'active' }, after: { status: 'disabled' } });
    await recordAudit(db, { actor: 'apikey:robot', action: 'POST /v1/series', object: 'series:100', status: 201, after: { number: '100' } });
    await recordAudit(db, { actor: 'operator:alice', action: 'POST /v1/operators', object: 'operator:bob', status: 201, request: { login: 'bob', password: 'hunter2-hunter2' } });
    const all = (await run('audit', 'list', '--json')).json();
    expect(all.map((a: { action: string }) => a.action)).toEqual(['POST /v1/operators', 'POST /v1/series', 'PATCH /v1/cards/:serial']);
    expect(JSON.stringify(all)).not.toContain('hunter2');
    expect((await run('audit', 'list', '--actor', 'alice', '--json')).json()).toHaveLength(2);
    expect((await run('audit', 'list', '--actor', 'apikey:robot', '--json')).json()).toHaveLength(1);
    const card = (await run('audit', 'list', '--object', 'card', '--json')).json();
    expect(card).toEqual([expect.objectContaining({ object: 'card:100-000000001', before: { status: 'active' }, after: { status: 'disabled' } })]);
    expect((await run('audit', 'list', '--from', '2000-01-01', '--to', '2000-02-01', '--json')).json()).toEqual([]);
    const table = await run('audit', 'list');
    expect(table.out).toMatch(/PATCH \/v1\/cards\/:serial/);
    const bad = await run('audit', 'list', '--from', 'yesterday');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/invalid date "yesterday"/);
  });
});
