/**
 * CCARD_WORKERS > 1: one supervisor process forks that many workers. Each worker is a complete ccard (its own
 * PostgreSQL pool, Redis connection, rate cache and call actors) on the same event-socket and HTTP ports, so one
 * ccard uses as many cores as it is given: a call's CPU is spent in one Node.js event loop, which caps one process
 * at roughly 1000 / (its CPU ms per call) calls per second.
 *
 * Nothing is shared between workers but PostgreSQL and Redis, exactly as with several ccard hosts behind
 * FreeSWITCH's `socket host1:port|host2:port`: the Lua reservation keeps a card from being overspent whichever
 * worker holds its calls, and a debit is idempotent whichever worker (or mod_json_cdr POST) brings the CDR.
 *
 * - Workers accept connections themselves (SCHED_NONE), with no hop through the supervisor.
 * - Worker 0 of the first start recovers open calls (as a single ccard does when it starts); a replaced worker does
 *   not, since its siblings' calls are live. Worker 0 (first or replaced) runs the maintenance scheduler.
 * - A worker that exits unasked is replaced, at most once a second.
 * - SIGTERM / SIGINT reach every worker, which drains its calls; the supervisor exits when the last one has.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/env.ts';
import { serveClusterMetrics } from '../metrics/index.ts';

/** Set by the supervisor for its workers (not configuration). */
export const WORKER_INDEX_ENV = 'CCARD_WORKER_INDEX';
export const WORKER_RECOVERS_ENV = 'CCARD_WORKER_RECOVERS';

const RESTART_DELAY_MS = 1_000;

export interface WorkerRole {
  index: number;
  /** Runs the start-up recovery of open calls. */
  recovers: boolean;
  /** Runs the maintenance scheduler. */
  schedules: boolean;
}

/** This process's role when it is a worker of the supervisor, else undefined. */
export function workerRole(env: NodeJS.ProcessEnv = process.env): WorkerRole | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(env[WORKER_INDEX_ENV] ?? 0);
  return { index, recovers: env[WORKER_RECOVERS_ENV] === '1', schedules: index === 0 };
}

/** Runs the supervisor: forks config.CCARD_WORKERS workers and keeps them running until SIGTERM / SIGINT. */
export function runSupervisor(config: Config, logger: Logger): Promise<void> {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  serveClusterMetrics(); // GET /metrics on any worker answers for all of them
  const log = logger.child({ supervisor: process.pid });
  const workers = new Map<Worker, number>();
  let stopping = false;
  let started = false; // some worker has listened: a later exit is a crash to recover from, not a bad start
  let failStart: ((err: Error) => void) | undefined;

  const fork = (index: number, recovers: boolean): void => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [WORKER_RECOVERS_ENV]: recovers ? '1' : '0' });
    workers.set(worker, index);
    worker.once('listening', () => (started = true));
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      if (!started && !stopping) {
        // It never got going (bad configuration, database unreachable...): what a single ccard would do, stop.
        stopping = true;
        for (const w of workers.keys()) w.process.kill('SIGTERM');
        failStart?.(new Error(`worker ${index} exited (code ${code}, signal ${signal}) before it was ready`));
        return;
      }
      if (stopping) {
        log.info({ worker: index, pid: worker.process.pid, code, signal }, 'worker stopped');
        return;
      }
      log.error({ worker: index, pid: worker.process.pid, code, signal }, 'worker exited; starting a new one');
      setTimeout(() => {
        if (!stopping) fork(index, false);
      }, RESTART_DELAY_MS);
    });
  };

  // Worker 0 starts first (it recovers open calls before any worker takes a call), then the others.
  fork(0, true);
  const [first] = workers.keys();
  const others = () => {
    for (let i = 1; i < config.CCARD_WORKERS; i++) fork(i, false);
  };
  first!.once('listening', others);
  first!.once('exit', () => first!.off('listening', others));
  log.info({ workers: config.CCARD_WORKERS }, 'ccard supervisor started');

  return new Promise((resolve, reject) => {
    failStart = reject;
    const shutdown = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: every worker drains its calls');
      if (workers.size === 0) resolve();
      for (const worker of workers.keys()) worker.process.kill(signal);
      const check = setInterval(() => {
        if (workers.size > 0) return;
        clearInterval(check);
        resolve();
      }, 50);
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });
}
