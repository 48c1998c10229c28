import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { redeemProvisionCode } from '../../store/admin/provision.ts';
import { errorSchema, js } from '../schema.ts';

export interface ProvisionOptions {
  sipDomain: string;
  /** Redemptions per IP (default 5 per minute). */
  rateLimit?: { max: number; timeWindowMs: number };
  /** Every failed redemption answers this long after the request arrived (default 1000 ms), whatever the reason. */
  failureDelayMs?: number;
}

/** POST /provision: a dialler trades a provisioning code for the branding and fresh SIP credentials. No API key. */
export function registerProvisionRoutes(app: FastifyInstance, ctx: AdminContext, opts: ProvisionOptions): void {
  const limit = opts.rateLimit ?? { max: 5, timeWindowMs: 60_000 };
  const delay = opts.failureDelayMs ?? 1000;
  app.post(
    '/provision',
    {
      config: { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } },
      schema: {
        tags: ['provisioning'],
        summary: 'Redeem a provisioning code: branding and SIP credentials (the password appears only here)',
        body: js(z.object({ code: z.string() })),
        response: { 404: errorSchema, 429: errorSchema },
      },
    },
    async (req, reply) => {
      const started = Date.now();
      try {
        const body = (req.body ?? {}) as { code?: unknown };
        const r = await redeemProvisionCode(ctx, body.code, req.ip, opts.sipDomain);
        reply.header('cache-control', 'no-store');
        return r;
      } catch (err) {
        // Same status, body and delay for unknown, used, expired and malformed codes (and for a database error).
        await new Promise((r) => setTimeout(r, Math.max(0, started + delay - Date.now())));
        req.log.warn({ ip: req.ip, err: (err as Error).message }, 'provisioning code refused');
        return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'unknown, used or expired provisioning code' } });
      }
    },
  );
}
