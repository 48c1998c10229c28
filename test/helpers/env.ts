import pg from 'pg';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createPool, type Pool } from '../../src/store/db.ts';
import { pgAdminUrl, pgUrlFor, redisUrl } from './services.ts';

export interface TestDb {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated PostgreSQL database (a clone of this run's template). Call drop() in afterAll. */
export async function createTestDb(): Promise<TestDb> {
  const name = `${inject('runId')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgAdminUrl() });
  await admin.connect();
  try {
    // CREATE DATABASE ... TEMPLATE fails while another session is connected to the template: retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDb')}"`);
        break;
      } catch (err) {
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await admin.end();
  }
  const url = pgUrlFor(name);
  const pool = createPool(url, 20);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: pgAdminUrl() });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** A Redis connection plus a key prefix unique to this test file (removed by the run's teardown). */
export function createTestRedis(): { redis: Redis; prefix: string; url: string } {
  const prefix = `${inject('runId')}:${randomBytes(4).toString('hex')}:`;
  return { redis: new Redis(redisUrl()), prefix, url: redisUrl() };
}
