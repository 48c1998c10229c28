import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { invalid } from '../../store/admin/errors.ts';
import { dateInput, pageInput, parseInput } from '../../store/admin/input.ts';
import { listUnbilled, reconcile, reconciliationJson, unbilledJson } from '../../store/reconcile.ts';
import { bearer, errorSchema, js } from '../schema.ts';

const unbilledSchema = z.object(pageInput).strict();
const reconcileSchema = z.object({ from: dateInput, to: dateInput }).strict();
const response = { 400: errorSchema, 401: errorSchema };

/** GET /v1/calls/unbilled and /v1/calls/reconcile: what `ccard calls unbilled` / `reconcile` print. */
export function registerCallsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get(
    '/calls/unbilled',
    { schema: { tags: ['calls'], summary: 'Calls whose hold ran out with no CDR (billed if it still comes)', security: bearer, response, querystring: js(unbilledSchema) } },
    async (req) => {
      const q = parseInput(unbilledSchema, req.query);
      const items = await listUnbilled(ctx.pool, { limit: q.limit + 1, offset: q.offset });
      return { items: items.slice(0, q.limit).map(unbilledJson), hasMore: items.length > q.limit };
    },
  );
  app.get(
    '/calls/reconcile',
    { schema: { tags: ['calls'], summary: 'Calls started in [from, to), their CDRs and the ledger compared', security: bearer, response, querystring: js(reconcileSchema) } },
    async (req) => {
      const q = parseInput(reconcileSchema, req.query);
      if (q.to <= q.from) throw invalid('to must be after from');
      return reconciliationJson(await reconcile(ctx.pool, q.from, q.to));
    },
  );
}
