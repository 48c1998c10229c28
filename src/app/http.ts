import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApi } from '../api/server.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { Pool } from '../store/db.ts';
import type { BulkWork } from '../store/bulk.ts';
import type { PinKeys } from '../store/pin.ts';
import type { OpsRouteOptions } from '../api/routes/ops.ts';
import { countIgnoredCdr } from '../metrics/index.ts';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../api/errors.ts';
import { buildCdrApp } from '../api/routes/cdr.ts';
import { countIngest } from '../cdr/counters.ts';
import { isUnavailableError, type CcardCallServices } from './call-services.ts';
import type { Config } from '../config/env.ts';
import type { XmlCurlOptions } from '../api/routes/freeswitch.ts';

export interface HttpServer {
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** With `cdr.ownListener`: serves POST /cdr alone on its own address. */
  listenCdr(host: string, port: number): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

/**
 * The HTTP side of the service: the operator API (/v1, /docs, /selfcare) and POST /cdr, where FreeSWITCH's
 * mod_json_cdr delivers every leg's CDR. A carrier leg's CDR debits its call (idempotent on the leg's uuid),
 * which is how calls still bridged when ccard restarted get billed.
 */
export async function buildHttp(deps: {
  pool: Pool;
  /** The API's own pool (default: pool); exports, imports and reports use `bulk`. */
  apiPool?: Pool;
  bulk?: BulkWork;
  pinKeys: PinKeys;
  live: LiveBalanceStore;
  logger: Logger;
  services: CcardCallServices;
  ops?: OpsRouteOptions;
  /** POST /cdr: credentials (CCARD_CDR_CREDENTIALS), and whether it has its own listener (CCARD_CDR_PORT). */
  cdr?: { credentials?: string | undefined; ownListener?: boolean };
  /** The console's session and cookie settings (defaults without it). */
  config?: Config;
  xmlCurl?: XmlCurlOptions;
  sipDomain?: string;
}): Promise<HttpServer> {
  const c = deps.config;
  const onJsonCdr = async (body: string) => {
    // Any 2xx tells mod_json_cdr the CDR was delivered; a 503 (database down) makes it retry and finally keep the
    // file in its err-log-dir, from where the spool intake (CCARD_CDR_SPOOL_DIR) or `ccard cdr import` bills it.
    try {
      const result = countIgnoredCdr('json_cdr', await deps.services.ingestJsonCdr(body));
      countIngest('json_cdr', result.status);
      if (result.status === 'invalid') deps.logger.warn({ reason: result.reason }, 'POST /cdr: invalid document');
      // The result as JSON (its amounts are bigint: decimal strings), without a stringify-and-parse round trip.
      const answer: Record<string, unknown> = { ...result };
      for (const k in answer) if (typeof answer[k] === 'bigint') answer[k] = (answer[k] as bigint).toString();
      return { status: 200, body: answer };
    } catch (err) {
      if (!isUnavailableError(err)) throw err;
      deps.logger.warn({ err: (err as Error).message }, 'POST /cdr: database unavailable, answered 503');
      return { status: 503, body: errorBody('SERVICE_UNAVAILABLE', 'the database is unavailable; retry later') };
    }
  };
  const ownListener = deps.cdr?.ownListener === true;
  const cdrApp = ownListener ? buildCdrApp(deps.logger, { handler: onJsonCdr, credentials: deps.cdr?.credentials }) : undefined;
  const app = buildApi({
    pool: deps.apiPool ?? deps.pool,
    ...(deps.bulk && { bulk: deps.bulk }),
    pinKeys: deps.pinKeys,
    logger: deps.logger,
    live: deps.live,
    ...(deps.ops && { ops: deps.ops }),
    ...(c && {
      console: {
        trustProxy: c.CCARD_TRUST_PROXY,
        cookieSecure: c.CCARD_COOKIE_SECURE,
        session: { idleSeconds: c.CCARD_SESSION_IDLE_SECONDS, absoluteSeconds: c.CCARD_SESSION_MAX_SECONDS },
      },
    }),
    ...(deps.xmlCurl && { xmlCurl: deps.xmlCurl }),
    ...(deps.sipDomain && { sipDomain: deps.sipDomain }),
    onBalanceChange: async (cardId, snapshot) => void (await deps.live.load(cardId, snapshot)),
    ...(!ownListener && { onJsonCdr, ...(deps.cdr?.credentials && { cdrCredentials: deps.cdr.credentials }) }),
  });
  await app.ready();
  await cdrApp?.ready();
  const listenOn = async (a: FastifyInstance, host: string, port: number) => {
    await a.listen({ host, port });
    const addr = a.server.address() as AddressInfo;
    return { host: addr.address, port: addr.port };
  };
  return {
    listen: (host, port) => listenOn(app, host, port),
    async listenCdr(host, port) {
      if (!cdrApp) throw new Error('POST /cdr is served by the API listener');
      return listenOn(cdrApp, host, port);
    },
    async close() {
      await Promise.all([app.close(), cdrApp?.close()]);
    },
  };
}
