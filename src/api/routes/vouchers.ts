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
import { sendExport } from '../export-reply.ts';
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
    doc('Export a batch as CSV or XLSX (streamed; numbers need withNumbers=true&confirm=numbers and the operator role)', {
      querystring: js(z.object({ format: z.enum(['csv', 'xlsx']).optional(), withNumbers: z.boolean().optional(), confirm: z.literal('numbers').optional() })),
    }),
    async (req, reply) => {
      const { format = 'csv', withNumbers, confirm } = req.query as Q;
      if (format !== 'csv' && format !== 'xlsx') throw invalid(`format must be csv or xlsx, not "${format}"`);
      const batch = (req.params as Q).batch!;
      const numbers = withNumbers === undefined ? false : parseInput(booleanInput, withNumbers);
      if (numbers && confirm !== 'numbers') throw invalid('exporting voucher numbers needs confirm=numbers (the export is recorded in the audit log)');
      // Through the bulk gate like every export; an unknown batch is a 404 before the first byte.
      return sendExport(reply, ctx, {
        contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
        filename: `vouchers.${format}`,
        headers: numbers ? { 'cache-control': 'no-store' } : undefined,
        run: (bctx, out, o) => exportVouchers(bctx, batch, out, { format, withNumbers: numbers, ...o }),
      });
    },
  );
  app.post('/vouchers/redeem', doc('Recharge a card with a voucher', { body: js(voucherRedeemSchema) }), async (req) =>
    voucherRechargeJson(await redeemVoucher(ctx, parseInput(voucherRedeemSchema, req.body ?? {}))),
  );
}
