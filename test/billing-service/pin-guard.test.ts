/**
 * The PIN-guessing defence cannot be turned against cardholders: spoofed caller IDs and withheld callers buy an
 * attacker no more guesses than one caller, and cost cardholders calling from their own number nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices } from '../../src/app/call-services.ts';
import { pinGuardCounters } from '../../src/app/pin-guard.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { createTestDb, createTestRedis, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, createCard, createSeries, memoryRates, pinKeys } from './fixtures.ts';

let db: TestDb;
let card: { cardId: string; pin: string };
beforeAll(async () => {
  db = await createTestDb();
  const { seriesId } = await createSeries(db.pool);
  card = await createCard(db.pool, { seriesId });
});
afterAll(async () => {
  await db?.drop();
});

let didSeq = 1000;
async function accessNumber(authMode: 'pin' | 'cli-then-pin'): Promise<string> {
  const did = `1800${Date.now() % 1_000_000}${didSeq++}`;
  await db.pool.query(`INSERT INTO access_numbers (did, gateway, auth_mode) VALUES ($1, 'carrier', $2)`, [did, authMode]);
  return did;
}

describe.each([
  { name: 'memory', redis: false },
  { name: 'redis', redis: true },
])('PIN guard ($name)', ({ redis: useRedis }) => {
  const setup = () => {
    const r = useRedis ? createTestRedis() : undefined;
    const warnings: Array<{ obj: object; msg: string }> = [];
    const svc = createCallServices({
      pool: db.pool,
      live: new MemoryLiveBalance(),
      rates: memoryRates({}),
      pinKeys,
      redis: r?.redis,
      redisPrefix: r?.prefix,
      config: { ...BASE_CONFIG, lockout: { maxFailures: 5, windowSec: 600, lockoutSec: 900 } },
      logger: { info: () => {}, error: () => {}, warn: (obj: object, msg?: string) => void warnings.push({ obj, msg: msg ?? '' }) },
    });
    return { svc, warnings, close: () => r?.redis.disconnect() };
  };

  it('17 spoofed caller IDs x 3 wrong PINs: cardholders calling from their own number are still served', async () => {
    const { svc, warnings, close } = setup();
    try {
      const did = await accessNumber('cli-then-pin');
      // A cardholder who entered a right PIN before, and one whose number is bound to a card.
      const regular = `1555${String(Date.now()).slice(-7)}`;
      expect(await svc.authorizeByPin(card.pin, { did, callerId: regular })).not.toMatchObject({ reason: 'unknown' });
      const bound = `1556${String(Date.now()).slice(-7)}`;
      await db.pool.query('INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2)', [bound, card.cardId]);
      const before = pinGuardCounters();

      for (let i = 0; i < 17; i++) for (let k = 0; k < 3; k++) await svc.recordPinFailure(did, `1999000${String(i).padStart(4, '0')}`);

      expect(await svc.isLockedOut(did, regular)).toBe(false);
      expect(await svc.isLockedOut(did, bound)).toBe(false);
      // Unknown and withheld callers of this access number wait (that is the tightening); other numbers do not.
      expect(await svc.isLockedOut(did, '15557770000')).toBe(true);
      expect(await svc.isLockedOut(did, '')).toBe(true);
      expect(await svc.isLockedOut(did, 'anonymous')).toBe(true);
      expect(await svc.isLockedOut(await accessNumber('pin'), '15557770000')).toBe(false);
      // Operators are told: a log line and a counter.
      expect(warnings.some((w) => /PIN guessing on an access number/.test(w.msg) && (w.obj as { did: string }).did === did)).toBe(true);
      expect(pinGuardCounters().accessNumberGuarded).toBeGreaterThan(before.accessNumberGuarded);
      expect(pinGuardCounters().refused).toBeGreaterThan(before.refused);
    } finally {
      close();
    }
  });

  it('withheld callers do not share a per-caller bucket: one cannot lock out the others', async () => {
    const { svc, close } = setup();
    try {
      const did = await accessNumber('pin');
      for (let i = 0; i < 6; i++) await svc.recordPinFailure(did, 'anonymous');
      expect(await svc.isLockedOut(did, '')).toBe(false);
      expect(await svc.isLockedOut(did, 'anonymous')).toBe(false);
      // A numbered caller is locked after its own 5.
      for (let i = 0; i < 5; i++) await svc.recordPinFailure(did, '15558880001');
      expect(await svc.isLockedOut(did, '15558880001')).toBe(true);
      expect(await svc.isLockedOut(did, '15558880002')).toBe(false);
    } finally {
      close();
    }
  });

  it("a bound caller ID is trusted only where bound callers need no PIN; a spoofed trusted number gets 5 guesses, then is locked", async () => {
    const { svc, close } = setup();
    try {
      const pinOnly = await accessNumber('pin');
      const bound = `1557${String(Date.now()).slice(-7)}`;
      await db.pool.query('INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2)', [bound, card.cardId]);
      for (let i = 0; i < 20; i++) await svc.recordPinFailure(pinOnly, `1999100${String(i).padStart(4, '0')}`);
      expect(await svc.isLockedOut(pinOnly, bound)).toBe(true);

      const did = await accessNumber('pin');
      const known = `1558${String(Date.now()).slice(-7)}`;
      expect(await svc.authorizeByPin(card.pin, { did, callerId: known })).not.toMatchObject({ reason: 'unknown' });
      for (let i = 0; i < 4; i++) await svc.recordPinFailure(did, known);
      expect(await svc.isLockedOut(did, known)).toBe(false);
      await svc.recordPinFailure(did, known);
      expect(await svc.isLockedOut(did, known)).toBe(true);
      // Locked like any number now: even the right PIN is not checked until the lockout ends (the price of a spoofed
      // known-good number: its owner waits lockoutSec, once).
      expect(await svc.authorizeByPin(card.pin, { did: await accessNumber('pin'), callerId: known })).toEqual({ ok: false, reason: 'unknown' });
    } finally {
      close();
    }
  });
});

describe('PINs keyed after the budget ran out', () => {
  it('are not checked for an untrusted caller already in the PIN prompt', async () => {
    const r = createTestRedis();
    const svc = createCallServices({
      pool: db.pool,
      live: new MemoryLiveBalance(),
      rates: memoryRates({}),
      pinKeys,
      redis: r.redis,
      redisPrefix: r.prefix,
      config: { ...BASE_CONFIG, lockout: { maxFailures: 5, windowSec: 600, lockoutSec: 900, guardFailures: 3 } },
      logger: { info: () => {}, warn: () => {}, error: () => {} },
    });
    try {
      const did = await accessNumber('pin');
      for (let i = 0; i < 3; i++) await svc.recordPinFailure(did, `1999200000${i}`);
      // The right PIN, from a caller who was already in the prompt: refused as unknown.
      expect(await svc.authorizeByPin(card.pin, { did, callerId: '19992000009' })).toEqual({ ok: false, reason: 'unknown' });
      // On another access number it is checked.
      expect(await svc.authorizeByPin(card.pin, { did: await accessNumber('pin'), callerId: '19992000009' })).not.toMatchObject({ reason: 'unknown' });
    } finally {
      r.redis.disconnect();
    }
  });
});
