import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApi } from '../api/server.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { Pool } from '../store/db.ts';
import type { PinKeys } from '../store/pin.ts';
import type { CcardCallServices } from './call-services.ts';
import type { XmlCurlOptions } from '../api/routes/freeswitch.ts';

export interface HttpServer {
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

/**
 * The HTTP side of the service: the operator API (/v1, /docs, /selfcare) and POST /cdr, where FreeSWITCH's
 * mod_json_cdr delivers every leg's CDR. A carrier leg's CDR debits its call (idempotent on the leg's uuid),
 * which is how calls still bridged when ccard restarted get billed.
 */
export async function buildHttp(deps: {
  pool: Pool;
  pinKeys: PinKeys;
  live: LiveBalanceStore;
  logger: Logger;
  services: CcardCallServices;
  xmlCurl?: XmlCurlOptions;
  sipDomain?: string;
}): Promise<HttpServer> {
  const app = buildApi({
    pool: deps.pool,
    pinKeys: deps.pinKeys,
    logger: deps.logger,
    live: deps.live,
    ...(deps.xmlCurl && { xmlCurl: deps.xmlCurl }),
    ...(deps.sipDomain && { sipDomain: deps.sipDomain }),
    onBalanceChange: async (cardId, snapshot) => void (await deps.live.load(cardId, snapshot)),
    onJsonCdr: async (body) => {
      // Any 2xx tells mod_json_cdr the CDR was delivered; a 5xx (thrown: database down) makes it retry and
      // finally keep the file in its err-log-dir, from where `ccard cdr import` can replay it.
      const result = await deps.services.ingestJsonCdr(body);
      return { status: 200, body: JSON.parse(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v))) };
    },
  });
  await app.ready();
  return {
    async listen(host, port) {
      await app.listen({ host, port });
      const addr = app.server.address() as AddressInfo;
      return { host: addr.address, port: addr.port };
    },
    close: () => app.close(),
  };
}
