/** Who made a request (its idempotency keys are scoped to it): `apikey:<name>`, later `operator:<name>`. */
declare module 'fastify' {
  interface FastifyRequest {
    actor?: string;
  }
}
export {};
