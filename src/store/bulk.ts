import { Transform, type Readable } from 'node:stream';
import type { Pool } from './db.ts';
import { AdminError } from './admin/errors.ts';
import type { AdminContext } from './admin/context.ts';

/**
 * Bulk work (exports, imports, reports) gets its own small PostgreSQL pool and an admission gate in front of it, so
 * that no number of report clients can take a connection that a phone call needs. The gate lets `slots` jobs run
 * (one pooled connection each, never two at once: a job's queries run one after another), queues up to `queue`
 * more for at most `queueWaitMs`, and turns everyone else away at once with BUSY (HTTP 503 + Retry-After). A job
 * is told to stop through its AbortSignal when the gate closes (shutdown), so nothing waits on a slow client.
 */
export interface BulkLimits {
  /** Jobs running at once; also the size of the bulk pool. */
  slots: number;
  /** Jobs waiting for a slot; one more is refused at once. */
  queue: number;
  /** How long a queued job waits for a slot before it is refused. */
  queueWaitMs: number;
  /** Seconds a refused client is told to wait (Retry-After). */
  retryAfterSec?: number;
}

export class BusyError extends AdminError {
  readonly retryAfterSec: number;
  constructor(message: string, retryAfterSec: number) {
    super('BUSY', message);
    this.retryAfterSec = retryAfterSec;
  }
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Why the gate turned a job away (the `reason` label of ccard_bulk_refused_total). */
export type BulkRefusal = 'queue_full' | 'wait_timeout' | 'client_gone' | 'shutdown';

const refusals = new Map<BulkRefusal, number>();
const openGates = new Set<BulkGate>();

/** Jobs refused so far by every gate of this process, by reason (plain numbers: src/metrics reads them at scrape). */
export function bulkRefusalTotals(): ReadonlyMap<BulkRefusal, number> {
  return refusals;
}

/** Jobs running and waiting now, summed over this process's open gates. */
export function bulkGateTotals(): { running: number; waiting: number } {
  let running = 0;
  let waiting = 0;
  for (const g of openGates) {
    running += g.stats.running;
    waiting += g.stats.waiting;
  }
  return { running, waiting };
}

export class BulkGate {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private readonly active = new Set<AbortController>();
  private closed = false;
  readonly retryAfterSec: number;

  constructor(readonly limits: BulkLimits) {
    this.retryAfterSec = limits.retryAfterSec ?? 5;
    openGates.add(this);
  }

  /** Jobs running and waiting now (for metrics and tests). */
  get stats(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /**
   * Runs fn once a slot is free. Refuses with BusyError when the queue is full or the wait times out; the slot is
   * held until fn's promise settles. `signal` fires when the gate closes. `gone` (the client left) takes a job out
   * of the queue at once, so abandoned requests do not keep others out.
   */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>, gone?: AbortSignal): Promise<T> {
    await this.acquire(gone);
    const ac = new AbortController();
    if (this.closed) ac.abort(new Error('the service is shutting down')); // closed while the slot was handed over
    this.active.add(ac);
    try {
      return await fn(ac.signal);
    } finally {
      this.active.delete(ac);
      this.release();
    }
  }

  /** Refuses new and queued jobs and aborts the running ones (they end their streams and release their clients). */
  close(): void {
    this.closed = true;
    openGates.delete(this);
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(this.busy('shutdown', 'the service is shutting down'));
    }
    for (const ac of this.active) ac.abort(new Error('the service is shutting down'));
  }

  private busy(reason: BulkRefusal, why: string): BusyError {
    refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
    return new BusyError(`${why}: try again in ${this.retryAfterSec} s`, this.retryAfterSec);
  }

  private acquire(gone?: AbortSignal): Promise<void> {
    if (gone?.aborted) return Promise.reject(this.busy('client_gone', 'the client went away'));
    if (this.closed) return Promise.reject(this.busy('shutdown', 'the service is shutting down'));
    if (this.running < this.limits.slots) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.limits.queue) {
      return Promise.reject(this.busy('queue_full', `too many exports, imports and reports at once (${this.running} running, ${this.waiting.length} waiting)`));
    }
    return new Promise<void>((resolve, reject) => {
      const leave = (err: Error) => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        clearTimeout(w.timer);
        gone?.removeEventListener('abort', onGone);
        reject(err);
      };
      const onGone = () => leave(this.busy('client_gone', 'the client went away'));
      const w: Waiter = {
        resolve: () => {
          gone?.removeEventListener('abort', onGone);
          resolve();
        },
        reject: leave,
        timer: setTimeout(() => leave(this.busy('wait_timeout', `no bulk capacity freed up within ${Math.round(this.limits.queueWaitMs / 1000)} s`)), this.limits.queueWaitMs),
      };
      gone?.addEventListener('abort', onGone, { once: true });
      this.waiting.push(w);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(); // the slot passes straight to the next job
    } else {
      this.running--;
    }
  }
}

/** What bulk operations need: their own pool, the gate in front of it and the stall timeout of a streamed answer. */
export interface BulkWork {
  pool: Pool;
  gate: BulkGate;
  /** A streamed export whose client has not read anything for this long is ended (its connection released). */
  stallMs: number;
}

/**
 * Runs a bulk operation behind the gate on the bulk pool (the context it gets uses that pool), or directly where
 * there is no gate (the CLI is a process of its own).
 */
export function withBulk<T>(
  ctx: AdminContext,
  fn: (bulkCtx: AdminContext, signal?: AbortSignal) => Promise<T>,
  gone?: AbortSignal,
): Promise<T> {
  const bulk = ctx.bulk;
  if (!bulk) return fn(ctx);
  return bulk.gate.run((signal) => fn({ ...ctx, pool: bulk.pool }, signal), gone);
}

/** Limits of a gate nobody configured (tests, an API mounted on its own). */
export const DEFAULT_BULK_LIMITS: BulkLimits = { slots: 4, queue: 16, queueWaitMs: 10_000 };

/** A request body larger than the limit (HTTP 413). */
export class PayloadTooLargeError extends Error {
  readonly statusCode = 413;
  readonly code = 'FST_ERR_CTP_BODY_TOO_LARGE';
  constructor(limit: number) {
    super(`the body is larger than ${limit} bytes`);
  }
}

/** A request body whose sender stopped sending (HTTP 408). */
export class BodyStalledError extends Error {
  readonly statusCode = 408;
  readonly code = 'BODY_STALLED';
  constructor(stallMs: number) {
    super(`the request body stopped arriving for ${Math.round(stallMs / 1000)} s`);
  }
}

/**
 * The body as a stream that fails with PayloadTooLargeError past `limit` bytes (a declared length is checked first)
 * and with BodyStalledError when its reader waits `stallMs` for the next piece: an upload that stops never holds an
 * import's transaction. (The wait counts only while the reader asks for data: a request queued behind the bulk gate
 * is not the sender's fault.)
 */
export function limitedBody(body: Readable, limit: number, contentLength?: string, stallMs = 0): Readable {
  if (contentLength !== undefined && Number(contentLength) > limit) throw new PayloadTooLargeError(limit);
  let seen = 0;
  let timer: NodeJS.Timeout | undefined;
  const quiet = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const counted = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      quiet();
      seen += chunk.length;
      if (seen > limit) cb(new PayloadTooLargeError(limit));
      else cb(null, chunk);
    },
    flush(cb) {
      quiet();
      cb();
    },
  });
  if (stallMs > 0) {
    const read = counted._read.bind(counted);
    counted._read = (size: number) => {
      // (Only the reading side fails: destroying the request itself would close the socket before the 408.)
      timer ??= setTimeout(() => counted.destroy(new BodyStalledError(stallMs)), stallMs);
      read(size);
    };
    counted.on('close', quiet);
  }
  body.on('error', (err) => counted.destroy(err));
  return body.pipe(counted);
}
