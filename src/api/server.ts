import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import type { Pool } from 'pg';
import type { PinKeys } from '../store/pin.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { AdminContext, OnBalanceChange } from '../store/admin/context.ts';
import { DEFAULT_LOCKOUT, type LockoutPolicy } from '../store/admin/selfcare.ts';
import { registerInputGuards } from './guards.ts';
import { registerSecurityHeaders } from './headers.ts';
import { DEFAULT_CONSOLE_AUTH, requirePinExportConfirmation, v1Authenticate, type ConsoleAuthOptions } from './console-auth.ts';
import { registerAuditHook } from './audit-hook.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerOperatorRoutes } from './routes/operators.ts';
import { registerConsoleRoutes } from './routes/console.ts';
import { registerSelfcareCardRoutes } from './routes/selfcare-card.ts';
import { registerWeb } from './web.ts';
import { apiClientErrorHandler, apiErrorHandler, errorBody } from './errors.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerSelfcareRoutes } from './routes/selfcare.ts';
import { registerOpsRoutes, type OpsRouteOptions } from './routes/ops.ts';
import { registerCdrRoute } from './routes/cdr.ts';
import { registerCallsRoutes } from './routes/calls.ts';
import { BulkGate, DEFAULT_BULK_LIMITS, limitedBody, type BulkWork } from '../store/bulk.ts';
import { registerFreeswitchRoutes, type XmlCurlOptions } from './routes/freeswitch.ts';
import { registerDeviceRoutes } from './routes/devices.ts';
import { registerVoucherRoutes } from './routes/vouchers.ts';
import { registerSelfcareVoucherRoutes } from './routes/selfcare-voucher.ts';
import { registerProvisionRoutes, type ProvisionOptions } from './routes/provision.ts';
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
  /** FreeSWITCH mod_json_cdr posts here (POST /cdr, no API key; see src/api/routes/cdr.ts). */
  onJsonCdr?: (body: string) => Promise<{ status: number; body: unknown }>;
  /** `user:password` mod_json_cdr must send (Basic) on POST /cdr; unset: loopback clients only. */
  cdrCredentials?: string;
  selfcare?: {
    tokenTtlSeconds?: number;
    lockout?: LockoutPolicy;
    /** Login attempts per IP (default 10 per minute). */
    loginRateLimit?: { max: number; timeWindowMs: number };
  };
  /** GET /health, /ready and /metrics (src/api/routes/ops.ts), when given. */
  ops?: OpsRouteOptions;
  /** mod_xml_curl's dialplan and directory bindings (POST /fs/dialplan, /fs/directory). */
  xmlCurl?: XmlCurlOptions;
  /** CCARD_SIP_DOMAIN: the realm device passwords are hashed with (default 127.0.0.1). */
  sipDomain?: string;
  /** POST /provision limits (tests shorten them). */
  provision?: Omit<ProvisionOptions, 'sipDomain'>;
  /** Largest request body (rate CSV imports), default 50 MiB. */
  bodyLimit?: number;
  /** Operator console: sessions, login lockout, cookie flags, proxy trust. */
  console?: Partial<ConsoleAuthOptions>;
  /** The built console (default dist/web); false: no console, API only. */
  webRoot?: string | false;
  /** Exports, imports and reports: their own pool behind a bounded gate (default: a small gate on `pool`). */
  bulk?: BulkWork;
}

/**
 * The HTTP API: the operator API under /v1 (Bearer API key), cardholder self-care under /selfcare, OpenAPI at
 * /docs, and POST /cdr for mod_json_cdr when onJsonCdr is given. The lead mounts it in the service.
 */
export function buildApi(opts: ApiOptions): FastifyInstance {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: opts.bodyLimit ?? 50 * 1024 * 1024,
    clientErrorHandler: apiClientErrorHandler,
    frameworkErrors: (err, req, reply) => apiErrorHandler(err, req, reply),
    trustProxy: opts.console?.trustProxy ?? false,
  }) as unknown as FastifyInstance;
  const consoleAuth: ConsoleAuthOptions = { ...DEFAULT_CONSOLE_AUTH, ...opts.console };
  app.decorateRequest('actor', null);
  const onBalanceChange: OnBalanceChange | undefined =
    opts.onBalanceChange ?? (opts.live ? async (cardId, snap) => void (await opts.live!.load(cardId, snap)) : undefined);
  const bulk: BulkWork = opts.bulk ?? { pool: opts.pool, gate: new BulkGate(DEFAULT_BULK_LIMITS), stallMs: 60_000 };
  const ctx: AdminContext = { pool: opts.pool, pinKeys: opts.pinKeys, bulk, ...(onBalanceChange && { onBalanceChange }) };
  // Shutdown never waits on an export: running ones are cut, queued ones refused.
  app.addHook('preClose', async () => bulk.gate.close());

  // The zod schemas validate inside the handlers (shared with the CLI); route schemas are documentation only.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setErrorHandler(apiErrorHandler);
  registerSecurityHeaders(app);
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
          session: { type: 'apiKey', in: 'cookie', name: 'ccard_session', description: 'operator console session from POST /auth/login (+ X-CSRF-Token on writes)' },
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
      // CSV bodies (rate imports) are read as a stream by the handler, in bounded memory.
      const limit = opts.bodyLimit ?? 50 * 1024 * 1024;
      v1.addContentTypeParser(['text/csv', 'text/plain'], (req, payload, done) => {
        try {
          done(null, limitedBody(payload, limit, req.headers['content-length'], bulk.stallMs));
        } catch (err) {
          done(err as Error, undefined);
        }
      });
      v1.addHook('onRequest', v1Authenticate(ctx, consoleAuth));
      registerInputGuards(v1);
      v1.addHook('preHandler', requirePinExportConfirmation);
      registerPrincipalScope(v1, ctx);
      registerAuditHook(v1, ctx);
      registerAdminRoutes(v1, ctx);
      registerCallsRoutes(v1, ctx);
      registerOperatorRoutes(v1, ctx);
      registerConsoleRoutes(v1, ctx, { ...(opts.live && { live: opts.live }) });
      registerDeviceRoutes(v1, ctx, opts.sipDomain ?? '127.0.0.1');
      registerVoucherRoutes(v1, ctx);
      registerRoutingRoutes(v1, ctx);
      registerResellerRoutes(v1, ctx);
    },
    { prefix: '/v1' },
  );

  app.register(async (a) => registerAuthRoutes(a, ctx, consoleAuth), { prefix: '/auth' });

  app.register(
    async (sc) => {
      registerInputGuards(sc);
      registerSelfcareRoutes(sc, ctx, {
        tokenTtlSeconds: opts.selfcare?.tokenTtlSeconds ?? 900,
        lockout: opts.selfcare?.lockout ?? DEFAULT_LOCKOUT,
        loginRateLimit: opts.selfcare?.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 },
      });
      registerSelfcareCardRoutes(sc, ctx);
      registerSelfcareVoucherRoutes(sc, ctx, { lockout: opts.selfcare?.lockout ?? DEFAULT_LOCKOUT, rateLimit: opts.selfcare?.loginRateLimit });
    },
    { prefix: '/selfcare' },
  );

  if (opts.ops) app.register(async (ops) => registerOpsRoutes(ops, opts.ops!));

  if (opts.webRoot !== false) registerWeb(app, opts.webRoot);

  if (opts.onJsonCdr) registerCdrRoute(app, { handler: opts.onJsonCdr, credentials: opts.cdrCredentials });

  app.register(async (p) => registerProvisionRoutes(p, ctx, { sipDomain: opts.sipDomain ?? '127.0.0.1', ...opts.provision }));
  if (opts.xmlCurl) app.register(async (fs) => registerFreeswitchRoutes(fs, ctx, opts.xmlCurl!));
  return app;
}
