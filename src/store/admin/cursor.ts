import type { Pool } from 'pg';

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
  let total = 0;
  let broken: Error | undefined;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`DECLARE export_cursor NO SCROLL CURSOR FOR ${sql}`, params);
    for (;;) {
      signal?.throwIfAborted();
      const r = await client.query<R>(`FETCH ${batchSize} FROM export_cursor`);
      if (r.rows.length === 0) break;
      total += r.rows.length;
      await onRows(r.rows);
      if (r.rows.length < batchSize) break;
    }
    await client.query('COMMIT');
    return total;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    client.release(broken ?? false);
  }
}
