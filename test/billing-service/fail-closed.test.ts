import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createCallServices, isUnavailableError } from '../../src/app/call-services.ts';
import { ServiceUnavailableError } from '../../src/flow/services.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { RedisLiveBalance } from '../../src/live/redis-live.ts';
import { createPool } from '../../src/store/db.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, createCard, createSeries, memoryRates, pinKeys, silentLog } from './fixtures.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const ctx = { ivrUuid: crypto.randomUUID(), did: '18005550100', callerId: '15551230000' };
// Nothing listens on port 1.
const CLOSED_PG = 'postgres://postgres@127.0.0.1:1/none';

describe('fail closed', () => {
  it('PostgreSQL unreachable: every operation throws ServiceUnavailableError', async () => {
    const pool = createPool(CLOSED_PG, 2);
    const svc = createCallServices({ pool, live: new MemoryLiveBalance(), rates: memoryRates({}), pinKeys, config: BASE_CONFIG, logger: silentLog });
    try {
      const ops: Array<() => Promise<unknown>> = [
        () => svc.accessNumber('18005550100'),
        () => svc.authorizeByPin('123456789012'),
        () => svc.authorize('1'),
        () => svc.balance('1'),
        () => svc.reserve('1', '15557654321', ctx),
        () => svc.ingestJsonCdr(`{"variables":{"uuid":"${crypto.randomUUID()}"}}`),
      ];
      for (const op of ops) {
        const err = await op().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ServiceUnavailableError);
        expect((err as ServiceUnavailableError).code).toBe('SERVICE_UNAVAILABLE');
      }
    } finally {
      await pool.end();
    }
  });

  it('Redis unreachable: reserve and the lockout fail closed, nothing is held or recorded', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent: 3 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 5_000_000n });
    const redis = new Redis({ port: 1, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    const live = new RedisLiveBalance(redis, { prefix: 'closed:' });
    const svc = createCallServices({
      pool: db.pool,
      live,
      redis,
      rates: memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 600_000n }] }),
      pinKeys,
      config: BASE_CONFIG,
      logger: silentLog,
    });
    try {
      await expect(svc.reserve(cardId, '15557654321', ctx)).rejects.toBeInstanceOf(ServiceUnavailableError);
      await expect(svc.authorize(cardId)).rejects.toBeInstanceOf(ServiceUnavailableError);
      await expect(svc.isLockedOut('18005550100', '15551230000')).rejects.toBeInstanceOf(ServiceUnavailableError);
      await expect(svc.recordPinFailure('18005550100', '15551230000')).rejects.toBeInstanceOf(ServiceUnavailableError);
      const calls = await db.pool.query('SELECT 1 FROM calls WHERE card_id = $1', [cardId]);
      expect(calls.rowCount).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('a hung dependency times out into ServiceUnavailableError', async () => {
    const hung = new MemoryLiveBalance();
    hung.peek = () => new Promise(() => {});
    const { seriesId, rateTableId } = await createSeries(db.pool);
    const { cardId } = await createCard(db.pool, { seriesId, balance: 5_000_000n });
    const svc = createCallServices({
      pool: db.pool,
      live: hung,
      rates: memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 600_000n }] }),
      pinKeys,
      config: { ...BASE_CONFIG, opTimeoutMs: 200 },
      logger: silentLog,
    });
    await expect(svc.reserve(cardId, '15557654321', ctx)).rejects.toThrow(/took longer than 200 ms/);
  });

  it('classifies errors: connection failures yes, bugs and constraint violations no', () => {
    expect(isUnavailableError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isUnavailableError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailableError(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]))).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isUnavailableError(new TypeError('x is undefined'))).toBe(false);
  });
});

describe.each([
  { name: 'memory', redis: false },
  { name: 'redis', redis: true },
])('PIN lockout ($name)', ({ redis: useRedis }) => {
  it('locks a caller ID after maxFailures within the window, and a DID (for untrusted callers) after guardFailures', async () => {
    const r = useRedis ? createTestRedis() : undefined;
    const svc = createCallServices({
      pool: db.pool,
      live: new MemoryLiveBalance(),
      rates: memoryRates({}),
      pinKeys,
      redis: r?.redis,
      redisPrefix: r?.prefix,
      config: { ...BASE_CONFIG, lockout: { maxFailures: 3, windowSec: 60, lockoutSec: 1, guardFailures: 5 } },
      logger: silentLog,
    });
    try {
      const did = `1800555${Math.floor(Math.random() * 9000 + 1000)}`;
      expect(await svc.isLockedOut(did, '15550000001')).toBe(false);
      await svc.recordPinFailure(did, '15550000001');
      await svc.recordPinFailure(did, '15550000001');
      expect(await svc.isLockedOut(did, '15550000001')).toBe(false);
      await svc.recordPinFailure(did, '15550000001');
      expect(await svc.isLockedOut(did, '15550000001')).toBe(true);
      expect(await svc.isLockedOut(did, '15550000002')).toBe(false);
      // Two more failures from other callers reach the DID's limit: everyone on it is locked.
      await svc.recordPinFailure(did, '15550000002');
      await svc.recordPinFailure(did, '');
      expect(await svc.isLockedOut(did, '15550000003')).toBe(true);
      expect(await svc.isLockedOut(`${did}9`, '15550000003')).toBe(false);
      // The lockout ends.
      await new Promise((res) => setTimeout(res, 1_100));
      expect(await svc.isLockedOut(did, '15550000001')).toBe(false);
    } finally {
      r?.redis.disconnect();
    }
  });
});
