import type { FastifyReply, FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { AdminContext } from '../store/admin/context.ts';
import { apiKeyPrincipal } from '../store/admin/api-keys.ts';
import { DEFAULT_SESSION_POLICY, findSession, roleAtLeast, type Role, type SessionPolicy } from '../store/admin/operators.ts';
import { DEFAULT_LOCKOUT, type LockoutPolicy } from '../store/admin/selfcare.ts';
import { recordAudit } from '../store/admin/audit.ts';
import { errorBody } from './errors.ts';
import { isTrue, requiredRole } from './access.ts';

/** Who is calling: an operator through its session cookie, or an API key. `id` scopes idempotency keys and audit. */
export interface Actor {
  kind: 'operator' | 'apikey';
  name: string;
  /** "operator:<login>" or "apikey:<name>". */
  id: string;
  /** API keys act as admin. */
  role: Role;
  /** Operator sessions only. */
  csrfToken?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    actor: Actor | null;
  }
}

export interface ConsoleAuthOptions {
  session: SessionPolicy;
  lockout: LockoutPolicy;
  /** Login attempts per IP (default 10 per minute). */
  loginRateLimit: { max: number; timeWindowMs: number };
  /** 'auto': Secure when the request came over TLS (or X-Forwarded-Proto: https from a trusted proxy). */
  cookieSecure: 'auto' | 'always' | 'never';
  /** X-Forwarded-Proto / -For are believed (ccard behind a TLS-terminating reverse proxy). */
  trustProxy: boolean;
}

export const DEFAULT_CONSOLE_AUTH: ConsoleAuthOptions = {
  session: DEFAULT_SESSION_POLICY,
  lockout: DEFAULT_LOCKOUT,
  loginRateLimit: { max: 10, timeWindowMs: 60_000 },
  cookieSecure: 'auto',
  trustProxy: false,
};

export const SESSION_COOKIE = 'ccard_session';
export const CSRF_HEADER = 'x-csrf-token';

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // malformed: as if absent
      }
    }
  }
  return undefined;
}

function secure(req: FastifyRequest, o: ConsoleAuthOptions): boolean {
  if (o.cookieSecure !== 'auto') return o.cookieSecure === 'always';
  if ((req.raw.socket as { encrypted?: boolean }).encrypted) return true;
  const proto = req.headers['x-forwarded-proto'];
  return o.trustProxy && typeof proto === 'string' && proto.split(',')[0]!.trim().toLowerCase() === 'https';
}

/** The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure over TLS. */
export function sessionCookie(req: FastifyRequest, o: ConsoleAuthOptions, value: string, maxAgeSeconds: number): string {
  const parts = [`${SESSION_COOKIE}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (secure(req, o)) parts.push('Secure');
  return parts.join('; ');
}

const sameToken = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The /v1 onRequest hook: a Bearer API key, or an operator session cookie (and then, for a state-changing request,
 * the X-CSRF-Token header equal to the session's token: the synchronizer-token pattern), then the role check.
 * A refusal for the role is recorded in the audit log.
 */
export function v1Authenticate(ctx: AdminContext, o: ConsoleAuthOptions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (m) {
      const principal = await apiKeyPrincipal(ctx, m[1]!);
      if (!principal) return reply.code(401).send(errorBody('UNAUTHORIZED', 'invalid or revoked API key'));
      const name = principal.name;
      // A reseller's key is confined to its own objects by the principal scope (src/api/principal.ts).
      req.principal = principal;
      req.actor = { kind: 'apikey', name, id: `apikey:${name}`, role: principal.resellerId === null ? 'admin' : 'operator' };
    } else {
      const token = readCookie(req, SESSION_COOKIE);
      if (!token) {
        return reply
          .code(401)
          .send(errorBody('UNAUTHORIZED', 'an API key is required: Authorization: Bearer <key> (or log in to the console)'));
      }
      const s = await findSession(ctx, token, o.session);
      if (!s) return reply.code(401).send(errorBody('UNAUTHORIZED', 'your session has ended: log in again'));
      req.actor = { kind: 'operator', name: s.login, id: `operator:${s.login}`, role: s.role, csrfToken: s.csrfToken };
      req.principal = { name: `operator:${s.login}`, resellerId: null };
      if (STATE_CHANGING.has(req.method)) {
        const given = req.headers[CSRF_HEADER];
        if (typeof given !== 'string' || !sameToken(given, s.csrfToken)) {
          return reply.code(403).send(errorBody('CSRF', `missing or wrong ${CSRF_HEADER} header (GET /auth/me gives the token)`));
        }
      }
    }
    const url = req.routeOptions.url;
    if (url === undefined) return; // no such route: the not-found handler answers
    // A reseller's key is not judged by role: the principal scope answers everything outside its own routes and
    // objects with the 404 of a missing one (src/api/principal.ts), so it cannot even learn which routes exist.
    if (req.principal?.resellerId != null) return;
    const query = (req.query ?? {}) as Record<string, unknown>;
    const need = (req.routeOptions.config as { role?: Role } | undefined)?.role ?? requiredRole(req.method, url, query);
    if (!roleAtLeast(req.actor.role, need)) {
      await recordAudit(ctx, { actor: req.actor.id, action: `${req.method} ${url}`, object: null, status: 403, request: { params: req.params, query } }).catch(
        (err) => req.log.warn({ err }, 'audit write failed'),
      );
      return reply.code(403).send(errorBody('FORBIDDEN', `this needs the ${need} role; you are ${req.actor.role}`));
    }
  };
}

/**
 * A PIN export needs an explicit confirm=pins. A preHandler, so it runs after the input guards: a request with a
 * parameter the route does not take is refused for that first (`?withPins=true&serie=100` names `serie`).
 */
export async function requirePinExportConfirmation(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  if (req.routeOptions.url !== '/v1/cards/export') return;
  const query = (req.query ?? {}) as Record<string, unknown>;
  if (isTrue(query.withPins) && query.confirm !== 'pins') {
    return reply.code(400).send(errorBody('INVALID_INPUT', 'exporting PINs needs confirm=pins (the export is recorded in the audit log)'));
  }
}
