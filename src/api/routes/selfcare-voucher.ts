import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { AdminError } from '../../store/admin/errors.ts';
import { selfcareCardAllowed, type LockoutPolicy } from '../../store/admin/selfcare.ts';
import { selfcareRedeemVoucher, voucherRechargeJson } from '../../store/admin/vouchers.ts';
import { errorSchema, js } from '../schema.ts';
import { selfcareTokenKey, verifySelfcareToken } from '../selfcare-token.ts';

/** POST /selfcare/voucher: the cardholder recharges the card they are logged in with. */
export function registerSelfcareVoucherRoutes(app: FastifyInstance, ctx: AdminContext, opts: { lockout: LockoutPolicy; rateLimit?: { max: number; timeWindowMs: number } }): void {
  const key = selfcareTokenKey(ctx.pinKeys);
  const limit = opts.rateLimit ?? { max: 10, timeWindowMs: 60_000 };
  app.post(
    '/voucher',
    {
      config: { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } },
      schema: {
        tags: ['selfcare'],
        summary: 'Recharge the card with a voucher (wrong vouchers count toward the login lockout)',
        security: [{ selfcare: [] }],
        body: js(z.object({ number: z.string() })),
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
      },
    },
    async (req) => {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const c = m ? verifySelfcareToken(key, m[1]!) : null;
      if (!c) throw new AdminError('UNAUTHORIZED', 'log in first: Authorization: Bearer <token from POST /selfcare/login>');
      if (!(await selfcareCardAllowed(ctx, c.sub, c.serial))) throw new AdminError('UNAUTHORIZED', 'log in again');
      const number = (req.body as { number?: unknown } | undefined)?.number;
      const r = await selfcareRedeemVoucher(ctx, { cardId: c.sub, serial: c.serial }, number, opts.lockout, req.ip);
      const j = voucherRechargeJson(r);
      return { amount: j.amount, balance: j.balance, currency: j.currency };
    },
  );
}
