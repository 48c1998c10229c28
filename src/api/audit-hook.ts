import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AdminContext } from '../store/admin/context.ts';
import { recordAudit } from '../store/admin/audit.ts';
import { cardJson, getCard } from '../store/admin/cards.ts';
import { getSeries } from '../store/admin/series.ts';
import { getDid } from '../store/admin/dids.ts';
import { listCallerIds } from '../store/admin/caller-ids.ts';
import { listTaxProfiles, taxProfileJson } from '../store/admin/tax.ts';
import { getOperator } from '../store/admin/operators.ts';
import { listApiKeys } from '../store/admin/api-keys.ts';
import { getRateTable } from '../store/rates.ts';
import { seriesJson } from '../cli/commands/series.ts';
import { isTrue } from './access.ts';
import { getDevice } from '../store/admin/devices.ts';
import { getBrand } from '../store/admin/provision.ts';
import { maskVoucher } from '../store/admin/vouchers.ts';

type P = Record<string, string>;
type B = Record<string, unknown>;

interface Subject {
  /** "card:300-000000001", "series:300"... */
  object: (params: P, body: B) => string | null;
  /** The object's state before the change (null when it does not exist yet). */
  before?: (ctx: AdminContext, params: P, body: B) => Promise<unknown>;
  /** What of the request is stored, when the body holds a secret the generic redaction does not know. */
  request?: (body: B) => unknown;
}

const orNull = async <T>(p: Promise<T>): Promise<T | null> => p.catch(() => null);
const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** What each write route changes, keyed by fastify's route url. */
const SUBJECTS: Record<string, Subject> = {
  '/v1/series': { object: (_p, b) => `series:${str(b.number)}` },
  '/v1/jobs/series': { object: (_p, b) => `series:${str(b.number)}` },
  '/v1/series/:number': { object: (p) => `series:${p.number}`, before: (ctx, p) => orNull(getSeries(ctx, p.number!).then(seriesJson)) },
  '/v1/cards/:serial': { object: (p) => `card:${p.serial}`, before: (ctx, p) => orNull(getCard(ctx, p.serial!).then(cardJson)) },
  '/v1/cards/:serial/status': { object: (p) => `card:${p.serial}`, before: (ctx, p) => orNull(getCard(ctx, p.serial!).then(cardJson)) },
  '/v1/cards/:serial/topup': { object: (p) => `card:${p.serial}`, before: (ctx, p) => orNull(getCard(ctx, p.serial!).then(cardJson)) },
  '/v1/cards/:serial/adjust': { object: (p) => `card:${p.serial}`, before: (ctx, p) => orNull(getCard(ctx, p.serial!).then(cardJson)) },
  '/v1/cards/bulk': {
    object: () => 'card:*',
    before: async (ctx, _p, b) => {
      const serials = Array.isArray(b.serials) ? b.serials.slice(0, 1000).map(str) : [];
      const out: unknown[] = [];
      for (const s of serials) {
        const c = await orNull(getCard(ctx, s));
        if (c) out.push(cardJson(c));
      }
      return out;
    },
  },
  '/v1/dids': { object: (_p, b) => `did:${str(b.did)}` },
  '/v1/dids/:did': { object: (p) => `did:${p.did}`, before: (ctx, p) => orNull(getDid(ctx, p.did!)) },
  '/v1/caller-ids': { object: (_p, b) => `caller-id:${str(b.callerId)}` },
  '/v1/caller-ids/:callerId': {
    object: (p) => `caller-id:${p.callerId}`,
    before: async (ctx, p) => (await orNull(listCallerIds(ctx)))?.find((c) => c.callerId === p.callerId) ?? null,
  },
  '/v1/rates/:table': { object: (p) => `rate-table:${p.table}`, before: (ctx, p) => getRateTable(ctx.pool, p.table!).then((t) => t ?? null, () => null) },
  '/v1/tax-profiles': { object: (_p, b) => `tax-profile:${str(b.name)}` },
  '/v1/tax-profiles/:name': {
    object: (p) => `tax-profile:${p.name}`,
    before: async (ctx, p) => (await listTaxProfiles(ctx)).map(taxProfileJson).find((t) => t.name === p.name) ?? null,
  },
  '/v1/operators': { object: (_p, b) => `operator:${str(b.login)}` },
  '/v1/operators/:login': { object: (p) => `operator:${p.login}`, before: (ctx, p) => orNull(getOperator(ctx, p.login!)) },
  '/v1/api-keys': { object: (_p, b) => `apikey:${str(b.name)}` },
  '/v1/api-keys/:name': {
    object: (p) => `apikey:${p.name}`,
    before: async (ctx, p) => (await listApiKeys(ctx)).find((k) => k.name === p.name) ?? null,
  },
  '/v1/me/preferences': { object: () => null },
  '/v1/devices': { object: (_p, b) => `card:${str(b.serial)}` },
  '/v1/devices/:user': { object: (p) => `device:${p.user}`, before: (ctx, p) => orNull(getDevice(ctx, p.user!)) },
  '/v1/devices/:user/disable': { object: (p) => `device:${p.user}`, before: (ctx, p) => orNull(getDevice(ctx, p.user!)) },
  '/v1/devices/:user/reset-password': { object: (p) => `device:${p.user}` },
  '/v1/provision-codes': { object: (_p, b) => `card:${str(b.serial)}` },
  '/v1/brand': { object: () => 'brand', before: (ctx) => orNull(getBrand(ctx)) },
  '/v1/vouchers': { object: (_p, b) => (b.batch ? `voucher-batch:${str(b.batch)}` : 'voucher-batch') },
  // A redeemed voucher is spent, but its number is still kept out of the log (the last 4 digits tell it apart).
  '/v1/vouchers/redeem': {
    object: (_p, b) => `card:${str(b.serial)}`,
    before: (ctx, _p, b) => orNull(getCard(ctx, str(b.serial)).then(cardJson)),
    request: (b) => ({ serial: b.serial, number: maskVoucher(str(b.number)) }),
  },
};

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The reads that are recorded: exports of secrets (PINs, voucher numbers). Their audit object, else undefined. */
function sensitiveExport(url: string, params: P, query: B): string | undefined {
  if (url === '/v1/cards/export' && isTrue(query.withPins)) return 'cards:pins';
  if (url === '/v1/vouchers/:batch/export' && isTrue(query.withNumbers)) return `voucher-batch:${params.batch}`;
  return undefined;
}

interface Pending {
  object: string | null;
  before: unknown;
  request: unknown;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditPending?: Pending;
  }
}

function requestBody(req: FastifyRequest): unknown {
  if (typeof req.body === 'string') return { text: `${req.body.length} characters`, query: req.query };
  return req.body ?? null;
}

/**
 * Records every change made through /v1 in the audit log: who (the actor), what (method and route, the object, the
 * request body without secrets), when, the object before (read just before the handler runs) and after (the
 * answer). Only successful changes are recorded here (refusals for the role are recorded by the auth hook), and
 * the row is written before the answer leaves, so a client that saw success finds its change in the log.
 * A PIN or voucher-number export (a read, but the most sensitive one) is recorded too.
 */
export function registerAuditHook(app: FastifyInstance, ctx: AdminContext): void {
  app.addHook('preHandler', async (req) => {
    const url = req.routeOptions.url;
    if (!url || !req.actor) return;
    const params = (req.params ?? {}) as P;
    const secretExport = sensitiveExport(url, params, req.query as B);
    if (!WRITES.has(req.method) && !secretExport) return;
    const s = SUBJECTS[url];
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as B;
    req.auditPending = {
      object: secretExport ?? (s ? s.object(params, body) : null),
      before: s?.before ? await s.before(ctx, params, body) : null,
      request: secretExport ? { query: req.query } : s?.request ? s.request(body) : requestBody(req),
    };
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const p = req.auditPending;
    if (!p || !req.actor || reply.statusCode >= 400) return payload;
    let after: unknown = null;
    if (typeof payload === 'string' && payload.length < 1_000_000) {
      try {
        after = JSON.parse(payload);
      } catch {
        after = null;
      }
    }
    await recordAudit(ctx, {
      actor: req.actor.id,
      action: `${req.method} ${req.routeOptions.url}`,
      object: p.object,
      status: reply.statusCode,
      request: p.request,
      before: p.before,
      after,
    }).catch((err) => req.log.error({ err }, 'audit write failed'));
    return payload;
  });
}
