import pg from 'pg';

// BIGINT (int8, oid 20) columns come back as bigint, never as a JS number or string: money is exact end to end.
pg.types.setTypeParser(20, (v: string) => BigInt(v));
// NUMERIC stays a string (never parsed into a float).

export type Pool = pg.Pool;

let namedStatements = true;

/**
 * The name for a prepared statement, or undefined (an unnamed statement) when named ones are off. PGlite's socket
 * multiplexer runs every client connection on one backend session, where a name prepared by one connection
 * already exists for the next: the embedded mode turns them off.
 */
export function statementName(name: string): string | undefined {
  return namedStatements ? name : undefined;
}

export function useNamedStatements(enabled: boolean): void {
  namedStatements = enabled;
}
export type PoolClient = pg.PoolClient;

export function createPool(connectionString: string, max = 10, extra: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5_000, ...extra });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  // A client whose query already failed can still emit 'error' (the socket's ECONNRESET after PostgreSQL's FATAL
  // "terminating connection") once the pool has let go of it: with no listener that would crash the process.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Runs fn in a transaction on one client; rolls back on any error. */
export async function withTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
