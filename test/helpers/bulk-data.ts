import net from 'node:net';
import type { Pool } from '../../src/store/db.ts';

/** Inserts `n` cards (serials `<series>-000000001`...) in a new series on rate table `rateTableId`, in one statement. */
export async function seedManyCards(pool: Pool, rateTableId: string, n: number, seriesNumber = '900'): Promise<void> {
  const s = await pool.query<{ id: bigint }>(
    `INSERT INTO series (name, series_number, card_count, rate_table_id) VALUES ('bulk', $1, $2, $3) RETURNING id`,
    [seriesNumber, n, rateTableId],
  );
  await pool.query(
    `INSERT INTO cards (series_id, serial, pin_hash, status)
     SELECT $1, $2 || '-' || lpad(g::text, 9, '0'), sha256(($2 || g::text)::bytea), 'active' FROM generate_series(1, $3::int) g`,
    [s.rows[0]!.id, seriesNumber, n],
  );
}

/**
 * Inserts a rate table with `n` rates (prefixes 100001...; destinations "Destination <i>" padded with `pad` dots,
 * to make a big export of few rows) in one statement; returns its id.
 */
export async function seedBigRateTable(pool: Pool, name: string, n: number, pad = 0): Promise<string> {
  const t = await pool.query<{ id: bigint }>(`INSERT INTO rate_tables (name) VALUES ($1) RETURNING id`, [name]);
  await pool.query(
    `INSERT INTO rates (rate_table_id, prefix, destination, rate_per_min_micros)
     SELECT $1, (100000 + g)::text, 'Destination ' || g || repeat('.', $3::int), 1000 + g FROM generate_series(1, $2::int) g`,
    [t.rows[0]!.id, n, pad],
  );
  return String(t.rows[0]!.id);
}

/**
 * A raw HTTP GET over its own socket, for clients that misbehave: `abandonAfter` bytes then close the socket, or
 * `stall` (read the head and nothing more), or read it all. Resolves with the status, the headers and the body
 * read, and whether the body ended cleanly (a chunked body that was cut never sends its last chunk).
 */
export function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
  mode: { abandonAfter?: number; stall?: boolean } = {},
): Promise<{ status: number; head: string; body: Buffer; complete: boolean; socket: net.Socket; closed: Promise<{ all: Buffer; error?: Error }> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    // Everything the socket ever received, and how it ended (for a stalled client that resumes later).
    const closed = new Promise<{ all: Buffer; error?: Error }>((res) => {
      let error: Error | undefined;
      socket.on('error', (e) => (error = e));
      socket.on('close', () => res({ all: buf, ...(error && { error }) }));
    });
    const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      const at = buf.indexOf('\r\n\r\n');
      const head = at >= 0 ? buf.subarray(0, at).toString('latin1') : buf.toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const raw = at >= 0 ? buf.subarray(at + 4) : Buffer.alloc(0);
      const chunked = /transfer-encoding: chunked/i.test(head);
      const { body, complete } = chunked ? dechunk(raw) : { body: raw, complete: !/content-length/i.test(head) || raw.length === Number(/content-length: (\d+)/i.exec(head)![1]) };
      resolve({ status, head, body, complete, socket, closed });
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.indexOf('\r\n\r\n') < 0) return;
      if (mode.stall) {
        socket.pause();
        done();
      } else if (mode.abandonAfter !== undefined && buf.length >= mode.abandonAfter) {
        socket.destroy();
        done();
      }
    });
    socket.on('error', (err) => (settled ? undefined : buf.length ? done() : reject(err)));
    socket.on('close', done);
  });
}

function dechunk(raw: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', i);
    if (eol < 0) return { body: Buffer.concat(parts), complete: false };
    const size = parseInt(raw.subarray(i, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) return { body: Buffer.concat(parts), complete: false };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    if (eol + 2 + size > raw.length) {
      parts.push(raw.subarray(eol + 2));
      return { body: Buffer.concat(parts), complete: false };
    }
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

/** Connections of database `db` that sit in an open transaction (what a leaked export cursor looks like). */
export async function openTransactions(admin: Pool, db: string): Promise<number> {
  const r = await admin.query<{ n: bigint }>(
    `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'`,
    [db],
  );
  return Number(r.rows[0]!.n);
}
