import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import type { Pool } from 'pg';
import type { PinKeys } from '../store/pin.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { AdminContext, OnBalanceChange } from '../store/admin/context.ts';
import { DEFAULT_LOCKOUT, type LockoutPolicy } from '../store/admin/selfcare.ts';
import { apiKeyPrincipal } from '../store/admin/api-keys.ts';
import { apiErrorHandler, errorBody } from './errors.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerSelfcareRoutes } from './routes/selfcare.ts';
import { registerRoutingRoutes } from './routes/routing.ts';
import { registerResellerRoutes } from './routes/resellers.ts';
import { registerPrincipalScope } from './principal.ts';

export interface ApiOptions {
  pool: Pool;
  pinKeys: PinKeys;
  logger?: FastifyBaseLogger;
  /** The live balance store: refreshed after every committed balance change (unless onBalanceChange is given). */
  live?: LiveBalanceStore;
  /** Called after every committed balance change made through the API. */
  onBalanceChange?: OnBalanceChange;
  /** FreeSWITCH mod_json_cdr posts here (POST /cdr, no API key, any content type, raw body as text). */
  onJsonCdr?: (body: string) => Promise<{ status: number; body: unknown }>;
  selfcare?: {
    tokenTtlSeconds?: number;
    lockout?: LockoutPolicy;
    /** Login attempts per IP (default 10 per minute). */
    loginRateLimit?: { max: number; timeWindowMs: number };
  };
  /** Largest request body (rate CSV imports), default 50 MiB. */
  bodyLimit?: number;
}

/**
 * The HTTP API: the operator API under /v1 (Bearer API key), cardholder self-care under /selfcare, OpenAPI at
 * /docs, and POST /cdr for mod_json_cdr when onJsonCdr is given. The lead mounts it in the service.
 */
export function buildApi(opts: ApiOptions): FastifyInstance {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: opts.bodyLimit ?? 50 * 1024 * 1024,
  }) as unknown as FastifyInstance;
  const onBalanceChange: OnBalanceChange | undefined =
    opts.onBalanceChange ?? (opts.live ? async (cardId, snap) => void (await opts.live!.load(cardId, snap)) : undefined);
  const ctx: AdminContext = { pool: opts.pool, pinKeys: opts.pinKeys, ...(onBalanceChange && { onBalanceChange }) };

  // The zod schemas validate inside the handlers (shared with the CLI); route schemas are documentation only.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setErrorHandler(apiErrorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  app.register(swagger, {
    openapi: {
      info: { title: 'ccard API', version: '1', description: 'Prepaid calling cards: operator API (/v1) and cardholder self-care.' },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'an API key from `ccard apikey create`' },
          selfcare: { type: 'http', scheme: 'bearer', description: 'a token from POST /selfcare/login' },
        },
      },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, c) => ({ statusCode: 429, message: `too many requests: retry in ${c.after}` }),
  });

  app.register(
    async (v1) => {
      v1.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
      v1.addHook('onRequest', async (req, reply) => {
        const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        if (!m) return reply.code(401).send(errorBody('UNAUTHORIZED', 'an API key is required: Authorization: Bearer <key>'));
        const principal = await apiKeyPrincipal(ctx, m[1]!);
        if (!principal) return reply.code(401).send(errorBody('UNAUTHORIZED', 'invalid or revoked API key'));
        req.principal = principal;
        req.log.debug({ apiKey: principal.name }, 'api key');
      });
      registerPrincipalScope(v1, ctx);
      registerAdminRoutes(v1, ctx);
      registerRoutingRoutes(v1, ctx);
      registerResellerRoutes(v1, ctx);
    },
    { prefix: '/v1' },
  );

  app.register(
    async (sc) => {
      registerSelfcareRoutes(sc, ctx, {
        tokenTtlSeconds: opts.selfcare?.tokenTtlSeconds ?? 900,
        lockout: opts.selfcare?.lockout ?? DEFAULT_LOCKOUT,
        loginRateLimit: opts.selfcare?.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 },
      });
    },
    { prefix: '/selfcare' },
  );

  if (opts.onJsonCdr) {
    const handler = opts.onJsonCdr;
    app.register(async (cdr) => {
      // mod_json_cdr posts JSON (sometimes form-encoded) without auth from localhost: take any body as raw text.
      cdr.removeAllContentTypeParsers();
      cdr.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
      cdr.post('/cdr', { schema: { hide: true } }, async (req, reply) => {
        const r = await handler(typeof req.body === 'string' ? req.body : '');
        return reply.code(r.status).send(r.body);
      });
    });
  }
  return app;
}
