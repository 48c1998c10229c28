import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../../store/admin/context.ts';
import { AdminError } from '../../store/admin/errors.ts';
import {
  addOperator,
  CARD_GRID_COLUMNS,
  editOperator,
  getOperator,
  getPreferences,
  listOperators,
  operatorAddSchema,
  operatorEditSchema,
  preferencesSchema,
  removeOperator,
  setPreferences,
} from '../../store/admin/operators.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../../store/admin/api-keys.ts';
import { auditFilterSchema, listAudit } from '../../store/admin/audit.ts';
import { errorSchema, js } from '../schema.ts';

type Q = Record<string, string | undefined>;
const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { session: [] }];
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (tag: string, summary: string, extra: Partial<FastifySchema> = {}): { schema: FastifySchema } => ({
  schema: { tags: [tag], summary, security, response: errors, ...extra },
});

const operatorSchema = {
  type: 'object',
  properties: {
    login: { type: 'string' },
    role: { type: 'string', enum: ['admin', 'operator', 'viewer'] },
    createdAt: { type: 'string' },
    passwordChangedAt: { type: 'string' },
    lockedUntil: { type: ['string', 'null'] },
    activeSessions: { type: 'integer' },
  },
  required: ['login', 'role', 'createdAt', 'passwordChangedAt', 'lockedUntil', 'activeSessions'],
};
const apiKeySchema = {
  type: 'object',
  properties: { name: { type: 'string' }, createdAt: { type: 'string' }, revokedAt: { type: ['string', 'null'] } },
  required: ['name', 'createdAt', 'revokedAt'],
};
const preferencesJsonSchema = {
  type: 'object',
  properties: {
    cardColumns: { type: 'array', items: { type: 'string', enum: [...CARD_GRID_COLUMNS] } },
    pageSize: { type: 'integer', enum: [25, 50, 100, 200] },
  },
};
const auditEntrySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    at: { type: 'string' },
    actor: { type: 'string' },
    action: { type: 'string' },
    object: { type: ['string', 'null'] },
    status: { type: 'integer' },
    request: {},
    before: {},
    after: {},
  },
  required: ['id', 'at', 'actor', 'action', 'object', 'status', 'request', 'before', 'after'],
};

const sessionLogin = (req: FastifyRequest): string => {
  if (req.actor?.kind !== 'operator') throw new AdminError('INVALID_INPUT', 'preferences belong to an operator: log in to the console');
  return req.actor.name;
};

/** Admin pages of the console (operators, API keys, audit log) and each operator's own preferences. */
export function registerOperatorRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/operators', doc('operators', 'List operators (admin)', { response: { 200: { type: 'object', properties: { items: { type: 'array', items: operatorSchema } }, required: ['items'] }, ...errors } }), async () => ({
    items: await listOperators(ctx),
  }));
  app.post(
    '/operators',
    doc('operators', 'Add an operator (admin); without a password, a generated one is answered once', {
      body: js(operatorAddSchema),
      response: {
        201: { type: 'object', properties: { operator: operatorSchema, password: { type: 'string' } }, required: ['operator'] },
        ...errors,
      },
    }),
    async (req, reply) => reply.code(201).send(await addOperator(ctx, (req.body ?? {}) as never)),
  );
  app.get('/operators/:login', doc('operators', 'Show an operator (admin)', { response: { 200: operatorSchema, ...errors } }), async (req) =>
    getOperator(ctx, (req.params as Q).login!),
  );
  app.patch(
    '/operators/:login',
    doc('operators', 'Change role and/or password (admin); a new password or a lower role ends its sessions', {
      body: js(operatorEditSchema),
      response: { 200: operatorSchema, ...errors },
    }),
    async (req) => editOperator(ctx, (req.params as Q).login!, (req.body ?? {}) as never),
  );
  app.delete('/operators/:login', doc('operators', 'Remove an operator (admin); the last admin cannot be removed', { response: { 204: { type: 'null' }, ...errors } }), async (req, reply) => {
    await removeOperator(ctx, (req.params as Q).login!);
    return reply.code(204).send();
  });

  app.get('/api-keys', doc('api-keys', 'List API keys (admin)', { response: { 200: { type: 'object', properties: { items: { type: 'array', items: apiKeySchema } }, required: ['items'] }, ...errors } }), async () => ({
    items: await listApiKeys(ctx),
  }));
  app.post(
    '/api-keys',
    doc('api-keys', 'Create an API key (admin); the key is answered once, only its SHA-256 is kept', {
      body: js(z.object({ name: z.string() })),
      response: { 201: { type: 'object', properties: { name: { type: 'string' }, key: { type: 'string' } }, required: ['name', 'key'] }, ...errors },
    }),
    async (req, reply) => reply.code(201).send(await createApiKey(ctx, String((req.body as { name?: unknown } | undefined)?.name ?? ''))),
  );
  app.delete('/api-keys/:name', doc('api-keys', 'Revoke an API key (admin)', { response: { 204: { type: 'null' }, ...errors } }), async (req, reply) => {
    await revokeApiKey(ctx, (req.params as Q).name!);
    return reply.code(204).send();
  });

  app.get(
    '/audit',
    doc('audit', 'The audit log, newest first (admin): filter by actor, object (or object kind) and date', {
      querystring: js(auditFilterSchema),
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: auditEntrySchema }, hasMore: { type: 'boolean' } }, required: ['items', 'hasMore'] }, ...errors },
    }),
    async (req) => listAudit(ctx, req.query as never),
  );

  app.get('/me/preferences', doc('preferences', "The logged-in operator's console preferences", { response: { 200: preferencesJsonSchema, ...errors } }), async (req) =>
    getPreferences(ctx, sessionLogin(req)),
  );
  app.put(
    '/me/preferences',
    doc('preferences', 'Save console preferences (merged: a key left out keeps its value); any role', {
      body: js(preferencesSchema),
      response: { 200: preferencesJsonSchema, ...errors },
    }),
    async (req) => setPreferences(ctx, sessionLogin(req), req.body),
  );
}
