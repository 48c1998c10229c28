import { z } from 'zod';

/**
 * The zod schemas of src/store/admin are the single source of truth: they validate (in the handlers, the same code
 * path as the CLI) and, converted here, document the API in OpenAPI. Fastify's own validation is switched off.
 */
export function js(schema: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'array', items: { type: 'string' } } },
      required: ['code', 'message'],
    },
  },
};

export const bearer = [{ apiKey: [] as string[] }];
