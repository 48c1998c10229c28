import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { AdminError } from '../../store/admin/errors.ts';
import { endAllSessions, endSession, findSession, loginInput, operatorLogin, type Session } from '../../store/admin/operators.ts';
import { errorBody } from '../errors.ts';
import { errorSchema, js } from '../schema.ts';
import { CSRF_HEADER, readCookie, SESSION_COOKIE, sessionCookie, type ConsoleAuthOptions } from '../console-auth.ts';

const meSchema = {
  type: 'object',
  properties: {
    login: { type: 'string' },
    role: { type: 'string', enum: ['admin', 'operator', 'viewer'] },
    csrfToken: { type: 'string', description: `send it as the ${CSRF_HEADER} header with every POST, PUT, PATCH and DELETE` },
    expiresAt: { type: 'string', format: 'date-time', description: 'the absolute end of the session (it also ends when idle)' },
  },
  required: ['login', 'role', 'csrfToken', 'expiresAt'],
};
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema };
const cookieAuth = [{ session: [] as string[] }];

const meJson = (s: Session) => ({ login: s.login, role: s.role, csrfToken: s.csrfToken, expiresAt: s.expiresAt.toISOString() });

/**
 * Operator login for the console: POST /auth/login sets the session cookie; GET /auth/me tells the page who is
 * logged in and its CSRF token; POST /auth/logout ends this session, POST /auth/logout-all every session of the
 * operator ("log out everywhere"). Login is rate-limited per IP and locked per login after repeated failures.
 */
export function registerAuthRoutes(app: FastifyInstance, ctx: AdminContext, o: ConsoleAuthOptions): void {
  const current = async (req: FastifyRequest): Promise<{ token: string; session: Session }> => {
    const token = readCookie(req, SESSION_COOKIE);
    const session = token ? await findSession(ctx, token, o.session) : null;
    if (!token || !session) throw new AdminError('UNAUTHORIZED', 'not logged in');
    return { token, session };
  };
  const csrfOk = (req: FastifyRequest, s: Session) => req.headers[CSRF_HEADER] === s.csrfToken;
  const clear = (req: FastifyRequest, reply: FastifyReply) => reply.header('set-cookie', sessionCookie(req, o, '', 0));

  app.post(
    '/login',
    {
      config: { rateLimit: { max: o.loginRateLimit.max, timeWindow: o.loginRateLimit.timeWindowMs } },
      schema: {
        tags: ['auth'],
        summary: 'Operator login: sets the session cookie (HttpOnly, SameSite=Strict, Secure over TLS)',
        body: js(z.object({ login: loginInput, password: z.string() })),
        response: { 200: meSchema, ...errors },
      },
    },
    async (req, reply) => {
      const body = (req.body ?? {}) as { login?: unknown };
      const { token, session } = await operatorLogin(ctx, body as never, {
        lockout: o.lockout,
        session: o.session,
        ip: req.ip,
        userAgent: req.headers['user-agent'],
      }).catch((err: unknown) => {
        // One line per refused login, with the address, for the operator's log watcher (fail2ban and the like).
        if (err instanceof AdminError && err.code !== 'INVALID_INPUT') {
          req.log.warn({ login: String(body.login ?? '').slice(0, 64), ip: req.ip, code: err.code }, 'console login refused');
        }
        throw err;
      });
      req.log.info({ login: session.login, ip: req.ip }, 'console login');
      reply.header('set-cookie', sessionCookie(req, o, token, o.session.absoluteSeconds));
      reply.header('cache-control', 'no-store');
      return meJson(session);
    },
  );

  app.get('/me', { schema: { tags: ['auth'], summary: 'The logged-in operator, its role and CSRF token', security: cookieAuth, response: { 200: meSchema, ...errors } } }, async (req, reply) => {
    const { session } = await current(req);
    reply.header('cache-control', 'no-store');
    return meJson(session);
  });

  app.post('/logout', { schema: { tags: ['auth'], summary: 'End this session (X-CSRF-Token required)', security: cookieAuth, response: { 204: { type: 'null' }, ...errors } } }, async (req, reply) => {
    const token = readCookie(req, SESSION_COOKIE);
    const session = token ? await findSession(ctx, token, o.session) : null;
    if (token && session) {
      if (!csrfOk(req, session)) return reply.code(403).send(errorBody('CSRF', `missing or wrong ${CSRF_HEADER} header`));
      await endSession(ctx, token);
    }
    clear(req, reply);
    return reply.code(204).send();
  });

  app.post(
    '/logout-all',
    { schema: { tags: ['auth'], summary: 'Log out everywhere: end every session of this operator (X-CSRF-Token required)', security: cookieAuth, response: errors } },
    async (req, reply) => {
      const { session } = await current(req);
      if (!csrfOk(req, session)) return reply.code(403).send(errorBody('CSRF', `missing or wrong ${CSRF_HEADER} header`));
      const ended = await endAllSessions(ctx, session.login);
      clear(req, reply);
      return { ended };
    },
  );
}
