import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ReadyReport } from '../../app/readiness.ts';
import { METRICS_CONTENT_TYPE, metricsText } from '../../metrics/index.ts';
import { errorBody } from '../errors.ts';

export interface OpsRouteOptions {
  readiness: () => Promise<ReadyReport>;
  /** When set, GET /metrics requires `Authorization: Bearer <token>` (CCARD_METRICS_TOKEN). */
  metricsToken?: string | undefined;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Operating endpoints, outside /v1 and without an API key: GET /health (the process is alive), GET /ready
 * (PostgreSQL, migrations and Redis answer and the process is not draining: 200, else 503 with what failed) for
 * load balancers and systemd, and GET /metrics in the Prometheus text format (optionally behind a bearer token).
 */
export function registerOpsRoutes(app: FastifyInstance, opts: OpsRouteOptions): void {
  const token = opts.metricsToken ? digest(opts.metricsToken) : undefined;

  app.get('/health', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/ready', { schema: { hide: true } }, async (_req, reply) => {
    const r = await opts.readiness();
    reply.header('cache-control', 'no-store');
    const body = { status: r.ready ? 'ready' : 'not_ready', draining: r.draining, checks: r.checks };
    if (r.ready) return reply.code(200).send(body);
    return reply.code(503).send({ ...errorBody('NOT_READY', r.problems.join('; ')), ...body });
  });

  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (token) {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m || !timingSafeEqual(digest(m[1]!), token)) {
        return reply.code(401).send(errorBody('UNAUTHORIZED', 'the metrics token is required: Authorization: Bearer <CCARD_METRICS_TOKEN>'));
      }
    }
    try {
      const text = await metricsText();
      return reply.code(200).header('cache-control', 'no-store').type(METRICS_CONTENT_TYPE).send(text);
    } catch (err) {
      req.log.warn({ err }, 'metrics collection failed');
      return reply.code(503).send(errorBody('METRICS_UNAVAILABLE', 'metrics could not be collected; retry'));
    }
  });
}
