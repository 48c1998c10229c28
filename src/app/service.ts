import cluster from 'node:cluster';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createLogger } from './logger.ts';
import { loadConfig, type Config } from '../config/env.ts';
import { resumeKey } from '../flow/resume.ts';
import { createEslServer, UNUSED_EVENTS, type EslServer } from '../esl/index.ts';
import { runCallFlow } from '../flow/run.ts';
import type { FlowOutcome } from '../flow/machine.ts';
import { resolveFlowOptions, type FlowOptions } from '../flow/options.ts';
import type { Call } from '../flow/call.ts';
import { chargeMaintenance, expireCards } from '../billing/lifecycle.ts';
import { createCallServices, type CcardCallServices } from './call-services.ts';
import { MemoryLiveBalance } from '../live/memory-live.ts';
import { RedisLiveBalance } from '../live/redis-live.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import { createPool, type Pool } from '../store/db.ts';
import { BulkGate, type BulkWork } from '../store/bulk.ts';
import { embeddedDataDir, startEmbeddedPostgres, type EmbeddedPostgres } from '../store/embedded.ts';
import { migrate } from '../store/migrate.ts';
import { derivePinKeys, type PinKeys } from '../store/pin.ts';
import { RateCache } from '../store/rates.ts';
import { AccessNumberMap } from '../store/access-number-map.ts';
import { xmlCurlOptions } from '../xmlcurl/options.ts';
import { createDeviceCalls } from '../flow/device.ts';
import { createIvrVouchers } from '../flow/voucher.ts';
import { buildHttp, type HttpServer } from './http.ts';
import { runSupervisor, workerRole } from './cluster.ts';
import { createReadiness } from './readiness.ts';
import { createRedisClient, describeRedis, redisReady } from '../live/redis-client.ts';
import { bindMetricSources, countBackendError, trackCall } from '../metrics/index.ts';
import { createCdrIntake, type CdrIntake } from './cdr-intake.ts';

export interface ServiceOptions {
  config?: Config;
  logger?: Logger;
  /** Overrides of the listening ports (0 = any free port; the demo and tests use it). */
  eslPort?: number;
  httpPort?: number;
  /** Serve POST /cdr alone on this port (0 = any free port) instead of on the API's; default CCARD_CDR_PORT. */
  cdrPort?: number;
  /** Called with every finished call (the demo prints them). */
  onCallEnded?: (outcome: FlowOutcome) => void;
  /** Extra flow options (tests shorten timeouts). */
  flow?: Partial<FlowOptions>;
  /** Run the maintenance-fee scheduler (default true). */
  scheduler?: boolean;
  /** Recover open calls before taking calls (default true; a replaced worker of a running supervisor does not). */
  recover?: boolean;
  /** Scrape-time metric sources (the unbilled-calls count; default: calls rows with status 'unbilled'). */
  metrics?: { countUnbilled?: () => Promise<number>; cacheMs?: number };
  /** Wraps each call before the flow gets it (the benchmark times decisions with it). */
  wrapCall?: (call: Call) => Call;
}

export interface Service {
  config: Config;
  logger: Logger;
  /** The call-handling pool (flow, CDR debit, reservations, the rate cache). */
  pool: Pool;
  pools: { calls: Pool; api: Pool; bulk: BulkWork };
  live: LiveBalanceStore;
  rates: RateCache;
  services: CcardCallServices;
  pinKeys: PinKeys;
  esl: { host: string; port: number; server: EslServer };
  http: { host: string; port: number };
  /** POST /cdr's own listener, when it has one (CCARD_CDR_PORT). */
  cdr?: { host: string; port: number };
  /** The debit journal's retry worker and the CDR spool intake. */
  intake: CdrIntake;
  /** Stops accepting calls, waits for the calls in progress (up to drainMs), then closes everything. */
  stop(drainMs?: number): Promise<void>;
}

/**
 * Starts ccard: the database (PostgreSQL from DATABASE_URL, else embedded PGlite), migrations, the live balance
 * store (Redis from REDIS_URL, else in-process), the rate cache, open-call recovery, the HTTP API with the
 * mod_json_cdr endpoint, the maintenance scheduler and finally the event-socket server for FreeSWITCH.
 */
export async function startService(opts: ServiceOptions = {}): Promise<Service> {
  const config = opts.config ?? loadConfig();
  const logger = opts.logger ?? createLogger({ level: config.LOG_LEVEL, flushMs: config.CCARD_LOG_FLUSH_MS });
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err) => logger.warn({ err }, 'shutdown step failed'));
  };

  try {
    let databaseUrl = config.DATABASE_URL;
    let embedded: EmbeddedPostgres | undefined;
    if (!databaseUrl) {
      const dir = embeddedDataDir(config.CCARD_DATA_DIR);
      logger.info({ dir }, 'DATABASE_URL unset: using embedded PGlite');
      embedded = await startEmbeddedPostgres(dir);
      cleanups.push(() => embedded!.stop());
      databaseUrl = embedded.url;
    }
    // Three pools, so that no HTTP client can take a connection a phone call needs (docs/design.md, "Pools").
    const sizes = poolSizes(config);
    const pool = createPool(databaseUrl, sizes.calls);
    cleanups.push(() => pool.end());
    const apiPool = createPool(databaseUrl, sizes.api);
    cleanups.push(() => apiPool.end());
    // Belt and braces: PostgreSQL itself ends a bulk transaction left idle well past the stall bound.
    const bulkPool = createPool(
      databaseUrl,
      sizes.bulk,
      embedded ? {} : { idle_in_transaction_session_timeout: config.CCARD_EXPORT_STALL_MS + 60_000 },
    );
    cleanups.push(() => bulkPool.end());
    const bulk: BulkWork = {
      pool: bulkPool,
      gate: new BulkGate({ slots: sizes.bulk, queue: config.CCARD_BULK_QUEUE, queueWaitMs: config.CCARD_BULK_QUEUE_WAIT_MS }),
      stallMs: config.CCARD_EXPORT_STALL_MS,
    };
    const applied = await migrate(pool);
    if (applied.length) logger.info({ applied }, 'migrations applied');

    let redis: Redis | Cluster | undefined;
    let live: LiveBalanceStore;
    if (config.redis) {
      redis = createRedisClient(config.redis);
      redis.on('error', (err) => (logger.warn({ err: err.message }, 'redis error'), countBackendError(err, 'redis')));
      cleanups.push(async () => redis!.disconnect());
      await redisReady(redis);
      logger.info({ redis: describeRedis(config.redis) }, 'redis ready');
      live = new RedisLiveBalance(redis, { prefix: config.CCARD_REDIS_PREFIX });
    } else {
      if (!config.embedded) logger.warn('REDIS_URL unset: live balances are held in this process (run only one ccard)');
      live = new MemoryLiveBalance();
    }
    cleanups.push(() => live.close());

    const rates = new RateCache({
      pool,
      onError: (err) => logger.error({ err }, 'rate reload failed'),
      routeIndexBytes: config.CCARD_ROUTE_INDEX_MB * 1024 * 1024,
      onRouteIndex: (pair, stats) =>
        stats === 'too_big'
          ? logger.warn({ ...pair, budgetMB: config.CCARD_ROUTE_INDEX_MB }, 'joined route index over CCARD_ROUTE_INDEX_MB: this pair is routed per table')
          : logger.info({ ...pair, MB: Math.round(stats.bytes / 1e5) / 10, buildMs: Math.round(stats.buildMs), maxSliceMs: Math.round(stats.maxSliceMs) }, 'joined route index built'),
    });
    await rates.start();
    cleanups.push(() => rates.stop());
    // PGlite's socket multiplexer does not deliver NOTIFY to other connections: poll as well.
    const ratePoll = embedded ? setInterval(() => void rates.reload().catch(() => {}), 30_000) : undefined;
    ratePoll?.unref();
    cleanups.push(async () => clearInterval(ratePoll));

    const pinKeys = derivePinKeys(config.secret);
    const intake = createCdrIntake(config, { pool, live, logger }, logger);
    cleanups.push(() => intake.stop());
    const services = createCallServices({
      debitJournal: intake.sink,
      pool,
      live,
      rates,
      pinKeys,
      redis,
      redisPrefix: config.CCARD_REDIS_PREFIX,
      logger,
      config: {
        minCallSeconds: config.CCARD_MIN_CALL_SECONDS,
        maxCallSeconds: config.CCARD_MAX_CALL_SECONDS,
        originateTimeoutSec: config.CCARD_ORIGINATE_TIMEOUT,
        holdMarginSec: config.CCARD_HOLD_MARGIN_SECONDS,
        sliceSeconds: config.CCARD_SLICE_SECONDS,
        lockout: {
          maxFailures: config.CCARD_PIN_LOCKOUT_FAILURES,
          windowSec: config.CCARD_PIN_LOCKOUT_WINDOW,
          lockoutSec: config.CCARD_PIN_LOCKOUT_SECONDS,
          guardFailures: config.CCARD_PIN_GUARD_FAILURES,
          trustSec: config.CCARD_PIN_TRUST_SECONDS,
        },
        carrierHealth: { failures: config.CCARD_CARRIER_FAILURES, windowSec: config.CCARD_CARRIER_FAILURE_WINDOW, cooldownSec: config.CCARD_CARRIER_COOLDOWN },
      },
    });
    // Call endings already on disk (debit journal, CDR spool) are billed first: a call whose CDR is waiting there
    // is settled, not marked unbilled by the recovery's expiry.
    await intake.start(services);
    // Calls from devices (cards as SIP accounts) use the settings of the access number CCARD_DEVICE_DID.
    const deviceCalls = createDeviceCalls({
      pool,
      pinKeys,
      deviceDid: config.CCARD_DEVICE_DID,
      accessNumber: (did) => services.accessNumber(did),
      staleAfterSec: config.CCARD_MAX_CALL_SECONDS + config.CCARD_HOLD_MARGIN_SECONDS + 3600,
    });
    services.deviceCall = deviceCalls.deviceCall;
    // Voucher recharge in the IVR (access numbers with voucher_recharge): wrong vouchers count as wrong PINs.
    services.redeemVoucher = createIvrVouchers({
      admin: { pool, pinKeys, onBalanceChange: async (cardId, snapshot) => void (await live.load(cardId, snapshot)) },
      recordPinFailure: (did, callerId) => services.recordPinFailure(did, callerId),
      isLockedOut: (did, callerId) => services.isLockedOut(did, callerId),
    });
    if (opts.recover !== false) {
      const recovered = await services.recoverOpenCalls();
      logger.info({ recovered }, 'open calls recovered');
    }

    // mod_xml_curl's dialplan binding answers from memory (NOTIFY, plus a poll where PGlite drops NOTIFY).
    const accessNumbers = new AccessNumberMap({ pool, pollMs: embedded ? 2_000 : 30_000, onError: (err) => logger.warn({ err }, 'access number reload failed') });
    await accessNumbers.start();
    cleanups.push(() => accessNumbers.stop());
    const xmlCurl = xmlCurlOptions(config, accessNumbers, opts.eslPort ?? config.CCARD_ESL_PORT);
    const cdrPort = opts.cdrPort ?? config.CCARD_CDR_PORT;
    const cdr = { credentials: config.CCARD_CDR_CREDENTIALS, ownListener: cdrPort !== undefined };
    let draining = false;
    const readiness = createReadiness({ pool, redis, draining: () => draining });
    const unbindMetrics = bindMetricSources({ pool, isReady: async () => (await readiness()).ready, ...opts.metrics });
    cleanups.push(async () => unbindMetrics());
    const http: HttpServer = await buildHttp({ pool, apiPool, bulk, pinKeys, live, logger, services, config, cdr, xmlCurl, sipDomain: config.CCARD_SIP_DOMAIN, ops: { readiness, metricsToken: config.CCARD_METRICS_TOKEN } });
    cleanups.push(() => http.close());
    const httpAddr = await http.listen(config.CCARD_HTTP_HOST, opts.httpPort ?? config.CCARD_HTTP_PORT);
    const cdrAddr = cdrPort === undefined ? undefined : await http.listenCdr(config.CCARD_CDR_HOST ?? config.CCARD_HTTP_HOST, cdrPort);

    if (opts.scheduler !== false) {
      const tick = async () => {
        try {
          const m = await chargeMaintenance(apiPool, new Date(), live);
          // Cards past their expiry show status 'expired' (the call flow refuses them whether or not this ran).
          const expiredCards = (await expireCards(apiPool, new Date())).length;
          const overdue = await services.closeOverdueCalls();
          if (m.charges || expiredCards || overdue) logger.info({ maintenance: m, expiredCards, overdueCalls: overdue }, 'scheduler ran');
        } catch (err) {
          logger.warn({ err }, 'scheduler run failed; it will catch up next time');
        }
      };
      const timer = setInterval(() => void tick(), config.CCARD_MAINTENANCE_INTERVAL * 1000);
      timer.unref();
      void tick();
      cleanups.push(async () => clearInterval(timer));
    }

    const flowOptions: FlowOptions = {
      soundsPrefix: config.CCARD_SOUNDS_PREFIX,
      originateTimeoutSec: config.CCARD_ORIGINATE_TIMEOUT,
      warningSecondsBeforeEnd: config.CCARD_WARNING_SECONDS || 60,
      warningPrompt: config.CCARD_WARNING_SECONDS === 0 ? null : 'low_balance_warning',
      resumeKey: resumeKey(config.secret),
      ...opts.flow,
    };
    resolveFlowOptions(flowOptions); // a bad CCARD_SOUNDS_PREFIX fails here, not on every call
    const esl = createEslServer({
      host: config.CCARD_ESL_HOST,
      port: opts.eslPort ?? config.CCARD_ESL_PORT,
      logger,
      eventFormat: config.CCARD_EVENT_FORMAT,
      unsubscribe: UNUSED_EVENTS,
      commandTimeoutMs: config.CCARD_ESL_COMMAND_TIMEOUT_MS,
      onCall: async (session) => {
        const call = opts.wrapCall ? opts.wrapCall(session) : session;
        const outcome = await trackCall(() =>
          runCallFlow(call, services, flowOptions, logger).finally(() =>
            call.info.device ? deviceCalls.deviceCallEnded(call.info.uuid).catch((err) => logger.warn({ err }, 'device line not freed')) : undefined,
          ),
        );
        opts.onCallEnded?.(outcome);
      },
    });
    const eslAddr = await esl.listen();
    if (!config.CCARD_DIALPLAN_SOCKETS) xmlCurl.sockets = xmlCurlOptions(config, accessNumbers, eslAddr.port).sockets;
    logger.info({ esl: eslAddr, http: httpAddr, cdr: cdrAddr, embedded: config.embedded }, 'ccard ready');
    logger.flush(); // the ready line goes out now, not with the next buffered batch (src/app/logger.ts)

    let stopping: Promise<void> | undefined;
    return {
      config,
      logger,
      pool,
      pools: { calls: pool, api: apiPool, bulk },
      live,
      rates,
      services,
      pinKeys,
      esl: { ...eslAddr, server: esl },
      http: httpAddr,
      ...(cdrAddr && { cdr: cdrAddr }),
      intake,
      stop(drainMs = 30_000) {
        stopping ??= (async () => {
          // /ready turns red first; calls are still taken for CCARD_DRAIN_DELAY_SECONDS, while balancers notice.
          draining = true;
          await new Promise((r) => setTimeout(r, config.CCARD_DRAIN_DELAY_SECONDS * 1000));
          await esl.close(drainMs);
          await cleanup();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Connections per pool: calls (flow, CDR debit, reservations; one is the rate cache's LISTEN), the API
 * (interactive requests, self-care, the scheduler) and bulk (exports, imports, reports; also its gate's slots).
 * The embedded PGlite has one backend behind a 16-connection socket server: small pools keep it working.
 */
export function poolSizes(config: Config): { calls: number; api: number; bulk: number } {
  return {
    calls: config.CCARD_DB_POOL_CALLS ?? (config.embedded ? 4 : 10),
    api: config.CCARD_DB_POOL_API ?? (config.embedded ? 2 : 5),
    bulk: config.CCARD_DB_POOL_BULK ?? (config.embedded ? 1 : 3),
  };
}

/** `ccard serve` / `npm start`: runs until SIGINT or SIGTERM, then drains the calls in progress. */
export async function runServe(config: Config = loadConfig()): Promise<void> {
  if (cluster.isPrimary) (await import('./web-build.ts')).ensureWebBuilt((line) => process.stderr.write(`ccard: ${line}\n`));
  if (config.CCARD_WORKERS > 1 && cluster.isPrimary) {
    const logger = createLogger({ level: config.LOG_LEVEL, flushMs: config.CCARD_LOG_FLUSH_MS });
    try {
      await runSupervisor(config, logger);
    } catch (err) {
      logger.fatal({ err }, 'ccard could not start its workers');
      process.exit(1);
    }
    process.exit(0);
  }
  const role = workerRole();
  const service = await startService({
    config,
    logger: role ? createLogger({ level: config.LOG_LEVEL, flushMs: config.CCARD_LOG_FLUSH_MS }).child({ worker: role.index }) : undefined,
    scheduler: role?.schedules,
    recover: role?.recovers,
  });
  // `on`, not `once`: a second signal (a worker gets Ctrl-C from the terminal and from its supervisor) must not
  // kill the process before its calls have drained.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.logger.info({ signal }, 'shutting down: draining calls in progress');
    void service.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
