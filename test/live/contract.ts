import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { LiveBalanceStore } from '../../src/live/live-balance.ts';

export interface LiveStoreFactory {
  /** A store whose cached card entries go idle after `idleTtlMs`. */
  create(opts: { idleTtlMs?: number }): Promise<LiveBalanceStore>;
  teardown?(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms (last: ${String(v)})`);
    await sleep(20);
  }
}

/** The LiveBalanceStore contract (src/live/live-balance.ts), run against every implementation. */
export function liveBalanceContract(name: string, factory: LiveStoreFactory): void {
  describe(`LiveBalanceStore contract: ${name}`, () => {
    let store: LiveBalanceStore;
    let seq = 0;
    const card = () => `card${Date.now()}x${++seq}`;

    beforeAll(async () => {
      store = await factory.create({});
    });
    afterAll(async () => {
      await store.close();
      await factory.teardown?.();
    });

    it('needs a load before anything, then reports spendable minus holds', async () => {
      const c = card();
      expect(await store.peek(c)).toBe('needs_load');
      expect(await store.reserve(c, 'a', 10n, 60_000, 5)).toEqual({ ok: false, reason: 'needs_load' });
      await store.load(c, { spendable: 5_000_000n, version: 1n });
      expect(await store.peek(c)).toEqual({ available: 5_000_000n, active: 0 });
      const r = await store.reserve(c, 'a', 1_250_000n, 60_000, 5);
      expect(r).toEqual({ ok: true, available: 3_750_000n });
      expect(await store.peek(c)).toEqual({ available: 3_750_000n, active: 1 });
      const holds = await store.reservations(c);
      expect(holds.map((h) => [h.callId, h.amount])).toEqual([['a', 1_250_000n]]);
      expect(holds[0]!.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    });

    it('never lets an older version overwrite a newer one (load and settle)', async () => {
      const c = card();
      await store.load(c, { spendable: 900n, version: 5n });
      await store.load(c, { spendable: 1_000n, version: 4n });
      expect(await store.peek(c)).toEqual({ available: 900n, active: 0 });
      await store.load(c, { spendable: 950n, version: 5n });
      expect(await store.peek(c)).toEqual({ available: 900n, active: 0 });
      await store.load(c, { spendable: 800n, version: 6n });
      expect(await store.peek(c)).toEqual({ available: 800n, active: 0 });

      await store.reserve(c, 'x', 300n, 60_000, 5);
      await store.settle(c, 'x', { spendable: 9_999n, version: 3n });
      expect(await store.peek(c)).toEqual({ available: 800n, active: 0 });
      await store.reserve(c, 'y', 300n, 60_000, 5);
      await store.settle(c, 'y', { spendable: 500n, version: 7n });
      expect(await store.peek(c)).toEqual({ available: 500n, active: 0 });
    });

    it('settle caches its snapshot even when the card is not cached', async () => {
      const c = card();
      await store.settle(c, 'nothing', { spendable: 42n, version: 9n });
      expect(await store.peek(c)).toEqual({ available: 42n, active: 0 });
      await store.load(c, { spendable: 100n, version: 8n });
      expect(await store.peek(c)).toEqual({ available: 42n, active: 0 });
    });

    it('refuses an amount above what is available and says how much is', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      expect(await store.reserve(c, 'a', 700n, 60_000, 5)).toEqual({ ok: true, available: 300n });
      expect(await store.reserve(c, 'b', 301n, 60_000, 5)).toEqual({ ok: false, reason: 'insufficient', available: 300n });
      expect(await store.reserve(c, 'b', 300n, 60_000, 5)).toEqual({ ok: true, available: 0n });
      expect(await store.reserve(c, 'c', 1n, 60_000, 5)).toEqual({ ok: false, reason: 'insufficient', available: 0n });
      // A zero-cost call still fits.
      expect(await store.reserve(c, 'd', 0n, 60_000, 5)).toEqual({ ok: true, available: 0n });
    });

    it('handles a negative spendable (credit used up) without going further below', async () => {
      const c = card();
      await store.load(c, { spendable: -50n, version: 1n });
      expect(await store.peek(c)).toEqual({ available: -50n, active: 0 });
      expect(await store.reserve(c, 'a', 1n, 60_000, 5)).toEqual({ ok: false, reason: 'insufficient', available: -50n });
    });

    it('re-reserving a call replaces its hold instead of adding one', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'a', 800n, 60_000, 1);
      expect(await store.reserve(c, 'a', 900n, 60_000, 1)).toEqual({ ok: true, available: 100n });
      expect(await store.peek(c)).toEqual({ available: 100n, active: 1 });
    });

    it('enforces the concurrent call limit', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000_000n, version: 1n });
      expect((await store.reserve(c, 'a', 1n, 60_000, 2)).ok).toBe(true);
      expect((await store.reserve(c, 'b', 1n, 60_000, 2)).ok).toBe(true);
      expect(await store.reserve(c, 'c', 1n, 60_000, 2)).toEqual({ ok: false, reason: 'too_many_calls', active: 2 });
      await store.settle(c, 'a');
      expect((await store.reserve(c, 'c', 1n, 60_000, 2)).ok).toBe(true);
    });

    it('admits exactly what fits under simultaneous reserves', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.reserve(c, `k${i}`, 100n, 60_000, 25)),
      );
      const ok = results.filter((r) => r.ok).length;
      expect(ok).toBe(10);
      expect(await store.peek(c)).toEqual({ available: 0n, active: 10 });
      const limited = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.reserve(`${c}L`, `k${i}`, 0n, 60_000, 7)),
      );
      expect(limited.filter((r) => !r.ok && r.reason === 'needs_load').length).toBe(40);
      await store.load(`${c}L`, { spendable: 0n, version: 1n });
      const limited2 = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.reserve(`${c}L`, `k${i}`, 0n, 60_000, 7)),
      );
      expect(limited2.filter((r) => r.ok).length).toBe(7);
      expect(limited2.filter((r) => !r.ok && r.reason === 'too_many_calls').length).toBe(33);
    });

    it('settle is idempotent and a settle without snapshot only drops the hold', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'a', 400n, 60_000, 5);
      await store.settle(c, 'a', { spendable: 700n, version: 2n });
      await store.settle(c, 'a', { spendable: 700n, version: 2n });
      await store.settle(c, 'a');
      await store.settle(c, 'never-reserved');
      expect(await store.peek(c)).toEqual({ available: 700n, active: 0 });
      expect(await store.reservations(c)).toEqual([]);
    });

    it('purging an expired hold drops the cached spendable (forces a reload)', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'short', 100n, 150, 5);
      await store.reserve(c, 'long', 200n, 60_000, 5);
      expect(await store.peek(c)).toEqual({ available: 700n, active: 2 });
      await until(
        () => store.reservations(c),
        (r) => r.length === 1,
      );
      expect(await store.peek(c)).toBe('needs_load');
      // The unexpired hold survives the reload.
      await store.load(c, { spendable: 900n, version: 2n });
      expect(await store.peek(c)).toEqual({ available: 700n, active: 1 });
      expect((await store.reservations(c)).map((r) => r.callId)).toEqual(['long']);
    });

    it('an expired hold frees its concurrency slot', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'a', 1n, 120, 1);
      expect((await store.reserve(c, 'b', 1n, 60_000, 1)).ok).toBe(false);
      await sleep(200);
      const r = await store.reserve(c, 'b', 1n, 60_000, 1);
      // The purge dropped the cache: the slot is free but the balance must be reloaded first.
      expect(r).toEqual({ ok: false, reason: 'needs_load' });
      await store.load(c, { spendable: 999n, version: 2n });
      expect(await store.reserve(c, 'b', 1n, 60_000, 1)).toEqual({ ok: true, available: 998n });
    });

    it('drops an idle cached card after its idle TTL', async () => {
      // Wide margins: a loaded CI machine can pause a sleeping test for a few hundred milliseconds.
      const idle = await factory.create({ idleTtlMs: 1_000 });
      try {
        const c = card();
        await idle.load(c, { spendable: 10n, version: 1n });
        expect(await idle.peek(c)).toEqual({ available: 10n, active: 0 });
        // Use keeps it cached (each peek refreshes the idle TTL)...
        for (let i = 0; i < 4; i++) {
          await sleep(300);
          expect(await idle.peek(c)).toEqual({ available: 10n, active: 0 });
        }
        // ...and leaving it alone lets it go.
        await sleep(1_500);
        expect(await idle.peek(c)).toBe('needs_load');
      } finally {
        await idle.close();
      }
    });

    it('extend grows an existing hold to the new amount, only while the card covers it', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'a', 100n, 60_000, 5);
      await store.reserve(c, 'b', 300n, 60_000, 5);
      // The new amount is the call's whole hold, checked against spendable minus every OTHER hold.
      expect(await store.extend(c, 'a', 500n, 60_000)).toEqual({ ok: true, available: 200n });
      expect(await store.peek(c)).toEqual({ available: 200n, active: 2 });
      expect(await store.extend(c, 'a', 701n, 60_000)).toEqual({ ok: false, reason: 'insufficient', available: 700n });
      // A refused extension keeps the hold as it was.
      expect((await store.reservations(c)).find((h) => h.callId === 'a')!.amount).toBe(500n);
      expect(await store.extend(c, 'a', 700n, 60_000)).toEqual({ ok: true, available: 0n });
      // Never lowered: a smaller amount leaves the hold as it is.
      expect(await store.extend(c, 'a', 10n, 60_000)).toEqual({ ok: true, available: 0n });
      expect(await store.peek(c)).toEqual({ available: 0n, active: 2 });
    });

    it('extend pushes the deadline, ignores the concurrency limit and never re-creates a settled hold', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'a', 100n, 300, 1);
      expect((await store.extend(c, 'a', 200n, 60_000)).ok).toBe(true);
      await sleep(400);
      const holds = await store.reservations(c);
      expect(holds.map((h) => [h.callId, h.amount])).toEqual([['a', 200n]]);
      expect(holds[0]!.expiresAt).toBeGreaterThan(Date.now() + 50_000);
      await store.settle(c, 'a', { spendable: 900n, version: 2n });
      expect(await store.extend(c, 'a', 300n, 60_000)).toEqual({ ok: false, reason: 'gone' });
      expect(await store.extend(c, 'never', 1n, 60_000)).toEqual({ ok: false, reason: 'gone' });
      expect(await store.peek(c)).toEqual({ available: 900n, active: 0 });
    });

    it('extend says needs_load when the cached spendable was dropped, and a hold that expired is gone', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      await store.reserve(c, 'short', 100n, 150, 5);
      await store.reserve(c, 'long', 100n, 60_000, 5);
      await sleep(250);
      expect(await store.extend(c, 'short', 200n, 60_000)).toEqual({ ok: false, reason: 'gone' });
      // That purge dropped the cached spendable too.
      expect(await store.extend(c, 'long', 200n, 60_000)).toEqual({ ok: false, reason: 'needs_load' });
      await store.load(c, { spendable: 1_000n, version: 2n });
      expect(await store.extend(c, 'long', 200n, 60_000)).toEqual({ ok: true, available: 800n });
    });

    it('simultaneous extensions and reserves never hold more than the card has', async () => {
      const c = card();
      await store.load(c, { spendable: 1_000n, version: 1n });
      for (let i = 0; i < 10; i++) await store.reserve(c, `x${i}`, 50n, 60_000, 50);
      const ops = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => store.extend(c, `x${i}`, 150n, 60_000)),
        ...Array.from({ length: 10 }, (_, i) => store.reserve(c, `n${i}`, 50n, 60_000, 50)),
      ]);
      const holds = await store.reservations(c);
      const sum = holds.reduce((s, h) => s + h.amount, 0n);
      expect(sum).toBeLessThanOrEqual(1_000n);
      expect(ops.filter((r) => r.ok).length).toBeGreaterThan(0);
      const p = await store.peek(c);
      expect(p).toEqual({ available: 1_000n - sum, active: holds.length });
    });

    it('keeps separate cards separate', async () => {
      const a = card();
      const b = card();
      await store.load(a, { spendable: 10n, version: 1n });
      await store.load(b, { spendable: 20n, version: 1n });
      const id = randomUUID();
      await store.reserve(a, id, 10n, 60_000, 1);
      expect(await store.peek(b)).toEqual({ available: 20n, active: 0 });
      expect(await store.peek(a)).toEqual({ available: 0n, active: 1 });
    });
  });
}
