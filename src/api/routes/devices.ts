import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { addDevice, deviceAddSchema, deviceEditSchema, editDevice, getDevice, listDevices, removeDevice, resetDevicePassword } from '../../store/admin/devices.ts';
import { brandSchema, createProvisionCode, getBrand, provisionCreateSchema, setBrand } from '../../store/admin/provision.ts';
import { bearer, errorSchema, js } from '../schema.ts';

type Q = Record<string, string | undefined>;
/** Who made the change (device_audit); the API's audit hook records the request in the audit log. */
const who = (req: FastifyRequest) => req.actor?.id ?? 'api';
const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (summary: string, extra: Record<string, unknown> = {}): { schema: FastifySchema } => ({
  schema: { tags: ['devices'], summary, security: bearer, response: errors, ...extra },
});

/** /v1/devices: cards as SIP accounts. A password appears only in the answer that sets it. */
export function registerDeviceRoutes(app: FastifyInstance, ctx: AdminContext, sipDomain: string): void {
  app.get('/devices', doc('List devices', { querystring: js(z.object({ serial: z.string().optional() })) }), async (req) => ({
    items: await listDevices(ctx, (req.query as Q).serial),
  }));
  app.post('/devices', doc('Add a SIP account to a card (the password is in this answer only)', { body: js(deviceAddSchema) }), async (req, reply) =>
    reply.code(201).send(await addDevice(ctx, (req.body ?? {}) as never, sipDomain, who(req))),
  );
  app.get('/devices/:user', doc('Show a device'), async (req) => getDevice(ctx, (req.params as Q).user!));
  app.patch('/devices/:user', doc('Edit a device (name, lines, enabled)', { body: js(deviceEditSchema) }), async (req) =>
    editDevice(ctx, (req.params as Q).user!, (req.body ?? {}) as never, who(req)),
  );
  app.post('/devices/:user/disable', doc('Disable a device'), async (req) => editDevice(ctx, (req.params as Q).user!, { enabled: false }, who(req)));
  app.post('/devices/:user/reset-password', doc('Set a fresh password (in this answer only)'), async (req) =>
    resetDevicePassword(ctx, (req.params as Q).user!, sipDomain, { actor: who(req), ip: req.ip }),
  );
  app.post('/provision-codes', doc('Issue a provisioning code for a card\'s device', { body: js(provisionCreateSchema) }), async (req, reply) =>
    reply.code(201).send(await createProvisionCode(ctx, (req.body ?? {}) as never, sipDomain, who(req))),
  );
  app.get('/brand', doc('The branding a dialler gets with its credentials'), async () => getBrand(ctx));
  app.put('/brand', doc('Set the branding (any subset of the fields)', { body: js(brandSchema) }), async (req) => setBrand(ctx, (req.body ?? {}) as never));
  app.delete('/devices/:user', doc('Remove a device'), async (req, reply) => {
    await removeDevice(ctx, (req.params as Q).user!, who(req));
    return reply.code(204).send();
  });
}
