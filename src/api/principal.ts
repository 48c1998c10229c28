import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdminContext } from '../store/admin/context.ts';
import { foreignObject, runScoped } from '../store/admin/scope.ts';
import { errorBody } from './errors.ts';

/**
 * Who is calling the API: an API key now (a console login later). resellerId null is the operator. This file is
 * the one place that turns a principal into what it may see: the scope every store query filters by
 * (src/store/admin/scope.ts) and, for a reseller, the routes it may use and the objects it may name.
 */
export interface Principal {
  name: string;
  resellerId: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

type Q = Record<string, string | undefined>;

/**
 * The routes a reseller may use (under /v1). Everything else (access numbers, rates, tax, carriers, routing, caller
 * IDs, balance adjustments, per-card pricing) is the operator's: a reseller gets the 404 of a route that does not
 * exist, so a key cannot even learn what is there.
 */
const RESELLER_ROUTES = new Set([
  'GET /series',
  'POST /series',
  'GET /series/:number',
  'PATCH /series/:number',
  'GET /cards',
  'GET /cards/export',
  'GET /cards/:serial',
  'POST /cards/:serial/status',
  'POST /cards/:serial/topup',
  'GET /cards/:serial/history',
  'GET /cdrs',
  'GET /cdrs/export',
  'GET /reports/costs',
  'GET /reseller',
  'GET /reseller/report',
]);

const noRoute = (req: FastifyRequest, reply: FastifyReply) =>
  reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));

/**
 * A reseller naming a card or series that is not its own gets exactly what naming a missing one gets (the store's
 * own 404 text), whether it is named in the path or in a filter.
 */
function ownsAll(ctx: AdminContext, resellerId: string, req: FastifyRequest): Promise<string | undefined> {
  const params = (req.params ?? {}) as Q;
  const query = (req.query ?? {}) as Q;
  const serials = [params.serial, query.card].filter((s): s is string => typeof s === 'string');
  const numbers = [params.number, query.series].filter((s): s is string => typeof s === 'string');
  return foreignObject(ctx.pool, resellerId, serials, numbers);
}

/**
 * Registers, after the authentication hook has set req.principal: the reseller guard (preHandler: routes and
 * ownership) and the scope around the rest of the request (every store query of the handler runs inside it).
 * `prefix` is the route group's prefix ('/v1'); another group (a console API with logins) registers it the same way
 * once its own authentication sets req.principal.
 */
export function registerPrincipalScope(app: FastifyInstance, ctx: AdminContext, prefix = '/v1'): void {
  app.addHook('preHandler', async (req, reply) => {
    const p = req.principal;
    if (!p || p.resellerId === null) return;
    const url = req.routeOptions.url ?? '';
    const route = `${req.method} ${url.startsWith(prefix) ? url.slice(prefix.length) : url}`;
    if (!RESELLER_ROUTES.has(route)) return noRoute(req, reply);
    const denied = await ownsAll(ctx, p.resellerId, req);
    if (denied) return reply.code(404).send(errorBody('NOT_FOUND', denied));
  });
  // Callback style on purpose: run() wraps the rest of the request's lifecycle (fastify continues from done()).
  app.addHook('preHandler', (req, _reply, done) => {
    runScoped({ resellerId: req.principal?.resellerId ?? null }, done);
  });
}
