import { Transform, type TransformCallback, type Writable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { AdminContext } from '../store/admin/context.ts';
import { ExportAbortedError, type StreamOptions } from '../store/admin/export-stream.ts';
import { withBulk } from '../store/bulk.ts';

export interface ExportSpec {
  contentType: string;
  filename: string;
  /** Extra response headers (e.g. Cache-Control on a PIN export). */
  headers?: Record<string, string>;
  /**
   * Writes the export to `out` with `ctx` (its pool is the bulk pool). It must write nothing before its first
   * batch of rows is read (streamCsv does this), and stop when opts.signal fires or a write fails.
   */
  run(ctx: AdminContext, out: Writable, opts: StreamOptions): Promise<unknown>;
}

/** Calls onFirst just before the first byte passes: the moment the answer's status is committed. */
class FirstByte extends Transform {
  private seen = false;
  constructor(private readonly onFirst: () => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.seen) {
      this.seen = true;
      this.onFirst();
    }
    cb(null, chunk);
  }
}

/**
 * Answers a request with a streamed export, the way every export endpoint (API and console) must:
 * - it waits behind the bulk gate (bulk pool, bounded queue): when full the answer is 503 with Retry-After;
 * - the status is sent only once the first batch of rows is in hand, so a failure before that is a clean error
 *   answer (503, 4xx), never a 200 with only a header row;
 * - the export stops, rolls its cursor back and releases its connection when the client goes away, stops reading
 *   for longer than the stall timeout, or the service shuts down (the response is then cut, never completed, so
 *   the client sees the failure).
 */
export function sendExport(reply: FastifyReply, ctx: AdminContext, spec: ExportSpec): Promise<FastifyReply> {
  return new Promise<FastifyReply>((resolve, reject) => {
    let started = false;
    const res = reply.raw;
    const begin = (out: Writable & NodeJS.ReadableStream) => {
      if (started) return;
      started = true;
      reply.type(spec.contentType).header('content-disposition', `attachment; filename="${spec.filename}"`);
      for (const [k, v] of Object.entries(spec.headers ?? {})) reply.header(k, v);
      resolve(reply.send(out));
    };
    // Once the cursor is done the last rows may still sit in buffers: a reader that takes nothing for the stall
    // timeout loses its connection, so no answer to a vanished client lingers.
    const lingerAtMost = (stallMs: number) => {
      const socket = res.socket;
      // (light-my-request's mock socket, in tests, has no timeouts)
      if (stallMs <= 0 || !socket || typeof socket.setTimeout !== 'function' || res.writableFinished) return;
      socket.setTimeout(stallMs, () => socket.destroy());
      res.once('close', () => socket.setTimeout(0));
    };

    // A client that leaves while queued gives its place up at once.
    const left = new AbortController();
    const onLeft = () => left.abort();
    res.once('close', onLeft);
    const job = withBulk(ctx, async (bulkCtx, closing) => {
      const ac = new AbortController();
      const stop = (why: string) => {
        if (!ac.signal.aborted) ac.abort(new ExportAbortedError(why));
      };
      const onResClose = () => {
        if (!res.writableFinished) stop('the client went away');
      };
      const onClosing = () => {
        stop('the service is shutting down');
        res.destroy();
      };
      res.on('close', onResClose);
      closing?.addEventListener('abort', onClosing, { once: true });
      if (res.destroyed) stop('the client went away while the export was queued');
      if (closing?.aborted) onClosing();

      const out: FirstByte = new FirstByte(() => begin(out));
      out.on('error', () => {}); // fastify reports a failed stream; an unread one must not crash the process
      try {
        await spec.run(bulkCtx, out, { signal: ac.signal, stallMs: ctx.bulk?.stallMs ?? 0 });
        begin(out);
        if (!out.writableEnded) out.end(); // (the XLSX writer ends it itself)
        lingerAtMost(ctx.bulk?.stallMs ?? 0);
      } catch (err) {
        if (!started) throw err;
        reply.log.warn({ err: (err as Error).message }, 'export cut short');
        out.destroy(err as Error); // fastify then destroys the response: the client sees a broken transfer
        res.destroy();
      } finally {
        res.off('close', onResClose);
        closing?.removeEventListener('abort', onClosing);
      }
    }, left.signal);
    job.finally(() => res.off('close', onLeft)).catch((err: unknown) => {
      if (!started) reject(err as Error);
    });
  });
}
