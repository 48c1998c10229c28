import type { FastifyInstance, FastifySchema } from 'fastify';
import type { AdminContext } from '../../store/admin/context.ts';
import {
  addReseller,
  getReseller,
  getResellerById,
  listResellers,
  resellerAddSchema,
  resellerJson,
  resellerLedger,
  resellerReport,
  resellerReportJson,
  resellerTopupSchema,
  topUpReseller,
} from '../../store/admin/resellers.ts';
import { amountJson } from '../../store/admin/format.ts';
import { bearer, errorSchema, js } from '../schema.ts';

type Q = Record<string, string | undefined>;
const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (tags: string, summary: string, extra: Record<string, unknown> = {}): { schema: FastifySchema } => ({
  schema: { tags: [tags], summary, security: bearer, response: errors, ...extra },
});

/** Resellers (operator keys) and a reseller key's own account (GET /reseller, /reseller/report). */
export function registerResellerRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/resellers', doc('resellers', 'List resellers'), async () => ({ items: (await listResellers(ctx)).map(resellerJson) }));
  app.post('/resellers', doc('resellers', 'Add a reseller', { body: js(resellerAddSchema) }), async (req, reply) =>
    reply.code(201).send(resellerJson(await addReseller(ctx, (req.body ?? {}) as never))),
  );
  app.get('/resellers/:name', doc('resellers', 'Show a reseller'), async (req) => resellerJson(await getReseller(ctx, (req.params as Q).name!)));
  app.post('/resellers/:name/topup', doc('resellers', 'Credit (or debit, negative) a wholesale balance', { body: js(resellerTopupSchema) }), async (req) =>
    resellerJson(await topUpReseller(ctx, (req.params as Q).name!, (req.body ?? {}) as never)),
  );
  app.get('/resellers/:name/ledger', doc('resellers', "A reseller's wholesale ledger, newest first"), async (req) => ({
    items: (await resellerLedger(ctx, (req.params as Q).name!)).map((l) => ({
      ...l,
      amount: amountJson(l.amount),
      balanceAfter: amountJson(l.balanceAfter),
    })),
  }));
  app.get('/reports/resellers', doc('reports', 'Per reseller: cards sold, usage, revenue, wholesale paid and owed'), async () => ({
    items: (await resellerReport(ctx)).map(resellerReportJson),
  }));

  // A reseller key's own account (an operator key has no reseller: 404).
  app.get('/reseller', doc('reseller', "The calling reseller's account"), async (req, reply) => {
    const id = req.principal?.resellerId;
    if (!id) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'this API key belongs to no reseller' } });
    return resellerJson(await getResellerById(ctx, id));
  });
  app.get('/reseller/report', doc('reseller', "The calling reseller's report"), async (req, reply) => {
    if (!req.principal?.resellerId) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'this API key belongs to no reseller' } });
    return { items: (await resellerReport(ctx)).map(resellerReportJson) };
  });
}
