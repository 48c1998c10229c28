import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { AdminError } from '../../store/admin/errors.ts';
import { pageInput } from '../../store/admin/input.ts';
import { recordAudit } from '../../store/admin/audit.ts';
import {
  rateLookupSchema,
  selfcareBind,
  selfcareCallerIds,
  selfcareLedger,
  selfcareRate,
  selfcareUnbind,
} from '../../store/admin/selfcare-card.ts';
import { errorSchema, js } from '../schema.ts';
import { selfcareTokenKey, verifySelfcareToken } from '../selfcare-token.ts';
import { amount, arr, bool, int, obj, str } from '../console-schemas.ts';

const security = [{ selfcare: [] as string[] }];
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 429: errorSchema };
const doc = (summary: string, ok: Record<number, unknown>, extra: Partial<FastifySchema> = {}): { schema: FastifySchema } => ({
  schema: { tags: ['selfcare'], summary, security, response: { ...ok, ...errors }, ...extra },
});

const callerIdsSchema = obj({
  pinlessAvailable: { type: 'boolean', description: 'some access number identifies callers by caller ID' },
  max: int,
  items: arr(obj({ callerId: str, createdAt: str })),
});

/**
 * Self-care beyond balance and calls: the ledger, the price of a call to a number, and the phone numbers bound to
 * the card for pinless calls. The card is the token's (sub and serial both checked against the database).
 */
export function registerSelfcareCardRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const key = selfcareTokenKey(ctx.pinKeys);
  const cardOf = async (req: FastifyRequest): Promise<{ id: string; serial: string }> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const c = m ? verifySelfcareToken(key, m[1]!) : null;
    if (!c) throw new AdminError('UNAUTHORIZED', 'log in first: Authorization: Bearer <token from POST /selfcare/login>');
    const r = await ctx.pool.query('SELECT 1 FROM cards WHERE id = $1 AND serial = $2', [c.sub, c.serial]);
    if (!r.rowCount) throw new AdminError('UNAUTHORIZED', 'log in again');
    return { id: c.sub, serial: c.serial };
  };

  app.get(
    '/ledger',
    doc('Balance changes of the card, newest first', {
      200: obj({ items: arr(obj({ amount, balanceAfter: amount, reason: str, note: str, createdAt: str })), hasMore: bool }),
    }, { querystring: js(z.object(pageInput)) }),
    async (req) => selfcareLedger(ctx, (await cardOf(req)).id, req.query as never),
  );

  app.get(
    '/rate',
    doc('What a call to this number costs per minute with this card', {
      200: obj({
        number: str, destination: str, prefix: str, currency: str, ratePerMinute: str, connectFee: str,
        initialIncrement: int, subsequentIncrement: int, taxPercent: str,
      }),
    }, { querystring: js(rateLookupSchema) }),
    async (req) => selfcareRate(ctx, (await cardOf(req)).id, req.query as never),
  );

  app.get('/caller-ids', doc('Phone numbers bound to the card for pinless calls', { 200: callerIdsSchema }), async (req) =>
    selfcareCallerIds(ctx, (await cardOf(req)).id),
  );
  app.post(
    '/caller-ids',
    doc('Bind a phone number for pinless calls (when an access number allows it)', { 201: obj({ callerId: str, createdAt: str }) }, {
      body: js(z.object({ callerId: z.string() })),
    }),
    async (req, reply) => {
      const card = await cardOf(req);
      const r = await selfcareBind(ctx, card.id, (req.body ?? {}) as never);
      await recordAudit(ctx, { actor: `card:${card.serial}`, action: 'POST /selfcare/caller-ids', object: `caller-id:${r.callerId}`, status: 201, after: r });
      return reply.code(201).send(r);
    },
  );
  app.delete('/caller-ids/:callerId', doc('Unbind a phone number', { 204: { type: 'null' } }), async (req, reply) => {
    const card = await cardOf(req);
    const callerId = (req.params as { callerId: string }).callerId;
    await selfcareUnbind(ctx, card.id, callerId);
    await recordAudit(ctx, { actor: `card:${card.serial}`, action: 'DELETE /selfcare/caller-ids/:callerId', object: `caller-id:${callerId}`, status: 204, before: { callerId } });
    return reply.code(204).send();
  });
}
