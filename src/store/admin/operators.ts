import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { withTransaction } from '../db.ts';
import type { Queryable } from '../cards.ts';
import type { AdminContext } from './context.ts';
import { AdminError, conflict, invalid, notFound, pgCode } from './errors.ts';
import { parseInput } from './input.ts';
import { decoyHash, generatePassword, hashPassword, verifyPassword } from './passwords.ts';
import { DEFAULT_LOCKOUT, type LockoutPolicy } from './selfcare.ts';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** viewer < operator < admin: a role may do what every lower role may. */
export const roleAtLeast = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

export const loginInput = z.string().trim().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . @ -');
export const roleInput = z.enum(ROLES, { error: 'must be admin, operator or viewer' });
export const passwordInput = z
  .string()
  .min(10, 'must be at least 10 characters')
  .max(200, 'must be at most 200 characters');

export const operatorAddSchema = z.object({ login: loginInput, role: roleInput.default('operator'), password: passwordInput.optional() });
export type OperatorAddInput = z.input<typeof operatorAddSchema>;
export const operatorEditSchema = z.object({ role: roleInput.optional(), password: passwordInput.optional() }).strict();
export type OperatorEditInput = z.input<typeof operatorEditSchema>;

export interface Operator {
  login: string;
  role: Role;
  createdAt: string;
  passwordChangedAt: string;
  lockedUntil: string | null;
  activeSessions: number;
}

interface OperatorRow {
  login: string;
  role: Role;
  created_at: Date;
  password_changed_at: Date;
  locked_until: Date | null;
  sessions: number;
}
const toOperator = (r: OperatorRow): Operator => ({
  login: r.login,
  role: r.role,
  createdAt: r.created_at.toISOString(),
  passwordChangedAt: r.password_changed_at.toISOString(),
  lockedUntil: r.locked_until && r.locked_until > new Date() ? r.locked_until.toISOString() : null,
  activeSessions: Number(r.sessions),
});
const SELECT_OPERATOR = `SELECT o.login, o.role, o.created_at, o.password_changed_at, o.locked_until,
  (SELECT count(*)::int FROM operator_sessions s WHERE s.operator_id = o.id AND s.expires_at > now()) AS sessions
  FROM operators o`;

/** Adds an operator; without a password one is generated and returned (shown once). */
export async function addOperator(ctx: AdminContext, raw: OperatorAddInput): Promise<{ operator: Operator; password?: string }> {
  const i = parseInput(operatorAddSchema, raw);
  const generated = i.password === undefined ? generatePassword() : undefined;
  const hash = await hashPassword(i.password ?? generated!);
  try {
    await ctx.pool.query('INSERT INTO operators (login, role, password_hash) VALUES ($1, $2, $3)', [i.login, i.role, hash]);
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`an operator named "${i.login}" already exists`);
    throw err;
  }
  return { operator: await getOperator(ctx, i.login), ...(generated && { password: generated }) };
}

export async function listOperators(ctx: AdminContext): Promise<Operator[]> {
  const r = await ctx.pool.query<OperatorRow>(`${SELECT_OPERATOR} ORDER BY o.login`);
  return r.rows.map(toOperator);
}

export async function getOperator(ctx: AdminContext, login: string): Promise<Operator> {
  const l = parseInput(loginInput, login, 'login');
  const r = await ctx.pool.query<OperatorRow>(`${SELECT_OPERATOR} WHERE o.login = $1`, [l]);
  if (!r.rowCount) throw notFound(`unknown operator "${l}"`);
  return toOperator(r.rows[0]!);
}

/** Refuses a change that would leave no admin (nobody could manage operators or API keys from the console). */
async function keepAnAdmin(client: Queryable, exceptLogin: string): Promise<void> {
  const r = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM operators WHERE role = 'admin' AND login <> $1`, [exceptLogin]);
  if (r.rows[0]!.n === 0) throw conflict(`"${exceptLogin}" is the last admin: make another operator admin first`);
}

/**
 * Changes an operator's role and/or password. A new password, or a lower role, ends the operator's sessions
 * (a password change is what an operator does after a leak; a demoted operator must log in again as what it is now).
 */
export async function editOperator(ctx: AdminContext, login: string, raw: OperatorEditInput): Promise<Operator> {
  const l = parseInput(loginInput, login, 'login');
  const i = parseInput(operatorEditSchema, raw);
  if (i.role === undefined && i.password === undefined) throw invalid('nothing to change: give role or password');
  const hash = i.password === undefined ? undefined : await hashPassword(i.password);
  await withTransaction(ctx.pool, async (c) => {
    const cur = await c.query<{ id: bigint; role: Role }>('SELECT id, role FROM operators WHERE login = $1 FOR UPDATE', [l]);
    if (!cur.rowCount) throw notFound(`unknown operator "${l}"`);
    const { id, role } = cur.rows[0]!;
    if (i.role !== undefined && role === 'admin' && i.role !== 'admin') {
      await c.query(`SELECT 1 FROM operators WHERE role = 'admin' FOR UPDATE`);
      await keepAnAdmin(c, l);
    }
    if (i.role !== undefined) await c.query('UPDATE operators SET role = $2 WHERE id = $1', [id, i.role]);
    if (hash !== undefined) {
      await c.query('UPDATE operators SET password_hash = $2, password_changed_at = now(), failures = 0, locked_until = NULL WHERE id = $1', [id, hash]);
    }
    if (hash !== undefined || (i.role !== undefined && !roleAtLeast(i.role, role))) {
      await c.query('DELETE FROM operator_sessions WHERE operator_id = $1', [id]);
    }
  });
  return getOperator(ctx, l);
}

export async function removeOperator(ctx: AdminContext, login: string): Promise<void> {
  const l = parseInput(loginInput, login, 'login');
  await withTransaction(ctx.pool, async (c) => {
    const cur = await c.query<{ role: Role }>('SELECT role FROM operators WHERE login = $1 FOR UPDATE', [l]);
    if (!cur.rowCount) throw notFound(`unknown operator "${l}"`);
    if (cur.rows[0]!.role === 'admin') {
      await c.query(`SELECT 1 FROM operators WHERE role = 'admin' FOR UPDATE`);
      await keepAnAdmin(c, l);
    }
    await c.query('DELETE FROM operators WHERE login = $1', [l]); // sessions go with it (ON DELETE CASCADE)
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Login and sessions

export interface SessionPolicy {
  /** A session unused this long ends. */
  idleSeconds: number;
  /** A session ends this long after login, used or not. */
  absoluteSeconds: number;
}
export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleSeconds: 3600, absoluteSeconds: 12 * 3600 };

export interface Session {
  login: string;
  role: Role;
  operatorId: string;
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
}

const BAD_LOGIN = 'invalid login or password';
const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/**
 * Checks a login and password and opens a session. Attempts on one login are serialised on its row and counted as
 * the cardholders' PINs are (policy: failures within a window lock the login for a while); an unknown login costs
 * the same scrypt as a known one. Returns the session's cookie value (shown once) and CSRF token.
 */
export async function operatorLogin(
  ctx: AdminContext,
  raw: { login?: unknown; password?: unknown },
  opts: { lockout?: LockoutPolicy; session?: SessionPolicy; ip?: string; userAgent?: string } = {},
): Promise<{ token: string; session: Session }> {
  const policy = opts.lockout ?? DEFAULT_LOCKOUT;
  const sp = opts.session ?? DEFAULT_SESSION_POLICY;
  const i = parseInput(z.object({ login: loginInput, password: z.string().min(1, 'is required').max(200) }), raw);
  type Outcome = { ok: true; token: string; session: Session } | { ok: false; error: AdminError };
  const outcome = await withTransaction(ctx.pool, async (c): Promise<Outcome> => {
    const r = await c.query<{ id: bigint; role: Role; password_hash: string; failures: number; window_expired: boolean; locked_for: number | null }>(
      `SELECT id, role, password_hash, failures, window_started_at + make_interval(secs => $2) <= now() AS window_expired,
         CASE WHEN locked_until > now() THEN ceil(extract(epoch FROM locked_until - now()))::int END AS locked_for
       FROM operators WHERE login = $1 FOR UPDATE`,
      [i.login, policy.windowSeconds],
    );
    if (!r.rowCount) {
      await verifyPassword(i.password, await decoyHash());
      return { ok: false, error: new AdminError('UNAUTHORIZED', BAD_LOGIN) };
    }
    const o = r.rows[0]!;
    if (o.locked_for !== null) {
      const minutes = Math.ceil(o.locked_for / 60);
      return { ok: false, error: new AdminError('LOCKED', `too many failed logins: try again in ${minutes} minute${minutes === 1 ? '' : 's'}`) };
    }
    if (!(await verifyPassword(i.password, o.password_hash))) {
      const failures = (o.window_expired ? 0 : o.failures) + 1;
      if (failures >= policy.maxFailures) {
        await c.query(
          `UPDATE operators SET failures = 0, window_started_at = now(), locked_until = now() + make_interval(secs => $2) WHERE id = $1`,
          [o.id, policy.lockSeconds],
        );
      } else {
        await c.query(
          `UPDATE operators SET failures = $2, window_started_at = CASE WHEN $3 THEN now() ELSE window_started_at END WHERE id = $1`,
          [o.id, failures, o.window_expired],
        );
      }
      return { ok: false, error: new AdminError('UNAUTHORIZED', BAD_LOGIN) };
    }
    await c.query('UPDATE operators SET failures = 0, locked_until = NULL WHERE id = $1', [o.id]);
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const s = await c.query<{ created_at: Date; expires_at: Date }>(
      `INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, expires_at, ip, user_agent)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6) RETURNING created_at, expires_at`,
      [tokenHash(token), o.id, csrf, sp.absoluteSeconds, opts.ip ?? null, opts.userAgent?.slice(0, 300) ?? null],
    );
    // Old sessions are swept here rather than by a timer: logins are rare, and a dead session is refused anyway.
    await c.query(
      `DELETE FROM operator_sessions WHERE operator_id = $1 AND (expires_at <= now() OR last_seen_at + make_interval(secs => $2) <= now())`,
      [o.id, sp.idleSeconds],
    );
    const row = s.rows[0]!;
    return {
      ok: true,
      token,
      session: { login: i.login, role: o.role, operatorId: o.id.toString(), csrfToken: csrf, createdAt: row.created_at, expiresAt: row.expires_at },
    };
  });
  if (!outcome.ok) throw outcome.error;
  return { token: outcome.token, session: outcome.session };
}

/**
 * The session of a cookie value, or null when unknown, expired (absolute) or idle too long. last_seen_at is
 * written at most once a minute per session, so reading pages does not write on every request.
 */
export async function findSession(ctx: Pick<AdminContext, 'pool'>, token: string, sp: SessionPolicy = DEFAULT_SESSION_POLICY): Promise<Session | null> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
  const h = tokenHash(token);
  const r = await ctx.pool.query<{ login: string; role: Role; operator_id: bigint; csrf_token: string; created_at: Date; expires_at: Date; touch: boolean }>(
    `SELECT o.login, o.role, s.operator_id, s.csrf_token, s.created_at, s.expires_at,
       s.last_seen_at < now() - interval '60 seconds' AS touch
     FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
     WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at + make_interval(secs => $2) > now()`,
    [h, sp.idleSeconds],
  );
  if (!r.rowCount) return null;
  const x = r.rows[0]!;
  if (x.touch) await ctx.pool.query('UPDATE operator_sessions SET last_seen_at = now() WHERE token_hash = $1', [h]);
  return { login: x.login, role: x.role, operatorId: x.operator_id.toString(), csrfToken: x.csrf_token, createdAt: x.created_at, expiresAt: x.expires_at };
}

export async function endSession(ctx: Pick<AdminContext, 'pool'>, token: string): Promise<void> {
  await ctx.pool.query('DELETE FROM operator_sessions WHERE token_hash = $1', [tokenHash(token)]);
}

/** "Log out everywhere": ends every session of the operator. Returns how many ended. */
export async function endAllSessions(ctx: Pick<AdminContext, 'pool'>, login: string): Promise<number> {
  const r = await ctx.pool.query('DELETE FROM operator_sessions s USING operators o WHERE o.id = s.operator_id AND o.login = $1', [login]);
  return r.rowCount ?? 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Preferences (the card grid's columns, chosen and ordered, and its page size)

export const CARD_GRID_COLUMNS = [
  'serial', 'series', 'status', 'balance', 'creditLimit', 'currency', 'maxCalls', 'rateTable', 'activatedAt', 'expiresAt',
  'lastUsedAt', 'createdAt',
] as const;

export const preferencesSchema = z
  .object({
    cardColumns: z
      .array(z.enum(CARD_GRID_COLUMNS, { error: `must be one of ${CARD_GRID_COLUMNS.join(', ')}` }))
      .min(1, 'choose at least one column')
      .max(CARD_GRID_COLUMNS.length)
      .refine((a) => new Set(a).size === a.length, 'a column may appear only once')
      .optional(),
    pageSize: z.union([z.literal(25), z.literal(50), z.literal(100), z.literal(200)], { error: 'must be 25, 50, 100 or 200' }).optional(),
  })
  .strict();
export type Preferences = z.output<typeof preferencesSchema>;

export async function getPreferences(ctx: AdminContext, login: string): Promise<Preferences> {
  const r = await ctx.pool.query<{ preferences: Preferences }>('SELECT preferences FROM operators WHERE login = $1', [login]);
  if (!r.rowCount) throw notFound(`unknown operator "${login}"`);
  return r.rows[0]!.preferences;
}

/** Merges the given preferences into the operator's (a key left out keeps its value). */
export async function setPreferences(ctx: AdminContext, login: string, raw: unknown): Promise<Preferences> {
  const p = parseInput(preferencesSchema, raw ?? {});
  const r = await ctx.pool.query<{ preferences: Preferences }>(
    'UPDATE operators SET preferences = preferences || $2::jsonb WHERE login = $1 RETURNING preferences',
    [login, JSON.stringify(p)],
  );
  if (!r.rowCount) throw notFound(`unknown operator "${login}"`);
  return r.rows[0]!.preferences;
}
