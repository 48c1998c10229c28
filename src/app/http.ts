import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { Pool } from '../store/db.ts';
import type { PinKeys } from '../store/pin.ts';
import type { RateCache } from '../store/rates.ts';
import type { CcardCallServices } from './call-services.ts';

export interface HttpServer {
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

export async function buildHttp(deps: {
  pool: Pool;
  pinKeys: PinKeys;
  live: LiveBalanceStore;
  logger: Logger;
  services: CcardCallServices;
  rates: RateCache;
}): Promise<HttpServer> {
  const app = Fastify({ loggerInstance: deps.logger });
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post('/cdr', async (req, reply) => {
    const result = await deps.services.ingestJsonCdr(String(req.body ?? ''));
    return reply.send(JSON.parse(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v))));
  });
  return {
    async listen(host, port) {
      await app.listen({ host, port });
      const addr = app.server.address() as AddressInfo;
      return { host: addr.address, port: addr.port };
    },
    close: () => app.close(),
  };
}
