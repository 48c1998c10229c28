import type { Writable } from 'node:stream';
import Table from 'cli-table3';
import type { Pool } from 'pg';
import { loadConfig, type Config } from '../config/env.ts';
import { createPool } from '../store/db.ts';
import { derivePinKeys } from '../store/pin.ts';
import type { AdminContext, OnBalanceChange } from '../store/admin/context.ts';
import { terminalLines, terminalText } from '../store/admin/cells.ts';

export type OutStream = Writable & { isTTY?: boolean };

/** What runCli needs from the outside world; every field has a process default. Tests pass their own. */
export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  stdout?: OutStream;
  stderr?: OutStream;
  /** Where `--password-stdin` reads from (default process.stdin). */
  stdin?: NodeJS.ReadableStream;
  /** Use this pool instead of connecting from DATABASE_URL (it is not closed by runCli). */
  pool?: Pool;
  /** Called after a committed balance change; default: refresh the Redis live cache when REDIS_URL is set. */
  onBalanceChange?: OnBalanceChange;
}

/** Lazily opened resources of one CLI run (a command that needs no database never connects). */
export class CliRuntime {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: NodeJS.ReadableStream;
  private config?: Config;
  private ctx?: AdminContext;
  private cleanups: Array<() => Promise<void>> = [];

  constructor(private readonly opts: CliOptions) {
    this.env = opts.env ?? process.env;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
    this.stdin = opts.stdin ?? process.stdin;
  }

  getConfig(): Config {
    this.config ??= loadConfig(this.env);
    return this.config;
  }

  async pool(): Promise<Pool> {
    return (await this.admin()).pool;
  }

  async admin(): Promise<AdminContext> {
    if (this.ctx) return this.ctx;
    const cfg = this.getConfig();
    let pool = this.opts.pool;
    if (!pool) {
      let url = cfg.DATABASE_URL;
      if (!url) {
        // No DATABASE_URL: the embedded database in CCARD_DATA_DIR, migrated on first use.
        const { embeddedDataDir, startEmbeddedPostgres } = await import('../store/embedded.ts');
        const embedded = await startEmbeddedPostgres(embeddedDataDir(cfg.CCARD_DATA_DIR));
        this.cleanups.push(() => embedded.stop());
        url = embedded.url;
      }
      const created = createPool(url, 4);
      this.cleanups.unshift(() => created.end());
      pool = created;
      if (cfg.embedded) await (await import('../store/migrate.ts')).migrate(pool);
    }
    this.ctx = { pool, pinKeys: derivePinKeys(cfg.secret), onBalanceChange: this.opts.onBalanceChange ?? (await this.redisRefresh(cfg)), actor: 'cli' };
    return this.ctx;
  }

  /** With REDIS_URL set, a balance changed from the CLI also refreshes the running service's live cache. */
  private async redisRefresh(cfg: Config): Promise<OnBalanceChange | undefined> {
    const target = cfg.redis;
    if (!target) return undefined;
    let live: import('../live/live-balance.ts').LiveBalanceStore | undefined;
    return async (cardId, snap) => {
      if (!live) {
        const [{ createRedisClient }, { RedisLiveBalance }] = await Promise.all([import('../live/redis-client.ts'), import('../live/redis-live.ts')]);
        live = new RedisLiveBalance(createRedisClient(target, 'cli'), { prefix: cfg.CCARD_REDIS_PREFIX, ownsClient: true });
        const opened = live;
        this.cleanups.push(() => opened.close());
      }
      try {
        await live.load(cardId, snap);
      } catch (err) {
        // The change is committed; a stale cache reloads from PostgreSQL on its own (versioned), so only warn.
        this.stderr.write(`ccard: warning: live cache not refreshed: ${(err as Error).message}\n`);
      }
    };
  }

  /**
   * The live balance store the service uses (Redis with REDIS_URL), so that what the CLI settles also ends the
   * service's holds. Without Redis the service keeps holds in its own process; they then end at their deadline.
   */
  async liveStore(): Promise<import('../live/live-balance.ts').LiveBalanceStore> {
    const cfg = this.getConfig();
    if (!cfg.redis) return new (await import('../live/memory-live.ts')).MemoryLiveBalance();
    const [{ createRedisClient }, { RedisLiveBalance }] = await Promise.all([import('../live/redis-client.ts'), import('../live/redis-live.ts')]);
    const live = new RedisLiveBalance(createRedisClient(cfg.redis, 'cli'), { prefix: cfg.CCARD_REDIS_PREFIX, ownsClient: true });
    this.cleanups.push(() => live.close());
    return live;
  }

  /** Resources are released keep-the-service-running commands excepted (serve, demo). */
  async close(): Promise<void> {
    for (const c of this.cleanups.splice(0)) await c().catch(() => {});
  }

  /** Writes a line; operator-controlled text (series names, notes, caller IDs) never carries escape sequences. */
  out(line = ''): void {
    this.stdout.write(`${terminalLines(line)}\n`);
  }

  json(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  }

  table(head: string[], rows: Array<Array<string | number | boolean | null | undefined>>): void {
    const t = new Table({ head, style: { head: [], border: [] } });
    for (const r of rows) t.push(r.map((v) => (v === null || v === undefined ? '' : terminalText(String(v)))));
    this.out(t.toString());
  }

  /** key/value view of one object. */
  details(pairs: Array<[string, string | number | boolean | null | undefined]>): void {
    const t = new Table({ style: { head: [], border: [] } });
    for (const [k, v] of pairs) t.push({ [k]: v === null || v === undefined ? '' : terminalText(String(v)) });
    this.out(t.toString());
  }
}
