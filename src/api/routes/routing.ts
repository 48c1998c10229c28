import type { FastifyInstance, FastifySchema } from 'fastify';
import type { AdminContext } from '../../store/admin/context.ts';
import {
  addCarrier,
  addPlan,
  assignPlan,
  assignSchema,
  carrierAddSchema,
  carrierEditSchema,
  carrierJson,
  editCarrier,
  editPlan,
  entrySetSchema,
  getCarrier,
  getPlan,
  listCarriers,
  listPlans,
  planAddSchema,
  planEditSchema,
  planJson,
  removeCarrier,
  removeEntry,
  removePlan,
  setEntry,
} from '../../store/admin/routing.ts';
import { bearer, errorSchema, js } from '../schema.ts';

type Q = Record<string, string | undefined>;
const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (tags: string, summary: string, extra: Record<string, unknown> = {}): { schema: FastifySchema } => ({
  schema: { tags: [tags], summary, security: bearer, response: errors, ...extra },
});

/** Carriers and routing plans (operator keys only: a reseller's key gets 404 here, see src/api/principal.ts). */
export function registerRoutingRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/carriers', doc('carriers', 'List carriers'), async () => ({ items: (await listCarriers(ctx)).map(carrierJson) }));
  app.post('/carriers', doc('carriers', 'Add a carrier (its buy-rate table is created empty when missing)', { body: js(carrierAddSchema) }), async (req, reply) =>
    reply.code(201).send(carrierJson(await addCarrier(ctx, (req.body ?? {}) as never))),
  );
  app.get('/carriers/:name', doc('carriers', 'Show a carrier'), async (req) => carrierJson(await getCarrier(ctx, (req.params as Q).name!)));
  app.patch('/carriers/:name', doc('carriers', 'Edit a carrier', { body: js(carrierEditSchema) }), async (req) =>
    carrierJson(await editCarrier(ctx, (req.params as Q).name!, (req.body ?? {}) as never)),
  );
  app.delete('/carriers/:name', doc('carriers', 'Remove a carrier no plan names and no call used'), async (req, reply) => {
    await removeCarrier(ctx, (req.params as Q).name!);
    return reply.code(204).send();
  });

  app.get('/routing-plans', doc('routing', 'List routing plans'), async () => ({ items: await listPlans(ctx) }));
  app.post('/routing-plans', doc('routing', 'Add a routing plan', { body: js(planAddSchema) }), async (req, reply) =>
    reply.code(201).send(planJson(await addPlan(ctx, (req.body ?? {}) as never))),
  );
  app.get('/routing-plans/:name', doc('routing', 'Show a routing plan and its entries'), async (req) => planJson(await getPlan(ctx, (req.params as Q).name!)));
  app.patch('/routing-plans/:name', doc('routing', 'Edit a routing plan', { body: js(planEditSchema) }), async (req) =>
    planJson(await editPlan(ctx, (req.params as Q).name!, (req.body ?? {}) as never)),
  );
  app.delete('/routing-plans/:name', doc('routing', 'Remove a routing plan no series or card uses'), async (req, reply) => {
    await removePlan(ctx, (req.params as Q).name!);
    return reply.code(204).send();
  });
  app.put(
    '/routing-plans/:name/entries',
    doc('routing', 'Set the entry for a prefix (prefix "default" or "": every number); mode ordered | lcr | block', { body: js(entrySetSchema) }),
    async (req) => planJson(await setEntry(ctx, (req.params as Q).name!, (req.body ?? {}) as never)),
  );
  app.delete('/routing-plans/:name/entries/:prefix', doc('routing', 'Remove the entry for a prefix'), async (req, reply) => {
    const p = req.params as Q;
    await removeEntry(ctx, p.name!, p.prefix!);
    return reply.code(204).send();
  });
  app.post(
    '/routing-plans/assign',
    doc('routing', 'Name the plan of a series or a card ({ plan, series } or { plan, card }; plan "none" clears it)', { body: js(assignSchema) }),
    async (req) => assignPlan(ctx, (req.body ?? {}) as never),
  );
}
