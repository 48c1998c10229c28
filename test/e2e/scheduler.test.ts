import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/env.ts';
import { seedDemo } from '../../src/app/seed.ts';
import { startService, type Service } from '../../src/app/service.ts';
import { derivePinKeys } from '../../src/store/pin.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { waitFor } from './harness.ts';

const SECRET = 'test-secret-0123456789';
let db: TestDb;
let service: Service | undefined;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await service?.stop(0);
  await db?.drop();
});

describe('the scheduler', () => {
  it('marks cards past their expiry expired, so an operator searching by status finds them', async () => {
    const data = await seedDemo(db.pool, derivePinKeys(SECRET));
    const { rich, poor } = data.cards;
    await db.pool.query(`UPDATE cards SET expires_at = now() - interval '1 day' WHERE id = $1`, [rich.id]);
    await db.pool.query(`UPDATE cards SET expires_at = now() + interval '1 day' WHERE id = $1`, [poor.id]);
    const { redis, prefix, url } = createTestRedis();
    redis.disconnect();
    const config = loadConfig({
      DATABASE_URL: db.url, REDIS_URL: url, CCARD_REDIS_PREFIX: prefix, CCARD_SECRET: SECRET, LOG_LEVEL: 'silent',
    });
    // The scheduler's first run is at start; no call is placed, nobody asks to authorize the card.
    service = await startService({ config, logger: pino({ level: 'silent' }), eslPort: 0, httpPort: 0 });
    const status = async (id: string) =>
      (await db.pool.query<{ status: string }>(`SELECT status FROM cards WHERE id = $1`, [id])).rows[0]!.status;
    await waitFor('the expired card', async () => ((await status(rich.id)) === 'expired' ? true : undefined));
    expect(await status(poor.id)).toBe('active');
  });
});
