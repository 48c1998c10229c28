import { PassThrough, Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { createSeries, editSeries, getSeries, listSeries, seriesCreateSchema, seriesEditSchema } from '../../store/admin/series.ts';
import {
  adjust,
  adjustSchema,
  cardFilterSchema,
  cardHistory,
  cardJson,
  cardLimitsSchema,
  cardSearchSchema,
  exportCards,
  getCard,
  ledgerEntryJson,
  searchCards,
  setCardLimits,
  setCardStatus,
  topUp,
  type MoneyMoveResult,
} from '../../store/admin/cards.ts';
import { addDid, didAddSchema, didEditSchema, editDid, getDid, listDids, removeDid } from '../../store/admin/dids.ts';
import { addTaxProfile, listTaxProfiles, removeTaxProfile, taxAddSchema, taxProfileJson } from '../../store/admin/tax.ts';
import { addCallerId, listCallerIds, removeCallerId } from '../../store/admin/caller-ids.ts';
import { exportRateTable, importRateTable, rateTableName, listRateTablesAdmin, listTableRates, rateImportOptionsSchema } from '../../store/admin/rates.ts';
import { cdrFilterSchema, cdrJson, cdrListSchema, costReport, costReportJson, costReportSchema, exportCdrs, listCdrs } from '../../store/admin/cdrs.ts';
import { amountJson } from '../../store/admin/format.ts';
import { CARD_STATUSES } from '../../store/cards.ts';
import { invalid } from '../../store/admin/errors.ts';
import { booleanInput, pageInput, parseInput } from '../../store/admin/input.ts';
import { seriesJson } from '../../cli/commands/series.ts';
import { bearer, errorSchema, js } from '../schema.ts';
import { withBulk } from '../../store/bulk.ts';
import { sendExport } from '../export-reply.ts';

type Q = Record<string, string | undefined>;
const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (tags: string, summary: string, extra: Record<string, unknown> = {}): { schema: FastifySchema } => ({
  schema: { tags: [tags], summary, security: bearer, response: errors, ...extra },
});
const pageSchema = z.object(pageInput);
const idemHeader = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', description: 'required: a retry with the same key and body is answered once' } },
  required: ['idempotency-key'],
};

export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  // Series
  app.get('/series', doc('series', 'List series'), async () => ({ items: (await listSeries(ctx)).map(seriesJson) }));
  app.post('/series', doc('series', 'Create a series and all its cards (one transaction)', { body: js(seriesCreateSchema) }), async (req, reply) => {
    const r = await createSeries(ctx, (req.body ?? {}) as never);
    return reply.code(201).send(r);
  });
  app.get('/series/:number', doc('series', 'Show a series'), async (req) => {
    const s = await getSeries(ctx, (req.params as Q).number!);
    return { ...seriesJson(s), cardsByStatus: s.cardsByStatus, totalBalance: amountJson(s.totalBalance) };
  });
  app.patch('/series/:number', doc('series', 'Edit a series (the card count never changes)', { body: js(seriesEditSchema) }), async (req) =>
    seriesJson(await editSeries(ctx, (req.params as Q).number!, (req.body ?? {}) as never)),
  );

  // Cards
  app.get('/cards', doc('cards', 'Search cards', { querystring: js(cardSearchSchema) }), async (req) => {
    const r = await searchCards(ctx, req.query as never);
    return { items: r.items.map(cardJson), hasMore: r.hasMore };
  });
  app.get(
    '/cards/export',
    doc('cards', 'Export cards as CSV or XLSX (streamed)', {
      querystring: js(cardFilterSchema.extend({ format: z.enum(['csv', 'xlsx']).optional(), withPins: z.boolean().optional(), confirm: z.literal('pins').optional() })),
    }),
    async (req, reply) => {
      const { format = 'csv', withPins, confirm: _confirm, ...filter } = req.query as Q; // confirm=pins: checked by the auth hook
      if (format !== 'csv' && format !== 'xlsx') throw invalid(`format must be csv or xlsx, not "${format}"`);
      const pins = withPins === undefined ? false : parseInput(booleanInput, withPins);
      // A malformed filter answers 400 at once; what needs the database (an unknown series) is checked inside the
      // bulk slot, still before the first byte, so a flood of exports never queues on the API's connections.
      parseInput(cardFilterSchema, filter);
      return sendExport(reply, ctx, {
        contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
        filename: `cards.${format}`,
        run: (bctx, out, o) => exportCards(bctx, filter, out, { format, withPins: pins, ...o }),
      });
    },
  );
  app.get('/cards/:serial', doc('cards', 'Show a card'), async (req) => cardJson(await getCard(ctx, (req.params as Q).serial!)));
  app.patch(
    '/cards/:serial',
    doc('cards', 'Per-card settings: maxCalls (1..1000, or "series"/null), creditLimit (decimal string, >= 0), rateTable (a table, or "series"/null)', {
      body: js(cardLimitsSchema),
    }),
    async (req) => cardJson(await setCardLimits(ctx, (req.params as Q).serial!, (req.body ?? {}) as never)),
  );
  app.post(
    '/cards/:serial/status',
    doc('cards', 'Set a card status', { body: { type: 'object', properties: { status: { type: 'string', enum: [...CARD_STATUSES] } }, required: ['status'] } }),
    async (req) => {
      const status = (req.body as { status?: unknown } | undefined)?.status;
      if (typeof status !== 'string') throw invalid('status: is required');
      return cardJson(await setCardStatus(ctx, (req.params as Q).serial!, status));
    },
  );

  const moneyMove = (kind: 'topup' | 'adjust') => async (req: FastifyRequest, reply: FastifyReply) => {
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key.trim() === '') throw invalid('the Idempotency-Key header is required for a money-moving request');
    const body = (req.body ?? {}) as { amount?: unknown; reason?: unknown };
    const input = { serial: (req.params as Q).serial, amount: body.amount, reason: body.reason, idempotencyKey: key };
    const as = req.actor ? { ...ctx, actor: req.actor.id } : ctx;
    const r: MoneyMoveResult = kind === 'topup' ? await topUp(as, input as never) : await adjust(as, input as never);
    if (r.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(r.statusCode).send(r.response);
  };
  const amountBody = (reasonRequired: boolean) => ({
    type: 'object',
    properties: {
      amount: { type: 'string', description: 'decimal string, e.g. "10" or "4.37" (never a JSON number)' },
      reason: { type: 'string' },
    },
    required: reasonRequired ? ['amount', 'reason'] : ['amount'],
  });
  app.post('/cards/:serial/topup', doc('cards', 'Top up a card (Idempotency-Key required)', { body: amountBody(false), headers: idemHeader }), moneyMove('topup'));
  app.post('/cards/:serial/adjust', doc('cards', 'Adjust a balance by a signed amount (Idempotency-Key required)', { body: amountBody(true), headers: idemHeader }), moneyMove('adjust'));
  app.get('/cards/:serial/history', doc('cards', "A card's ledger", { querystring: js(pageSchema) }), async (req) => {
    const r = await cardHistory(ctx, (req.params as Q).serial!, req.query as Q);
    return { items: r.items.map(ledgerEntryJson), hasMore: r.hasMore };
  });

  // Access numbers
  app.get('/dids', doc('dids', 'List access numbers'), async () => ({ items: await listDids(ctx) }));
  app.post('/dids', doc('dids', 'Add an access number', { body: js(didAddSchema) }), async (req, reply) =>
    reply.code(201).send(await addDid(ctx, (req.body ?? {}) as never)),
  );
  app.get('/dids/:did', doc('dids', 'Show an access number'), async (req) => getDid(ctx, (req.params as Q).did!));
  app.patch('/dids/:did', doc('dids', 'Edit an access number', { body: js(didEditSchema) }), async (req) =>
    editDid(ctx, (req.params as Q).did!, (req.body ?? {}) as never),
  );
  app.delete('/dids/:did', doc('dids', 'Remove an access number'), async (req, reply) => {
    await removeDid(ctx, (req.params as Q).did!);
    return reply.code(204).send();
  });

  // Caller ids
  app.get('/caller-ids', doc('caller-ids', 'List caller ids bound to cards', { querystring: js(z.object({ serial: z.string().optional() })) }), async (req) => ({
    items: await listCallerIds(ctx, (req.query as Q).serial),
  }));
  app.post(
    '/caller-ids',
    doc('caller-ids', 'Bind a caller id to a card', {
      body: { type: 'object', properties: { callerId: { type: 'string' }, serial: { type: 'string' } }, required: ['callerId', 'serial'] },
    }),
    async (req, reply) => {
      const b = (req.body ?? {}) as { callerId?: unknown; serial?: unknown };
      return reply.code(201).send(await addCallerId(ctx, String(b.callerId ?? ''), String(b.serial ?? '')));
    },
  );
  app.delete('/caller-ids/:callerId', doc('caller-ids', 'Unbind a caller id'), async (req, reply) => {
    await removeCallerId(ctx, (req.params as Q).callerId!);
    return reply.code(204).send();
  });

  // Rates
  app.get('/rates', doc('rates', 'List rate tables'), async () => ({ items: await listRateTablesAdmin(ctx) }));
  app.get('/rates/:table', doc('rates', "A table's rates", { querystring: js(pageSchema.extend({ prefix: z.string().optional() })) }), async (req) =>
    listTableRates(ctx, (req.params as Q).table!, req.query as Q),
  );
  app.put(
    '/rates/:table',
    doc('rates', 'Import a rate CSV (text/csv body; all or nothing, replaces unless merge=true)', {
      querystring: js(rateImportOptionsSchema),
      body: { type: 'string', description: 'the CSV: prefix,destination,rate[,connect_fee,initial_increment,subsequent_increment,effective_from,effective_to]' },
      consumes: ['text/csv'],
    }),
    async (req) => {
      const body = req.body as unknown;
      if (typeof body !== 'string' && !(body instanceof Readable)) throw invalid('send the rate CSV as the body with Content-Type: text/csv');
      const { table } = req.params as Q;
      // A bad name or option answers 400 before the request waits for bulk capacity.
      rateTableName(table!);
      parseInput(rateImportOptionsSchema, req.query as Q);
      return withBulk(ctx, (bctx, closing) => {
        // Shutdown ends an upload in progress (its transaction rolls back) instead of waiting for it.
        if (body instanceof Readable) closing?.addEventListener('abort', () => body.destroy(new Error('the service is shutting down')), { once: true });
        return importRateTable(bctx, table!, body, req.query as Q);
      });
    },
  );
  app.get('/rates/:table/export', doc('rates', 'Export a rate table as CSV (streamed)'), async (req, reply) => {
    const table = rateTableName((req.params as Q).table!);
    return sendExport(reply, ctx, {
      contentType: 'text/csv; charset=utf-8',
      filename: `${table}.csv`,
      run: (bctx, out, o) => exportRateTable(bctx, table, out, o),
    });
  });

  // Tax profiles
  app.get('/tax-profiles', doc('tax-profiles', 'List tax profiles'), async () => ({ items: (await listTaxProfiles(ctx)).map(taxProfileJson) }));
  app.post(
    '/tax-profiles',
    doc('tax-profiles', 'Add a tax profile (percent as a decimal string, e.g. "7.25": 0..100, at most 4 decimals)', { body: js(taxAddSchema) }),
    async (req, reply) => reply.code(201).send(taxProfileJson(await addTaxProfile(ctx, (req.body ?? {}) as never))),
  );
  app.delete('/tax-profiles/:name', doc('tax-profiles', 'Remove a tax profile no series uses'), async (req, reply) => {
    await removeTaxProfile(ctx, (req.params as Q).name!);
    return reply.code(204).send();
  });

  // CDRs and reports
  app.get('/cdrs', doc('cdrs', 'List CDRs', { querystring: js(cdrListSchema) }), async (req) => {
    const r = await withBulk(ctx, (bctx) => listCdrs(bctx, req.query as never));
    return { items: r.items.map(cdrJson), hasMore: r.hasMore };
  });
  app.get('/cdrs/export', doc('cdrs', 'Export CDRs as CSV (streamed)', { querystring: js(cdrFilterSchema) }), async (req, reply) => {
    const filter = req.query as Q;
    parseInput(cdrFilterSchema, filter);
    return sendExport(reply, ctx, { contentType: 'text/csv; charset=utf-8', filename: 'cdrs.csv', run: (bctx, out, o) => exportCdrs(bctx, filter, out, o) });
  });
  app.get('/reports/costs', doc('reports', 'Calls, billed minutes and total cost per card or series', { querystring: js(costReportSchema) }), async (req) => ({
    items: (await withBulk(ctx, (bctx) => costReport(bctx, req.query as never))).map(costReportJson),
  }));
}
