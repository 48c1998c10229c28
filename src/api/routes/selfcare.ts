import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AdminContext } from '../../store/admin/context.ts';
import { AdminError } from '../../store/admin/errors.ts';
import { selfcareCardAllowed, selfcareLogin, selfcareLoginSchema, type LockoutPolicy } from '../../store/admin/selfcare.ts';
import { cardJson, getCard } from '../../store/admin/cards.ts';
import { cdrJson, listCdrs } from '../../store/admin/cdrs.ts';
import { pageInput } from '../../store/admin/input.ts';
import { z } from 'zod';
import { errorSchema, js } from '../schema.ts';
import { selfcareTokenKey, signSelfcareToken, verifySelfcareToken, type SelfcareClaims } from '../selfcare-token.ts';

export interface SelfcareOptions {
  tokenTtlSeconds: number;
  lockout: LockoutPolicy;
  loginRateLimit: { max: number; timeWindowMs: number };
}

const security = [{ selfcare: [] as string[] }];
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema };

/** Cardholder self-care: log in with serial + PIN (series with selfcare only), then read balance and calls. */
export function registerSelfcareRoutes(app: FastifyInstance, ctx: AdminContext, opts: SelfcareOptions): void {
  const key = selfcareTokenKey(ctx.pinKeys);

  // A valid signature is not enough: the card must still be allowed self-care now (not disabled, not deleted).
  const claims = async (req: FastifyRequest): Promise<SelfcareClaims> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const c = m ? verifySelfcareToken(key, m[1]!) : null;
    if (!c) throw new AdminError('UNAUTHORIZED', 'log in first: Authorization: Bearer <token from POST /selfcare/login>');
    if (!(await selfcareCardAllowed(ctx, c.sub, c.serial))) throw new AdminError('UNAUTHORIZED', 'log in again');
    return c;
  };

  app.post(
    '/login',
    {
      config: { rateLimit: { max: opts.loginRateLimit.max, timeWindow: opts.loginRateLimit.timeWindowMs } },
      schema: { tags: ['selfcare'], summary: 'Log in with serial and PIN', body: js(selfcareLoginSchema), response: errors },
    },
    async (req) => {
      const { cardId, serial } = await selfcareLogin(ctx, (req.body ?? {}) as { serial?: unknown; pin?: unknown }, opts.lockout, req.ip);
      const exp = Math.floor(Date.now() / 1000) + opts.tokenTtlSeconds;
      return { token: signSelfcareToken(key, { sub: cardId, serial, exp }), expiresAt: new Date(exp * 1000).toISOString() };
    },
  );

  app.get('/me', { schema: { tags: ['selfcare'], summary: 'Balance, status and expiry of the card', security, response: errors } }, async (req) => {
    const c = await claims(req);
    const card = await getCard(ctx, c.serial);
    if (card.id !== c.sub) throw new AdminError('UNAUTHORIZED', 'log in again');
    const j = cardJson(card);
    return { serial: j.serial, status: j.status, currency: j.currency, balance: j.balance, expiresAt: j.expiresAt, lastUsedAt: j.lastUsedAt };
  });

  app.get(
    '/calls',
    { schema: { tags: ['selfcare'], summary: 'Call history of the card', security, querystring: js(z.object(pageInput)), response: errors } },
    async (req) => {
      const c = await claims(req);
      const q = req.query as Record<string, string | undefined>;
      const r = await listCdrs(ctx, { card: c.serial, ...(q.limit && { limit: q.limit }), ...(q.offset && { offset: q.offset }) });
      return {
        items: r.items.map(cdrJson).map((x) => ({
          destination: x.destination,
          answeredAt: x.answeredAt,
          endedAt: x.endedAt,
          billedSeconds: x.billedSeconds,
          cost: x.cost,
        })),
        hasMore: r.hasMore,
      };
    },
  );
}
