import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';

let heldCursors = false;

/**
 * The embedded PGlite runs one transaction at a time for all its connections, so an export must not keep one open
 * between batches (every call would wait for the export's reader): there the cursor is declared WITH HOLD and its
 * transaction committed at once (PostgreSQL materialises the result), and each FETCH runs on its own.
 */
export function useHeldCursors(enabled: boolean): void {
  heldCursors = enabled;
}

export interface BatchOptions {
  /** Rows per FETCH (default 5000). */
  batchSize?: number;
  /** Stops before the next FETCH once fired (the cursor is rolled back, the connection released). */
  signal?: AbortSignal;
}

/**
 * Runs a query through a server-side cursor and hands its rows to `onRows` one batch at a time, so an export of
 * millions of rows holds only one batch in memory. `onRows` may await (e.g. for the output to drain); if it throws
 * (the reader went away) the transaction is rolled back and the connection released at once. A connection whose
 * rollback fails is discarded, never handed to the next user with a transaction still open.
 */
export async function forEachBatch<R extends object>(
  pool: Pool,
  sql: string,
  params: unknown[],
  onRows: (rows: R[]) => Promise<void> | void,
  opts: BatchOptions = {},
): Promise<number> {
  const { batchSize = 5_000, signal } = opts;
  signal?.throwIfAborted();
  const client = await pool.connect();
  // A unique name: the embedded database's connections share one session, where held cursors outlive transactions.
  const cursor = `export_${randomBytes(6).toString('hex')}`;
  const held = heldCursors;
  let total = 0;
  let broken: Error | undefined;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`DECLARE ${cursor} NO SCROLL CURSOR ${held ? 'WITH HOLD ' : ''}FOR ${sql}`, params);
    if (held) await client.query('COMMIT');
    for (;;) {
      signal?.throwIfAborted();
      const r = await client.query<R>(`FETCH ${batchSize} FROM ${cursor}`);
      if (r.rows.length === 0) break;
      total += r.rows.length;
      await onRows(r.rows);
      if (r.rows.length < batchSize) break;
    }
    if (!held) await client.query('COMMIT');
    return total;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    if (held) await client.query(`CLOSE ${cursor}`).catch(() => {});
    client.release(broken ?? false);
  }
}
