import { describe, expect, it } from 'vitest';
import { BulkGate, BusyError } from '../../src/store/bulk.ts';
import { registry } from '../../src/metrics/index.ts';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('BulkGate', () => {
  it('runs `slots` jobs, queues `queue` more, refuses the rest at once with BUSY (503, Retry-After)', async () => {
    const gate = new BulkGate({ slots: 2, queue: 1, queueWaitMs: 5_000, retryAfterSec: 7 });
    const hold = deferred();
    const order: number[] = [];
    const job = (i: number) => gate.run(async () => {
      order.push(i);
      await hold.promise;
      return i;
    });
    const a = job(1);
    const b = job(2);
    const c = job(3);
    const refused = await job(4).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BusyError);
    expect(refused).toMatchObject({ code: 'BUSY', httpStatus: 503, retryAfterSec: 7 });
    expect(gate.stats).toEqual({ running: 2, waiting: 1 });
    hold.resolve();
    expect(await Promise.all([a, b, c])).toEqual([1, 2, 3]);
    expect(order).toEqual([1, 2, 3]);
    expect(gate.stats).toEqual({ running: 0, waiting: 0 });
  });

  it('a queued job waits at most queueWaitMs; one whose client left gives its place up at once', async () => {
    const gate = new BulkGate({ slots: 1, queue: 1, queueWaitMs: 50 });
    const hold = deferred();
    const running = gate.run(() => hold.promise);
    await expect(gate.run(async () => 'late')).rejects.toMatchObject({ code: 'BUSY', message: expect.stringMatching(/no bulk capacity/) });
    const gone = new AbortController();
    const queued = gate.run(async () => 'never', gone.signal).catch((e: unknown) => e);
    expect(gate.stats.waiting).toBe(1);
    gone.abort();
    expect(await queued).toMatchObject({ code: 'BUSY', message: expect.stringMatching(/client went away/) });
    expect(gate.stats.waiting).toBe(0);
    hold.resolve();
    await running;
  });

  it('close() refuses queued jobs and tells running ones to stop', async () => {
    const gate = new BulkGate({ slots: 1, queue: 5, queueWaitMs: 5_000 });
    let seen: AbortSignal | undefined;
    const running = gate.run(
      (signal) =>
        new Promise<string>((resolve) => {
          seen = signal;
          if (signal.aborted) resolve('stopped');
          signal.addEventListener('abort', () => resolve('stopped'));
        }),
    );
    const queued = gate.run(async () => 'never').catch((e: unknown) => e);
    gate.close();
    expect(await running).toBe('stopped');
    expect(seen?.aborted).toBe(true);
    expect(await queued).toMatchObject({ code: 'BUSY', message: expect.stringMatching(/shutting down/) });
    await expect(gate.run(async () => 'after')).rejects.toMatchObject({ code: 'BUSY' });
  });
});

describe('bulk gate metrics', () => {
  const sample = async (name: string, labels: Record<string, string>) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)!;
    const v = m.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
    return v?.value ?? 0;
  };

  it('counts refusals by reason and shows running and waiting jobs at scrape time', async () => {
    const before = {
      full: await sample('ccard_bulk_refused_total', { reason: 'queue_full' }),
      timeout: await sample('ccard_bulk_refused_total', { reason: 'wait_timeout' }),
      shutdown: await sample('ccard_bulk_refused_total', { reason: 'shutdown' }),
    };
    const gate = new BulkGate({ slots: 1, queue: 1, queueWaitMs: 5_000 });
    const hold = deferred();
    const running = gate.run(() => hold.promise);
    const queued = gate.run(async () => 'never').catch((e: unknown) => e);
    await gate.run(async () => 'refused').catch(() => undefined);
    expect(await sample('ccard_bulk_jobs', { state: 'running' })).toBeGreaterThanOrEqual(1);
    expect(await sample('ccard_bulk_jobs', { state: 'waiting' })).toBeGreaterThanOrEqual(1);
    expect(await sample('ccard_bulk_refused_total', { reason: 'queue_full' })).toBe(before.full + 1);
    gate.close();
    expect(await queued).toMatchObject({ code: 'BUSY' });
    expect(await sample('ccard_bulk_refused_total', { reason: 'shutdown' })).toBe(before.shutdown + 1);
    expect(await sample('ccard_bulk_refused_total', { reason: 'wait_timeout' })).toBe(before.timeout);
    hold.resolve();
    await running;
  });
});
