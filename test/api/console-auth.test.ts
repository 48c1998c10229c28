import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { addOperator, editOperator, removeOperator } from '../../src/store/admin/operators.ts';
import { verifyPassword, hashPassword } from '../../src/store/admin/passwords.ts';
import { createApiKey } from '../../src/store/admin/api-keys.ts';
import { importRateTable } from '../../src/store/admin/rates.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import { cookieOf, login } from './helpers-console.ts';

let db: TestDb;
let app: FastifyInstance;
let ctx: AdminContext;
let apiKey: string;
const keys = derivePinKeys('console-auth-test-secret-0123');
const PW = 'correct horse battery';

beforeAll(async () => {
  db = await createTestDb();
  ctx = { pool: db.pool, pinKeys: keys };
  await importRateTable(ctx, 'std', 'prefix,destination,rate\n1,USA,0.01\n');
  apiKey = (await createApiKey(ctx, 'auto')).key;
  for (const [login, role] of [['root', 'admin'], ['ops', 'operator'], ['eye', 'viewer'], ['locky', 'viewer'], ['gone', 'viewer'], ['multi', 'viewer']] as const) {
    await addOperator(ctx, { login, role, password: PW });
  }
  app = buildApi({
    pool: db.pool,
    pinKeys: keys,
    console: { lockout: { maxFailures: 3, windowSeconds: 600, lockSeconds: 900 }, loginRateLimit: { max: 1000, timeWindowMs: 60_000 } },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('passwords', () => {
  it('are scrypt hashes with their parameters, salted, verified exactly', async () => {
    const h = await hashPassword('s3cret-password');
    expect(h).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await hashPassword('s3cret-password')).not.toBe(h);
    expect(await verifyPassword('s3cret-password', h)).toBe(true);
    expect(await verifyPassword('s3cret-passworD', h)).toBe(false);
    const r = await db.pool.query<{ password_hash: string }>(`SELECT password_hash FROM operators WHERE login = 'root'`);
    expect(r.rows[0]!.password_hash).not.toContain(PW);
  });
});

describe('login', () => {
  it('sets an HttpOnly, SameSite=Strict session cookie and answers the CSRF token', async () => {
    const r = await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'ops', password: PW } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ login: 'ops', role: 'operator', csrfToken: expect.any(String) });
    const set = String(r.headers['set-cookie']);
    expect(set).toMatch(/^ccard_session=[A-Za-z0-9_-]{40,};/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).toContain('Path=/');
    expect(set).not.toContain('Secure'); // plain HTTP, no trusted proxy
    const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: cookieOf(r) } });
    expect(me.json()).toMatchObject({ login: 'ops', role: 'operator', csrfToken: r.json().csrfToken });
  });

  it('marks the cookie Secure behind a TLS proxy only when the proxy is trusted', async () => {
    const untrusted = await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'ops', password: PW }, headers: { 'x-forwarded-proto': 'https' } });
    expect(String(untrusted.headers['set-cookie'])).not.toContain('Secure');
    const proxied = buildApi({ pool: db.pool, pinKeys: keys, console: { trustProxy: true } });
    try {
      const r = await proxied.inject({ method: 'POST', url: '/auth/login', payload: { login: 'ops', password: PW }, headers: { 'x-forwarded-proto': 'https' } });
      expect(String(r.headers['set-cookie'])).toMatch(/; Secure/);
    } finally {
      await proxied.close();
    }
    const always = buildApi({ pool: db.pool, pinKeys: keys, console: { cookieSecure: 'always' } });
    try {
      const r = await always.inject({ method: 'POST', url: '/auth/login', payload: { login: 'ops', password: PW } });
      expect(String(r.headers['set-cookie'])).toMatch(/; Secure/);
    } finally {
      await always.close();
    }
  });

  it('refuses a wrong password or unknown login with one message, and no cookie', async () => {
    const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'ops', password: 'not it at all' } });
    const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'nobody', password: PW } });
    for (const r of [wrong, unknown]) {
      expect(r.statusCode).toBe(401);
      expect(r.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'invalid login or password' } });
      expect(r.headers['set-cookie']).toBeUndefined();
    }
    const bad = await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'a b', password: PW } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^login:/);
  });

  it('locks a login after repeated failures, even for the right password, and says for how long', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'locky', password: `wrong-${i}-password` } })).statusCode).toBe(401);
    }
    const r = await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'locky', password: PW } });
    expect(r.statusCode).toBe(429);
    expect(r.json().error).toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/try again in 15 minutes/) });
    // Another login is not affected.
    expect((await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'eye', password: PW } })).statusCode).toBe(200);
    // A new password (admin reset) unlocks it.
    await editOperator(ctx, 'locky', { password: 'a brand new password' });
    expect((await app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'locky', password: 'a brand new password' } })).statusCode).toBe(200);
  });

  it('rate-limits login attempts per IP', async () => {
    const limited = buildApi({ pool: db.pool, pinKeys: keys, console: { loginRateLimit: { max: 2, timeWindowMs: 60_000 } } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) {
        codes.push((await limited.inject({ method: 'POST', url: '/auth/login', payload: { login: 'nobody', password: 'whatever-password' } })).statusCode);
      }
      expect(codes).toEqual([401, 401, 429]);
    } finally {
      await limited.close();
    }
  });
});

describe('sessions reach /v1', () => {
  it('reads with the cookie alone; writes need the X-CSRF-Token header of the session', async () => {
    const s = await login(app, 'ops', PW);
    expect((await s.req('GET', '/v1/series')).statusCode).toBe(200);
    const body = { name: 'S', number: '500', count: 3, rateTable: 'std' };
    const noToken = await app.inject({ method: 'POST', url: '/v1/series', headers: { cookie: s.cookie }, payload: body });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json().error.code).toBe('CSRF');
    const other = await login(app, 'root', PW);
    const wrongToken = await app.inject({ method: 'POST', url: '/v1/series', headers: { cookie: s.cookie, 'x-csrf-token': other.csrf }, payload: body });
    expect(wrongToken.statusCode).toBe(403);
    expect((await db.pool.query(`SELECT 1 FROM series WHERE series_number = '500'`)).rowCount).toBe(0);
    const ok = await s.req('POST', '/v1/series', body);
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('API keys need no CSRF token and keep full access', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/tax-profiles', headers: { authorization: `Bearer ${apiKey}` }, payload: { name: 'vat', percent: '20' } });
    expect(r.statusCode).toBe(201);
  });

  it('refuses a made-up or missing cookie', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/series', headers: { cookie: 'ccard_session=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/series' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/auth/me' })).statusCode).toBe(401);
    for (const cookie of ['ccard_session=%E0%A4%A', 'ccard_session=', 'ccard_session', `ccard_session=${'x'.repeat(5000)}`]) {
      const r = await app.inject({ method: 'GET', url: '/v1/series', headers: { cookie } });
      expect(r.statusCode, cookie).toBe(401);
      expect(r.json().error.code).toBe('UNAUTHORIZED');
    }
  });

  it('ends a session at logout (with its CSRF token), and every session at logout-all', async () => {
    const a = await login(app, 'multi', PW);
    const b = await login(app, 'multi', PW);
    const c = await login(app, 'multi', PW);
    expect((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: a.cookie } })).statusCode).toBe(403);
    const out = await a.req('POST', '/auth/logout');
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^ccard_session=; .*Max-Age=0/);
    expect((await a.req('GET', '/v1/series')).statusCode).toBe(401);
    expect((await b.req('GET', '/v1/series')).statusCode).toBe(200);
    const all = await b.req('POST', '/auth/logout-all');
    expect(all.json()).toEqual({ ended: 2 });
    expect((await b.req('GET', '/v1/series')).statusCode).toBe(401);
    expect((await c.req('GET', '/v1/series')).statusCode).toBe(401);
  });

  it('expires idle sessions and sessions past their absolute end', async () => {
    const idle = await login(app, 'eye', PW);
    const old = await login(app, 'eye', PW);
    const fresh = await login(app, 'eye', PW);
    const hashOf = async (cookie: string) => (await import('node:crypto')).createHash('sha256').update(cookie.split('=')[1]!).digest();
    await db.pool.query(`UPDATE operator_sessions SET last_seen_at = now() - interval '61 minutes' WHERE token_hash = $1`, [await hashOf(idle.cookie)]);
    await db.pool.query(`UPDATE operator_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [await hashOf(old.cookie)]);
    expect((await idle.req('GET', '/v1/series')).statusCode).toBe(401);
    expect((await old.req('GET', '/v1/series')).json().error.message).toMatch(/session has ended/);
    expect((await fresh.req('GET', '/v1/series')).statusCode).toBe(200);
  });

  it('ends the sessions of a removed or demoted operator, and of a changed password', async () => {
    const g = await login(app, 'gone', PW);
    await removeOperator(ctx, 'gone');
    expect((await g.req('GET', '/v1/series')).statusCode).toBe(401);
    await addOperator(ctx, { login: 'demote', role: 'operator', password: PW });
    const d = await login(app, 'demote', PW);
    await editOperator(ctx, 'demote', { role: 'viewer' });
    expect((await d.req('GET', '/v1/series')).statusCode).toBe(401);
    const again = await login(app, 'demote', PW);
    expect(again.role).toBe('viewer');
  });
});
