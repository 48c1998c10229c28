import type { Pool } from 'pg';

/**
 * Runs a query through a server-side cursor and hands its rows to `onRows` one batch at a time, so an export of
 * millions of rows holds only one batch in memory. `onRows` may await (e.g. for the output to drain).
 */
export async function forEachBatch<R extends object>(
  pool: Pool,
  sql: string,
  params: unknown[],
  onRows: (rows: R[]) => Promise<void> | void,
  batchSize = 5_000,
): Promise<number> {
  const client = await pool.connect();
  let total = 0;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`DECLARE export_cursor NO SCROLL CURSOR FOR ${sql}`, params);
    for (;;) {
      const r = await client.query<R>(`FETCH ${batchSize} FROM export_cursor`);
      if (r.rows.length === 0) break;
      total += r.rows.length;
      await onRows(r.rows);
      if (r.rows.length < batchSize) break;
    }
    await client.query('COMMIT');
    return total;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
