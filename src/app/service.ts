import cluster from 'node:cluster';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../config/env.ts';
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
import { embeddedDataDir, startEmbeddedPostgres, type EmbeddedPostgres } from '../store/embedded.ts';
import { migrate } from '../store/migrate.ts';
import { derivePinKeys, type PinKeys } from '../store/pin.ts';
import { RateCache } from '../store/rates.ts';
import { buildHttp, type HttpServer } from './http.ts';
import { runSupervisor, workerRole } from './cluster.ts';

export interface ServiceOptions {
  config?: Config;
  logger?: Logger;
  /** Overrides of the listening ports (0 = any free port; the demo and tests use it). */
  eslPort?: number;
  httpPort?: number;
  /** Called with every finished call (the demo prints them). */
  onCallEnded?: (outcome: FlowOutcome) => void;
  /** Extra flow options (tests shorten timeouts). */
  flow?: Partial<FlowOptions>;
  /** Run the maintenance-fee scheduler (default true). */
  scheduler?: boolean;
  /** Recover open calls before taking calls (default true; a replaced worker of a running supervisor does not). */
  recover?: boolean;
  /** Wraps each call before the flow gets it (the benchmark times decisions with it). */
  wrapCall?: (call: Call) => Call;
}

export interface Service {
  config: Config;
  logger: Logger;
  pool: Pool;
  live: LiveBalanceStore;
  rates: RateCache;
  services: CcardCallServices;
  pinKeys: PinKeys;
  esl: { host: string; port: number; server: EslServer };
  http: { host: string; port: number };
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
  const logger = opts.logger ?? pino({ level: config.LOG_LEVEL });
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
    const pool = createPool(databaseUrl, embedded ? 8 : 20);
    cleanups.push(() => pool.end());
    const applied = await migrate(pool);
    if (applied.length) logger.info({ applied }, 'migrations applied');

    let redis: Redis | undefined;
    let live: LiveBalanceStore;
    if (config.REDIS_URL) {
      redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2000, enableOfflineQueue: false, enableAutoPipelining: true });
      redis.on('error', (err) => logger.warn({ err: err.message }, 'redis error'));
      await new Promise<void>((resolve, reject) => {
        redis!.once('ready', resolve);
        redis!.once('error', reject);
      });
      cleanups.push(async () => redis!.disconnect());
      live = new RedisLiveBalance(redis, { prefix: config.CCARD_REDIS_PREFIX });
    } else {
      if (!config.embedded) logger.warn('REDIS_URL unset: live balances are held in this process (run only one ccard)');
      live = new MemoryLiveBalance();
    }
    cleanups.push(() => live.close());

    const rates = new RateCache({ pool, onError: (err) => logger.error({ err }, 'rate reload failed') });
    await rates.start();
    cleanups.push(() => rates.stop());
    // PGlite's socket multiplexer does not deliver NOTIFY to other connections: poll as well.
    const ratePoll = embedded ? setInterval(() => void rates.reload().catch(() => {}), 30_000) : undefined;
    ratePoll?.unref();
    cleanups.push(async () => clearInterval(ratePoll));

    const pinKeys = derivePinKeys(config.secret);
    const services = createCallServices({
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
        lockout: {
          maxFailures: config.CCARD_PIN_LOCKOUT_FAILURES,
          windowSec: config.CCARD_PIN_LOCKOUT_WINDOW,
          lockoutSec: config.CCARD_PIN_LOCKOUT_SECONDS,
        },
        carrierHealth: { failures: config.CCARD_CARRIER_FAILURES, windowSec: config.CCARD_CARRIER_FAILURE_WINDOW, cooldownSec: config.CCARD_CARRIER_COOLDOWN },
      },
    });
    if (opts.recover !== false) {
      const recovered = await services.recoverOpenCalls();
      logger.info({ recovered }, 'open calls recovered');
    }

    const http: HttpServer = await buildHttp({ pool, pinKeys, live, logger, services });
    cleanups.push(() => http.close());
    const httpAddr = await http.listen(config.CCARD_HTTP_HOST, opts.httpPort ?? config.CCARD_HTTP_PORT);

    if (opts.scheduler !== false) {
      const tick = async () => {
        try {
          const m = await chargeMaintenance(pool, new Date(), live);
          // Cards past their expiry show status 'expired' (the call flow refuses them whether or not this ran).
          const expiredCards = (await expireCards(pool, new Date())).length;
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
        const outcome = await runCallFlow(call, services, flowOptions, logger);
        opts.onCallEnded?.(outcome);
      },
    });
    const eslAddr = await esl.listen();
    logger.info({ esl: eslAddr, http: httpAddr, embedded: config.embedded }, 'ccard ready');

    let stopping: Promise<void> | undefined;
    return {
      config,
      logger,
      pool,
      live,
      rates,
      services,
      pinKeys,
      esl: { ...eslAddr, server: esl },
      http: httpAddr,
      stop(drainMs = 30_000) {
        stopping ??= (async () => {
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

/** `ccard serve` / `npm start`: runs until SIGINT or SIGTERM, then drains the calls in progress. */
export async function runServe(config: Config = loadConfig()): Promise<void> {
  if (config.CCARD_WORKERS > 1 && cluster.isPrimary) {
    const logger = pino({ level: config.LOG_LEVEL });
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
    logger: role ? pino({ level: config.LOG_LEVEL }).child({ worker: role.index }) : undefined,
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
