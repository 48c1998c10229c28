import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices } from '../../src/app/call-services.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { ACCESS_NUMBER_SETTINGS } from '../../src/store/access-numbers.ts';
import { addDid, didEditSchema, editDid } from '../../src/store/admin/dids.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, memoryRates, pinKeys, silentLog } from '../billing-service/fixtures.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

describe('the access-number row, mapped once', () => {
  it('every setting an operator can set has one entry in the mapping (enabled only filters)', () => {
    const adminNames = Object.keys(didEditSchema.shape).filter((k) => k !== 'enabled').sort();
    expect(Object.values(ACCESS_NUMBER_SETTINGS).map((s) => s.admin).sort()).toEqual(adminNames);
  });

  it('what an operator sets is what the call flow reads, setting by setting', async () => {
    const ctx = { pool: db.pool, pinKeys };
    // Every setting away from its default.
    const did = await addDid(ctx, {
      did: '18005550177', language: 'es', auth: 'cli-then-pin', gateway: 'gw-a', failoverGateway: 'gw-b',
      minDigits: 7, maxDigits: 13, allowPrefix: ['1', '44'], denyPrefix: ['1900'], countryCode: '44',
      nationalPrefix: '0', pinLength: 12, pinTries: 2, bindCli: true, maxCallsPerSession: 4,
    });
    const svc = createCallServices({ pool: db.pool, live: new MemoryLiveBalance(), rates: memoryRates({}), pinKeys, config: BASE_CONFIG, logger: silentLog });
    const seen = (await svc.accessNumber('18005550177'))!;
    const admin = did as unknown as Record<string, unknown>;
    for (const [name, s] of Object.entries(ACCESS_NUMBER_SETTINGS)) expect([name, seen[name as keyof typeof seen]]).toEqual([name, admin[s.admin]]);
    expect(seen).toMatchObject({ did: '18005550177', authMode: 'cli-then-pin', allowedPrefixes: ['1', '44'], bindCliAfterPin: true });
    expect(seen.cliCardId).toBeUndefined();
    expect((await svc.accessNumber('18005550177', '15551230000'))!.cliCardId).toBeNull();
    await editDid(ctx, '18005550177', { enabled: false });
    expect(await svc.accessNumber('18005550177')).toBeUndefined();
  });
});
