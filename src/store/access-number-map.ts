import type { Pool, PoolClient } from './db.ts';

export const ACCESS_NUMBERS_CHANNEL = 'ccard_access_numbers_changed';

export interface AccessNumberMapOptions {
  pool: Pool;
  /** Reload this often even without a notification (PGlite delivers no NOTIFY across connections). 0 = never. */
  pollMs?: number;
  /** Quiet time after a notification before reloading. Default 20 ms. */
  debounceMs?: number;
  reconnectMs?: number;
  /** LISTEN for the trigger's NOTIFY (default true). */
  listen?: boolean;
  onError?: (err: unknown) => void;
}

/**
 * The enabled access numbers, in memory: the dialplan binding of mod_xml_curl asks once per incoming call, so its
 * answer must never wait on the database. Kept fresh by the access_numbers trigger (NOTIFY) and by a poll; a failed
 * reload keeps the previous set (a DID added a moment ago is then routed on the next successful reload).
 */
export class AccessNumberMap {
  private dids = new Set<string>();
  private listener: PoolClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private running = false;
  version = 0;

  constructor(private readonly opts: AccessNumberMapOptions) {}

  /** Exactly as dialled (Hunt-Destination-Number) = as stored. */
  has(number: string): boolean {
    return this.dids.has(number);
  }

  get size(): number {
    return this.dids.size;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.opts.listen !== false) await this.listen().catch((err) => {
      this.opts.onError?.(err);
      this.scheduleReconnect();
    });
    await this.reload();
    const pollMs = this.opts.pollMs ?? 0;
    if (pollMs > 0) {
      this.poll = setInterval(() => void this.reload().catch((err) => this.opts.onError?.(err)), pollMs);
      this.poll.unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.reconnectTimer);
    clearInterval(this.poll);
    const l = this.listener;
    this.listener = undefined;
    if (l) {
      l.removeAllListeners('notification');
      await l.query(`UNLISTEN ${ACCESS_NUMBERS_CHANNEL}`).catch(() => {});
      l.release();
    }
    await this.loading?.catch(() => {});
  }

  reload(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          const r = await this.opts.pool.query<{ did: string }>('SELECT did FROM access_numbers WHERE enabled');
          const next = new Set<string>();
          // Exactly as stored: the call flow looks the DID up by the same string (Caller-Destination-Number).
          for (const { did } of r.rows) next.add(did);
          this.dids = next;
          this.version++;
        } while (this.again && this.running);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private async listen(): Promise<void> {
    const client = await this.opts.pool.connect();
    client.on('error', (err) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.release(err);
      this.opts.onError?.(err);
      this.scheduleReconnect();
    });
    client.on('notification', (msg) => {
      if (msg.channel === ACCESS_NUMBERS_CHANNEL) this.schedule();
    });
    try {
      await client.query(`LISTEN ${ACCESS_NUMBERS_CHANNEL}`);
    } catch (err) {
      client.release(true);
      throw err;
    }
    this.listener = client;
  }

  private schedule(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload().catch((err) => this.opts.onError?.(err));
    }, this.opts.debounceMs ?? 20);
  }

  private scheduleReconnect(): void {
    if (!this.running || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.running) return;
      this.listen()
        .then(() => this.reload())
        .catch((err) => {
          this.opts.onError?.(err);
          this.scheduleReconnect();
        });
    }, this.opts.reconnectMs ?? 1000);
  }
}
