import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { invalid } from '../../store/admin/errors.ts';
import { booleanInput, parseInput } from '../../store/admin/input.ts';
import {
  createVouchers,
  exportVouchers,
  listVoucherBatches,
  redeemVoucher,
  voucherBatchJson,
  voucherCreateSchema,
  voucherRechargeJson,
  voucherRedeemSchema,
} from '../../store/admin/vouchers.ts';
import { bearer, errorSchema, js } from '../schema.ts';

type Q = Record<string, string | undefined>;
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (summary: string, extra: Record<string, unknown> = {}): { schema: FastifySchema } => ({
  schema: { tags: ['vouchers'], summary, security: bearer, response: errors, ...extra },
});

/** /v1/vouchers: create, list, export and redeem (operator) recharge vouchers. */
export function registerVoucherRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.post('/vouchers', doc('Generate a batch of vouchers', { body: js(voucherCreateSchema) }), async (req, reply) =>
    reply.code(201).send(voucherBatchJson(await createVouchers(ctx, (req.body ?? {}) as never))),
  );
  app.get('/vouchers', doc('Voucher batches'), async () => ({ items: (await listVoucherBatches(ctx)).map(voucherBatchJson) }));
  app.get(
    '/vouchers/:batch/export',
    doc('Export a batch as CSV or XLSX (streamed)', { querystring: js(z.object({ format: z.enum(['csv', 'xlsx']).optional(), withNumbers: z.boolean().optional() })) }),
    async (req, reply) => {
      const { format = 'csv', withNumbers } = req.query as Q;
      if (format !== 'csv' && format !== 'xlsx') throw invalid(`format must be csv or xlsx, not "${format}"`);
      const batch = (req.params as Q).batch!;
      const numbers = withNumbers === undefined ? false : parseInput(booleanInput, withNumbers);
      if (!(await listVoucherBatches(ctx, batch)).length) throw invalid(`unknown voucher batch ${batch}`);
      const out = new PassThrough();
      reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
        .header('content-disposition', `attachment; filename="vouchers.${format}"`);
      exportVouchers(ctx, batch, out, { format, withNumbers: numbers }).then(
        () => void (!out.writableEnded && out.end()),
        (err) => out.destroy(err as Error),
      );
      return reply.send(out);
    },
  );
  app.post('/vouchers/redeem', doc('Recharge a card with a voucher', { body: js(voucherRedeemSchema) }), async (req) =>
    voucherRechargeJson(await redeemVoucher(ctx, parseInput(voucherRedeemSchema, req.body ?? {}))),
  );
}
