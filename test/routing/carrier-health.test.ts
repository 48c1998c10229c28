import { describe, expect, it } from 'vitest';
import { CarrierHealth, carrierCooldownTotals } from '../../src/billing/carrier-health.ts';
import { MemoryCarrierSlots, RedisCarrierSlots, type CarrierSlots } from '../../src/live/carrier-slots.ts';
import { createTestRedis } from '../helpers/env.ts';

describe('CarrierHealth', () => {
  it('N failures within the window start a cool-down (logged, counted); it ends by itself', () => {
    let t = 0;
    const warned: object[] = [];
    const h = new CarrierHealth({ failures: 3, windowSec: 10, cooldownSec: 30 }, { warn: (o) => warned.push(o), info: () => {} }, () => t);
    const before = carrierCooldownTotals().get('acme') ?? 0;
    h.failure('1', 'acme');
    t += 11_000; // the first one leaves the window
    h.failure('1', 'acme');
    h.failure('1', 'acme');
    expect(h.cooling('1')).toBe(false);
    h.failure('1', 'acme');
    expect(h.cooling('1')).toBe(true);
    expect(warned).toHaveLength(1);
    expect(carrierCooldownTotals().get('acme')).toBe(before + 1);
    t += 29_000;
    expect(h.cooling('1')).toBe(true);
    t += 2_000;
    expect(h.cooling('1')).toBe(false);
  });

  it('an answered call starts the count again', () => {
    const h = new CarrierHealth({ failures: 2, windowSec: 60, cooldownSec: 60 });
    h.failure('1', 'x');
    h.success('1');
    h.failure('1', 'x');
    expect(h.cooling('1')).toBe(false);
  });
});

function slotsContract(name: string, make: () => { slots: CarrierSlots; close(): void }) {
  describe(name, () => {
    it('never lets more than max calls through, even when asked at once', async () => {
      const { slots, close } = make();
      try {
        const got = await Promise.all(Array.from({ length: 20 }, (_, i) => slots.acquire('7', `t${i}`, 5, 60_000)));
        expect(got.filter(Boolean)).toHaveLength(5);
        expect(await slots.active('7')).toBe(5);
        const holder = got.findIndex(Boolean);
        await slots.release('7', `t${holder}`);
        expect(await slots.acquire('7', 'late', 5, 60_000)).toBe(true);
        expect(await slots.acquire('7', 'later', 5, 60_000)).toBe(false);
        expect(await slots.acquire('8', 'other carrier', 5, 60_000)).toBe(true);
      } finally {
        close();
      }
    });

    it('a slot whose settle never came frees itself at its deadline', async () => {
      const { slots, close } = make();
      try {
        // Renewed from 100 ms to 1.5 s: still held well after the first deadline, free after the second.
        expect(await slots.acquire('9', 'a', 1, 100)).toBe(true);
        expect(await slots.acquire('9', 'b', 1, 100)).toBe(false);
        await slots.renew('9', 'a', 1_500);
        await new Promise((r) => setTimeout(r, 300));
        expect(await slots.active('9')).toBe(1);
        await new Promise((r) => setTimeout(r, 1_500));
        expect(await slots.acquire('9', 'b', 1, 100)).toBe(true);
      } finally {
        close();
      }
    });
  });
}

slotsContract('MemoryCarrierSlots', () => ({ slots: new MemoryCarrierSlots(), close: () => {} }));
slotsContract('RedisCarrierSlots', () => {
  const { redis, prefix } = createTestRedis();
  return { slots: new RedisCarrierSlots(redis, prefix), close: () => redis.disconnect() };
});
