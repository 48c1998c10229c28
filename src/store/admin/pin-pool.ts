import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { PinKeys } from '../pin.ts';
import { pinRows } from './pin-rows.ts';

/**
 * Generates COPY rows of fresh PINs on worker threads (HMAC + AES-GCM per PIN is most of the CPU of a large
 * series), keeping up to `depth` chunks in flight per thread. Falls back to the calling thread when workers
 * cannot start. Run from the sources, the workers load TypeScript through tsx themselves, however the parent
 * process was started; compiled, they load dist/'s JavaScript.
 */
export class PinRowPool {
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (t: string) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  private rr = 0;

  constructor(
    private readonly keys: PinKeys,
    private readonly pinLength: number,
    // One core is left to PostgreSQL, which ingests the COPY at the same time.
    threads = Math.max(1, Math.min(4, availableParallelism() - 1)),
  ) {
    try {
      const workerData = { hashKey: keys.hashKey, cipherKey: keys.cipherKey, pinLength };
      const spawn = import.meta.url.endsWith('.js')
        ? () => new Worker(new URL('./pin-worker.js', import.meta.url), { workerData }) // compiled (dist/)
        : tsxWorker(new URL('./pin-worker.ts', import.meta.url).href, workerData);
      for (let i = 0; i < threads; i++) {
        const w = spawn();
        w.on('message', (m: { id: number; text: string }) => {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          p?.resolve(m.text);
        });
        w.on('error', (err) => {
          for (const p of this.pending.values()) p.reject(err);
          this.pending.clear();
        });
        w.unref();
        this.workers.push(w);
      }
    } catch {
      this.workers = [];
    }
  }

  rows(start: number, end: number): Promise<string> {
    if (this.workers.length === 0) return Promise.resolve(pinRows(this.keys, start, end, this.pinLength));
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, start, end });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}

/** From the sources: the worker registers tsx before loading the TypeScript module. */
function tsxWorker(impl: string, workerData: unknown): () => Worker {
  // The ESM build of tsx's API (its CommonJS build cannot register ESM hooks in a worker).
  const tsx = createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
  const boot = `import(${JSON.stringify(new URL(`file://${tsx}`).href)}).then((m) => { (m.register ?? m.default.register)(); return import(${JSON.stringify(impl)}); })`;
  return () => new Worker(boot, { eval: true, workerData });
}
