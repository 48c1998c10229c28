import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { useNamedStatements } from './db.ts';
import { useHeldCursors } from './admin/cursor.ts';
import type { AddressInfo } from 'node:net';

/** Where the embedded database lives inside CCARD_DATA_DIR (the service and the CLI must agree). */
export const embeddedDataDir = (dataDir: string): string => path.resolve(dataDir, 'pg');

export interface EmbeddedPostgres {
  /** A postgres:// URL that `pg` can use. */
  url: string;
  stop(): Promise<void>;
}

/**
 * The embedded default when DATABASE_URL is unset: PGlite (PostgreSQL compiled to WASM) keeping its files in
 * `dataDir`, served on a loopback port by pglite-socket so the ordinary `pg` driver (and every query ccard has)
 * works unchanged. The socket server multiplexes several client connections onto PGlite's single session.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-socket'),
  ]);
  await mkdir(dataDir, { recursive: true });
  useNamedStatements(false);
  useHeldCursors(true);
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 });
  await server.start();
  const address = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return {
    url: `postgres://postgres@127.0.0.1:${address.port}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
