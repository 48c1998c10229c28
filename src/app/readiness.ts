import { readdirSync } from 'node:fs';
import { Cluster, type Redis } from 'ioredis';
import type { Pool } from 'pg';
import { MIGRATIONS_DIR } from '../store/migrate.ts';

/**
 * GET /ready: may a load balancer (or systemd, or FreeSWITCH's operator) send this process calls and CDRs now?
 * Ready = PostgreSQL answers, every migration this build ships is applied, Redis answers (when configured), and
 * the process is not draining. Each check is bounded (CHECK_TIMEOUT_MS), so a hung server makes /ready red, never
 * slow. GET /health only says the process and its event loop are alive.
 */
export type CheckState = 'ok' | 'failed' | 'not_configured';

export interface ReadyReport {
  ready: boolean;
  draining: boolean;
  checks: { postgres: CheckState; migrations: CheckState; redis: CheckState };
  /** What failed, for a person reading the response (never a secret or a stack). */
  problems: string[];
}

export interface ReadinessDeps {
  /** The pool the call path uses: ready means it can be reached. */
  pool: Pool;
  redis?: Redis | Cluster | undefined;
  draining: () => boolean;
  migrationsDir?: string;
}

const CHECK_TIMEOUT_MS = 2_000;

function bounded<T>(op: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  op.catch(() => undefined);
  return Promise.race([op, timeout]).finally(() => clearTimeout(timer));
}

const oneLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);

/** A single Redis or Sentinel master: PING. A Cluster: a node answers and says every slot is served. */
async function redisAnswers(redis: Redis | Cluster): Promise<void> {
  if (!(redis instanceof Cluster)) {
    await redis.ping();
    return;
  }
  const info = String(await redis.call('CLUSTER', 'INFO'));
  const state = /cluster_state:(\w+)/.exec(info)?.[1];
  if (state !== 'ok') throw new Error(`cluster_state is ${state ?? 'unknown'}`);
}

export function createReadiness(deps: ReadinessDeps): () => Promise<ReadyReport> {
  // The migrations this build expects, read once: a newer build against an older schema is not ready.
  const expected = readdirSync(deps.migrationsDir ?? MIGRATIONS_DIR)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort();
  return async () => {
    const problems: string[] = [];
    const checks: ReadyReport['checks'] = { postgres: 'ok', migrations: 'ok', redis: deps.redis ? 'ok' : 'not_configured' };
    const pg = bounded(
      deps.pool.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM schema_migrations WHERE name = ANY($1)', [expected]),
      'PostgreSQL',
    ).then(
      (r) => {
        if (r.rows[0]!.n !== expected.length) {
          checks.migrations = 'failed';
          problems.push(`migrations: ${expected.length - r.rows[0]!.n} of ${expected.length} not applied`);
        }
      },
      (err) => {
        checks.postgres = 'failed';
        checks.migrations = 'failed';
        problems.push(`postgres: ${oneLine(err)}`);
      },
    );
    const redis = deps.redis
      ? bounded(redisAnswers(deps.redis), 'Redis').then(
          () => undefined,
          (err) => {
            checks.redis = 'failed';
            problems.push(`redis: ${oneLine(err)}`);
          },
        )
      : undefined;
    await Promise.all([pg, redis]);
    const draining = deps.draining();
    if (draining) problems.push('draining: this process is shutting down');
    return { ready: problems.length === 0, draining, checks, problems };
  };
}
