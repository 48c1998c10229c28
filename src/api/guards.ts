import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { errorBody } from './errors.ts';

/**
 * Input guards for a scope of routes (registered before its routes):
 * - a query parameter the route does not document is refused with 400 naming it (`?serie=100` must not silently
 *   mean "every series"); the allowed names are the `properties` of the route's querystring schema, none without;
 * - a NUL character anywhere in the query, the path parameters or the body is refused with 400 (PostgreSQL cannot
 *   store it in text and would answer with an error).
 */
export function registerInputGuards(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const qs = route.schema?.querystring as { properties?: Record<string, unknown> } | undefined;
    route.config = { ...(route.config as object), allowedQuery: Object.keys(qs?.properties ?? {}) } as never;
  });
  app.addHook('preValidation', async (req: FastifyRequest, reply: FastifyReply) => {
    const names = (req.routeOptions.config as { allowedQuery?: string[] }).allowedQuery;
    if (names) {
      const unknown = Object.keys((req.query ?? {}) as object).filter((k) => !names.includes(k));
      if (unknown.length) {
        const hint = names.length ? ` (this endpoint takes: ${names.join(', ')})` : ' (this endpoint takes none)';
        return reply.code(400).send(errorBody('INVALID_INPUT', `unknown query parameter "${printable(unknown[0]!)}"${hint}`));
      }
    }
    const where = nulIn(req.query, 'query') ?? nulIn(req.params, 'path') ?? nulIn(req.body, 'body');
    if (where) return reply.code(400).send(errorBody('INVALID_INPUT', `${where}: must not contain a NUL character`));
  });
}

const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 100);

/** The path of the first string (or key) holding U+0000, or undefined. */
function nulIn(v: unknown, path: string, depth = 0): string | undefined {
  if (typeof v === 'string') return v.includes('\u0000') ? path : undefined;
  if (v === null || typeof v !== 'object' || depth > 32) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const w = nulIn(v[i], `${path}[${i}]`, depth + 1);
      if (w) return w;
    }
    return undefined;
  }
  for (const [k, x] of Object.entries(v)) {
    const p = `${path}.${printable(k)}`;
    if (k.includes('\u0000')) return p;
    const w = nulIn(x, p, depth + 1);
    if (w) return w;
  }
  return undefined;
}
