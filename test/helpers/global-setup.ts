import pg from 'pg';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/store/migrate.ts';
import { pgAdminUrl, pgUrlFor, redisUrl } from './services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string;
    templateDb: string;
  }
}

const NOT_REACHABLE =
  'The tests need PostgreSQL and Redis (set DATABASE_URL / REDIS_URL, or run both on localhost: ' +
  'apt-get install postgresql redis-server).';

/** Creates a migrated template database for this run; every test file clones it. Drops everything at the end. */
export default async function setup(project: TestProject) {
  const runId = `ccard_t_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const templateDb = `${runId}_tpl`;
  const admin = new pg.Client({ connectionString: pgAdminUrl(), connectionTimeoutMillis: 5000 });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`${NOT_REACHABLE} (${(err as Error).message})`);
  }
  const redis = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`${NOT_REACHABLE} (${(err as Error).message})`);
  } finally {
    redis.disconnect();
  }
  await admin.query(`CREATE DATABASE "${templateDb}"`);
  const pool = new pg.Pool({ connectionString: pgUrlFor(templateDb), max: 1 });
  await migrate(pool);
  await pool.end();

  project.provide('runId', runId);
  project.provide('templateDb', templateDb);

  return async () => {
    const dbs = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`${runId}%`],
    );
    for (const { datname } of dbs.rows) {
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => {});
    }
    await admin.end();
    const r = new Redis(redisUrl());
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${runId}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
    r.disconnect();
  };
}
