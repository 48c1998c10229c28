import type { Writable } from 'node:stream';
import type pg from 'pg';
import { streamCsv, type StreamOptions } from './admin/export-stream.ts';
import { withTransaction, type Pool, type PoolClient } from './db.ts';
import type { Rounding } from '../money/money.ts';
import { PrefixIndex, type RateEntry } from '../billing/prefix-index.ts';
import type { RateRule } from '../billing/rating.ts';
import { planRoute, RoutingIndex, stampMinute, type RouteDecision, type RouteOptions } from '../billing/routing.ts';
import { DEFAULT_JOIN_BUDGET_BYTES, JoinedIndexes, type JoinedIndexesOptions } from '../billing/joined-index.ts';
import { loadRouting } from './routing.ts';
import {
  duplicateMessage,
  formatRatesCsv,
  MAX_LISTED_ISSUES,
  rateCsvCells,
  readRatesCsv,
  RATE_CSV_COLUMNS,
  RateImportError,
  type RateCsvInput,
  type RateCsvRow,
} from '../billing/rates-csv.ts';

export const RATES_CHANNEL = 'ccard_rates_changed';

export interface RateTableInfo {
  id: string;
  name: string;
  currency: string;
  decimals: number;
  rounding: Rounding;
  minBillableSeconds: number;
}

export interface RatedNumber {
  rate: RateEntry;
  rule: RateRule;
  table: RateTableInfo;
}

/** A routed number: its sell rate and what its routing plan decides. */
export interface RoutedNumber {
  readonly sell: RatedNumber;
  readonly decision: RouteDecision;
}

/** A RoutedNumber whose sell rate is read (from its table, version v) only when asked for. */
class Routed implements RoutedNumber {
  private rated: RatedNumber | undefined;
  constructor(
    readonly decision: RouteDecision,
    private readonly table: RateTableInfo,
    private readonly taxPpm: number,
    private readonly rate: RateEntry | undefined,
    private readonly source: PrefixIndex | undefined,
    private readonly v: number,
  ) {}

  get sell(): RatedNumber {
    if (!this.rated) {
      const rate = this.rate ?? this.source!.version(this.v);
      this.rated = { rate, table: this.table, rule: toRule(rate, this.table, this.taxPpm) };
    }
    return this.rated;
  }
}

/**
 * All rate tables in memory: one PrefixIndex per table plus the table's billing rules, and the routing plans and
 * carriers (whose buy rates are rate tables too: a route lookup is the same trie walk as a sell lookup). Immutable
 * once built.
 */
export class RateIndex {
  private readonly tables = new Map<string, { info: RateTableInfo; index: PrefixIndex }>();
  /** When this snapshot was read from the database. */
  readonly loadedAt: Date;
  readonly routing: RoutingIndex;
  /**
   * The joined (sell table × routing plan) indexes: shared by the snapshots of one RateCache (each index is used only
   * with the exact tries it was built from), built lazily and in slices (src/billing/joined-index.ts).
   */
  readonly joins: JoinedIndexes;
  private readonly buyLookup = (tableId: string, number: string, at: Date | number) => this.lookup(tableId, number, at);

  constructor(
    tables: Iterable<RateTableInfo>,
    rates: Iterable<RateEntry>,
    loadedAt = new Date(),
    routing = RoutingIndex.empty(),
    joins = new JoinedIndexes(),
  ) {
    this.routing = routing;
    this.joins = joins;
    const byTable = new Map<string, RateEntry[]>();
    for (const t of tables) byTable.set(t.id, []);
    for (const r of rates) {
      stampMinute(r);
      const list = byTable.get(r.rateTableId);
      if (!list) throw new RangeError(`rate ${r.id} belongs to unknown rate table ${r.rateTableId}`);
      list.push(r);
    }
    for (const t of tables) this.tables.set(t.id, { info: t, index: PrefixIndex.build(byTable.get(t.id)!) });
    this.loadedAt = loadedAt;
  }

  static empty(): RateIndex {
    return new RateIndex([], []);
  }

  /**
   * A new index with the tables `ids` replaced by what was read for them (a table in `ids` but not in `tables` was
   * deleted); every other table is shared with this one. A change to one table rebuilds only that table.
   */
  withTables(ids: Iterable<string>, tables: Iterable<RateTableInfo>, rates: Iterable<RateEntry>, loadedAt = new Date()): RateIndex {
    const fresh = new RateIndex(tables, rates, loadedAt);
    // The routing plans and carriers are not a rate table: kept as they are (their changes reload everything).
    const next = new RateIndex([], [], loadedAt, this.routing, this.joins);
    const replaced = new Set(ids);
    for (const [id, t] of this.tables) if (!replaced.has(id)) next.tables.set(id, t);
    for (const [id, t] of fresh.tables) next.tables.set(id, t);
    return next;
  }

  /** The trie of table `tableId` (the joined index checks that it is the one it was built from). */
  tableIndex(tableId: string): PrefixIndex | undefined {
    return this.tables.get(tableId)?.index;
  }

  table(tableId: string | bigint): RateTableInfo | undefined {
    return this.tables.get(String(tableId))?.info;
  }

  tableByName(name: string): RateTableInfo | undefined {
    for (const t of this.tables.values()) if (t.info.name === name) return t.info;
    return undefined;
  }

  get tableCount(): number {
    return this.tables.size;
  }

  /** Rates across all tables. */
  get rateCount(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.index.size;
    return n;
  }

  /** The rate for `number` in table `tableId` at `now` (longest prefix, effective window), or undefined. */
  lookup(tableId: string | bigint, number: string, now: Date | number = Date.now()): RateEntry | undefined {
    return this.tables.get(String(tableId))?.index.lookup(number, now);
  }

  /**
   * The matched rate and the complete RateRule to cost a call to `number` (digits only). undefined means no rate:
   * the caller must refuse the call, never let it through for free.
   */
  ruleFor(tableId: string | bigint, number: string, taxPpm: number, now: Date | number = Date.now()): RatedNumber | undefined {
    const t = this.tables.get(String(tableId));
    if (!t) return undefined;
    const rate = t.index.lookup(number, now);
    if (!rate) return undefined;
    return { rate, table: t.info, rule: toRule(rate, t.info, taxPpm) };
  }

  /**
   * The sell rate of `number` in table `tableId` and what routing plan `planId` decides for it: ruleFor + planRoute,
   * through the pair's joined index (one trie walk) once it is built, one walk per table until then. undefined:
   * no sell rate (refuse the call).
   */
  route(tableId: string, planId: string, number: string, taxPpm: number, now: Date | number = Date.now(), opts: RouteOptions = {}): RoutedNumber | undefined {
    const t = this.tables.get(tableId);
    if (!t) return undefined;
    const joined = this.joins.get(this, tableId, planId);
    if (joined) {
      const decision = joined.route(number, now, opts);
      if (!decision) return undefined;
      return new Routed(decision, t.info, taxPpm, joined.lastSellRate, joined.sellTable, joined.lastSellVersion);
    }
    return this.routeByTables(tableId, planId, number, taxPpm, now, opts);
  }

  /** route() one trie walk per table (the sell table, the plan's entries, each carrier's buy table). */
  routeByTables(tableId: string, planId: string, number: string, taxPpm: number, now: Date | number = Date.now(), opts: RouteOptions = {}): RoutedNumber | undefined {
    const t = this.tables.get(tableId);
    const rate = t?.index.lookup(number, now);
    if (!t || !rate) return undefined;
    // The stamped rate, not the rule: the same minute cost (same fields), without computing it.
    const decision = planRoute(this.routing, this.buyLookup, planId, number, rate, now, opts);
    return new Routed(decision, t.info, taxPpm, rate, undefined, -1);
  }
}

export function toRule(rate: RateEntry, table: RateTableInfo, taxPpm: number): RateRule {
  return {
    ratePerMin: rate.ratePerMin,
    connectFee: rate.connectFee,
    initialIncrement: rate.initialIncrement,
    subsequentIncrement: rate.subsequentIncrement,
    decimals: table.decimals,
    rounding: table.rounding,
    minBillableSeconds: table.minBillableSeconds,
    taxPpm,
  };
}

interface TableRow {
  id: bigint;
  name: string;
  currency: string;
  decimals: number;
  rounding: Rounding;
  min_billable_seconds: number;
}

interface RateRow {
  id: bigint;
  rate_table_id: bigint;
  prefix: string;
  destination: string;
  rate_per_min_micros: bigint;
  connect_fee_micros: bigint;
  initial_increment: number;
  subsequent_increment: number;
  effective_from: Date | null;
  effective_to: Date | null;
}

const RATE_COLUMNS = `r.id, r.rate_table_id, r.prefix, r.destination, r.rate_per_min_micros, r.connect_fee_micros,
  r.initial_increment, r.subsequent_increment, r.effective_from, r.effective_to`;

function tableFromRow(r: TableRow): RateTableInfo {
  return {
    id: String(r.id),
    name: r.name,
    currency: r.currency,
    decimals: r.decimals,
    rounding: r.rounding,
    minBillableSeconds: r.min_billable_seconds,
  };
}

function rateFromRow(r: RateRow): RateEntry {
  return {
    id: String(r.id),
    rateTableId: String(r.rate_table_id),
    prefix: r.prefix,
    destination: r.destination,
    ratePerMin: r.rate_per_min_micros,
    connectFee: r.connect_fee_micros,
    initialIncrement: r.initial_increment,
    subsequentIncrement: r.subsequent_increment,
    effectiveFrom: r.effective_from,
    effectiveTo: r.effective_to,
  };
}

type Queryable = Pool | PoolClient | pg.Client;

/** Reads every table and rate in one consistent snapshot (REPEATABLE READ) and builds the in-memory index. */
export async function loadRateIndex(pool: Pool, joins?: JoinedIndexes): Promise<RateIndex> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const at = new Date();
    const tables = await client.query<TableRow>(
      'SELECT id, name, currency, decimals, rounding, min_billable_seconds FROM rate_tables ORDER BY id',
    );
    const rates = await client.query<RateRow>(`SELECT ${RATE_COLUMNS} FROM rates r`);
    const routing = await loadRouting(client);
    await client.query('COMMIT');
    return new RateIndex(tables.rows.map(tableFromRow), rates.rows.map(rateFromRow), at, routing, joins);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Reads the given tables and their rates in one consistent snapshot (missing ids: deleted tables). */
export async function loadRateTables(pool: Pool, ids: string[]): Promise<{ tables: RateTableInfo[]; rates: RateEntry[] }> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const tables = await client.query<TableRow>(
      'SELECT id, name, currency, decimals, rounding, min_billable_seconds FROM rate_tables WHERE id = ANY($1::bigint[]) ORDER BY id',
      [ids],
    );
    const rates = await client.query<RateRow>(`SELECT ${RATE_COLUMNS} FROM rates r WHERE r.rate_table_id = ANY($1::bigint[])`, [ids]);
    await client.query('COMMIT');
    return { tables: tables.rows.map(tableFromRow), rates: rates.rows.map(rateFromRow) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export interface RateCacheOptions {
  pool: Pool;
  /** Quiet time after the last notification before reloading (a bulk import fires several). Default 100 ms. */
  debounceMs?: number;
  /** Delay before re-LISTENing after the listening connection fails. Default 1000 ms. */
  reconnectMs?: number;
  /** Told about every reload failure (the previous index stays in use). */
  onError?: (err: unknown) => void;
  onReload?: (index: RateIndex) => void;
  /** Bytes the joined (sell table × routing plan) indexes may take together; 0: none. Default 256 MiB. */
  routeIndexBytes?: number;
  /** Told when a joined index is built or given up (src/billing/joined-index.ts). */
  onRouteIndex?: JoinedIndexesOptions['onBuilt'];
}

/**
 * The current RateIndex, kept fresh: LISTENs on ccard_rates_changed on a dedicated connection and reloads
 * (debounced) whenever the trigger fires: only the tables named in the notifications (their ids), everything when
 * a notification names none (TRUNCATE, an older trigger). If the listening connection drops it reconnects and
 * reloads everything, since notifications sent meanwhile are lost. A failed reload keeps serving the previous
 * index and is retried with the next change.
 */
export class RateCache {
  /** Kept across reloads: a pair whose tries did not change keeps its joined index. */
  private readonly joins: JoinedIndexes;
  private current: RateIndex;
  private listener: PoolClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private running = false;
  /** What the next reload reads: everything, or these table ids. */
  private pendingAll = false;
  private readonly pending = new Set<string>();
  private readonly debounceMs: number;
  private readonly reconnectMs: number;
  /** Incremented on every successful reload. */
  version = 0;

  constructor(private readonly opts: RateCacheOptions) {
    this.debounceMs = opts.debounceMs ?? 100;
    this.reconnectMs = opts.reconnectMs ?? 1000;
    this.joins = new JoinedIndexes({
      budgetBytes: opts.routeIndexBytes ?? DEFAULT_JOIN_BUDGET_BYTES,
      ...(opts.onRouteIndex && { onBuilt: opts.onRouteIndex }),
    });
    this.current = new RateIndex([], [], new Date(), RoutingIndex.empty(), this.joins);
  }

  get index(): RateIndex {
    return this.current;
  }

  ruleFor(tableId: string | bigint, number: string, taxPpm: number, now?: Date | number): RatedNumber | undefined {
    return this.current.ruleFor(tableId, number, taxPpm, now);
  }

  /** LISTENs first, then loads, so no change between the two can be missed. Resolves once the index is loaded. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.listen();
    await this.reload();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.reconnectTimer);
    this.timer = this.reconnectTimer = undefined;
    const l = this.listener;
    this.listener = undefined;
    if (l) {
      l.removeAllListeners('notification');
      await l.query(`UNLISTEN ${RATES_CHANNEL}`).catch(() => {});
      l.release();
    }
    await this.loading?.catch(() => {});
  }

  /** Reloads every table now (coalescing with a reload already running: one more runs after it). */
  reload(): Promise<void> {
    this.pendingAll = true;
    return this.refresh();
  }

  /** Reads what is pending (everything, or some tables) until nothing is. */
  private refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    // Nothing to read (a debounced notification whose change a reload() already read): nothing to start. Starting
    // anyway would finish synchronously, clearing `loading` before it was set, and leave a settled promise there
    // that every later reload would return: the index would never change again.
    if (!this.pendingAll && this.pending.size === 0) return Promise.resolve();
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          const all = this.pendingAll;
          const ids = [...this.pending];
          this.pendingAll = false;
          this.pending.clear();
          if (!all && ids.length === 0) continue;
          let next: RateIndex;
          try {
            if (all) {
              next = await loadRateIndex(this.opts.pool, this.joins);
            } else {
              const { tables, rates } = await loadRateTables(this.opts.pool, ids);
              next = this.current.withTables(ids, tables, rates);
            }
          } catch (err) {
            // Not read: stays pending for the next attempt.
            if (all) this.pendingAll = true;
            for (const id of ids) this.pending.add(id);
            throw err;
          }
          this.current = next;
          // Joined indexes built from tries this snapshot no longer has are dropped now (they would never be served).
          this.joins.prune(next);
          this.version++;
          this.opts.onReload?.(next);
        } while (this.again && this.running);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private async listen(): Promise<void> {
    const client = await this.opts.pool.connect();
    const onError = (err: unknown) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.release(err instanceof Error ? err : true);
      this.opts.onError?.(err);
      this.scheduleReconnect();
    };
    client.on('error', onError);
    client.on('notification', (msg) => {
      if (msg.channel === RATES_CHANNEL) this.schedule(msg.payload);
    });
    try {
      await client.query(`LISTEN ${RATES_CHANNEL}`);
    } catch (err) {
      client.release(true);
      throw err;
    }
    this.listener = client;
  }

  /** A notification: its payload is the id of the table that changed; none means every table. */
  private schedule(payload: string | undefined): void {
    if (!this.running) return;
    if (payload && /^\d+$/.test(payload)) this.pending.add(payload);
    else this.pendingAll = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch((err) => this.opts.onError?.(err));
    }, this.debounceMs);
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
    }, this.reconnectMs);
  }
}

export interface ImportRatesOptions {
  /** 'replace' (default): the file becomes the table's whole content. 'merge': upsert by (prefix, effective_from). */
  mode?: 'replace' | 'merge';
  /** Used when the table is created. For an existing table, a value that differs is refused (RATE_TABLE_MISMATCH). */
  currency?: string;
  decimals?: number;
  rounding?: Rounding;
  minBillableSeconds?: number;
}

export interface ImportRatesResult {
  tableId: string;
  created: boolean;
  /** Rows in the file. */
  rows: number;
  inserted: number;
  updated: number;
  deleted: number;
}

/**
 * Imports a rate CSV into the table named `tableName` in ONE transaction, in bounded memory whatever the size of
 * the file: rows are validated as they are read and staged in batches in a temporary table; duplicates of
 * (prefix, effective_from) are found there. Any bad line: RateImportError RATE_CSV_INVALID (the first 100 listed,
 * the rest counted) and nothing is touched. Then the table is created if missing and its rates replaced (or
 * merged) from the staged rows. Concurrent imports into the same table are serialized by a row lock.
 */
export async function importRates(
  pool: Pool,
  tableName: string,
  csv: RateCsvInput,
  opts: ImportRatesOptions = {},
): Promise<ImportRatesResult> {
  return withTransaction(pool, async (c) => {
    await c.query(`CREATE TEMP TABLE rate_import (line int NOT NULL, prefix text NOT NULL, destination text NOT NULL,
      rate bigint NOT NULL, fee bigint NOT NULL, ini int NOT NULL, sub int NOT NULL, efrom timestamptz, eto timestamptz)
      ON COMMIT DROP`);
    const read = await readRatesCsv(csv, async (batch) => {
      await c.query(`INSERT INTO rate_import SELECT * FROM unnest($1::int[], ${STAGE_COLUMNS})`, [batch.map((r) => r.line), ...columnsOf(batch)]);
    });
    if (read.issues.length > 0) throw new RateImportError('RATE_CSV_INVALID', read.issues, undefined, read.moreIssues);
    const dups = await c.query<{ line: number; prefix: string; efrom: Date | null; first: number; n: bigint }>(
      `SELECT line, prefix, efrom, first, count(*) OVER () AS n FROM (
         SELECT line, prefix, efrom, min(line) OVER (PARTITION BY prefix, efrom) AS first FROM rate_import) d
       WHERE line <> first ORDER BY line LIMIT ${MAX_LISTED_ISSUES}`,
    );
    if (dups.rows.length > 0) {
      const issues = dups.rows.map((d) => ({ line: d.line, message: duplicateMessage({ prefix: d.prefix, effectiveFrom: d.efrom }, d.first) }));
      throw new RateImportError('RATE_CSV_INVALID', issues, undefined, Number(dups.rows[0]!.n) - issues.length);
    }

    const { id: tableId, created } = await ensureTable(c, tableName, opts);
    const cols = 'prefix, destination, rate_per_min_micros, connect_fee_micros, initial_increment, subsequent_increment, effective_from, effective_to';
    let inserted = 0;
    let updated = 0;
    let deleted = 0;
    if ((opts.mode ?? 'replace') === 'replace') {
      deleted = (await c.query('DELETE FROM rates WHERE rate_table_id = $1', [tableId])).rowCount ?? 0;
      inserted = (await c.query(`INSERT INTO rates (rate_table_id, ${cols}) SELECT $1, ${STAGED} FROM rate_import n ORDER BY n.line`, [tableId])).rowCount ?? 0;
    } else {
      const u = await c.query(
        `UPDATE rates r SET destination = n.destination, rate_per_min_micros = n.rate, connect_fee_micros = n.fee,
           initial_increment = n.ini, subsequent_increment = n.sub, effective_to = n.eto
         FROM rate_import n
         WHERE r.rate_table_id = $1 AND r.prefix = n.prefix AND r.effective_from IS NOT DISTINCT FROM n.efrom`,
        [tableId],
      );
      updated = u.rowCount ?? 0;
      const i = await c.query(
        `INSERT INTO rates (rate_table_id, ${cols}) SELECT $1, ${STAGED} FROM rate_import n
         WHERE NOT EXISTS (SELECT 1 FROM rates r WHERE r.rate_table_id = $1 AND r.prefix = n.prefix
           AND r.effective_from IS NOT DISTINCT FROM n.efrom)
         ORDER BY n.line`,
        [tableId],
      );
      inserted = i.rowCount ?? 0;
    }
    return { tableId, created, rows: read.rows, inserted, updated, deleted };
  });
}

const STAGE_COLUMNS = `$2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::int[], $7::int[], $8::timestamptz[], $9::timestamptz[]`;
const STAGED = 'n.prefix, n.destination, n.rate, n.fee, n.ini, n.sub, n.efrom, n.eto';

function columnsOf(rows: RateCsvRow[]): unknown[] {
  return [
    rows.map((r) => r.prefix),
    rows.map((r) => r.destination),
    rows.map((r) => r.ratePerMin.toString()),
    rows.map((r) => r.connectFee.toString()),
    rows.map((r) => r.initialIncrement),
    rows.map((r) => r.subsequentIncrement),
    rows.map((r) => r.effectiveFrom?.toISOString() ?? null),
    rows.map((r) => r.effectiveTo?.toISOString() ?? null),
  ];
}

async function ensureTable(c: PoolClient, name: string, opts: ImportRatesOptions): Promise<{ id: string; created: boolean }> {
  const ins = await c.query<{ id: bigint }>(
    `INSERT INTO rate_tables (name, currency, decimals, rounding, min_billable_seconds)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id`,
    [name, opts.currency ?? 'USD', opts.decimals ?? 2, opts.rounding ?? 'up', opts.minBillableSeconds ?? 0],
  );
  if (ins.rowCount) return { id: String(ins.rows[0]!.id), created: true };
  const existing = await c.query<TableRow>(
    'SELECT id, name, currency, decimals, rounding, min_billable_seconds FROM rate_tables WHERE name = $1 FOR UPDATE',
    [name],
  );
  const t = tableFromRow(existing.rows[0]!);
  const diffs: string[] = [];
  if (opts.currency !== undefined && opts.currency !== t.currency) diffs.push(`currency ${t.currency}, not ${opts.currency}`);
  if (opts.decimals !== undefined && opts.decimals !== t.decimals) diffs.push(`decimals ${t.decimals}, not ${opts.decimals}`);
  if (opts.rounding !== undefined && opts.rounding !== t.rounding) diffs.push(`rounding ${t.rounding}, not ${opts.rounding}`);
  if (opts.minBillableSeconds !== undefined && opts.minBillableSeconds !== t.minBillableSeconds) {
    diffs.push(`min billable ${t.minBillableSeconds} s, not ${opts.minBillableSeconds}`);
  }
  if (diffs.length) {
    throw new RateImportError('RATE_TABLE_MISMATCH', [], `rate table "${name}" already exists with ${diffs.join(', ')}; nothing imported`);
  }
  return { id: t.id, created: false };
}

export async function getRateTable(db: Queryable, name: string): Promise<RateTableInfo | undefined> {
  const r = await db.query<TableRow>(
    'SELECT id, name, currency, decimals, rounding, min_billable_seconds FROM rate_tables WHERE name = $1',
    [name],
  );
  return r.rows[0] ? tableFromRow(r.rows[0]) : undefined;
}

export async function listRateTables(db: Queryable): Promise<(RateTableInfo & { rateCount: number })[]> {
  const r = await db.query<TableRow & { n: bigint }>(
    `SELECT t.id, t.name, t.currency, t.decimals, t.rounding, t.min_billable_seconds,
       (SELECT count(*) FROM rates r WHERE r.rate_table_id = t.id) AS n
     FROM rate_tables t ORDER BY t.name`,
  );
  return r.rows.map((row) => ({ ...tableFromRow(row), rateCount: Number(row.n) }));
}

export interface ListRatesOptions {
  /** Only rates whose prefix starts with these digits. */
  prefix?: string;
  limit?: number;
  offset?: number;
}

/** Rates of a table ordered by prefix then effective_from (undefined table: []). */
export async function listRates(db: Queryable, tableName: string, opts: ListRatesOptions = {}): Promise<RateEntry[]> {
  const r = await db.query<RateRow>(
    `SELECT ${RATE_COLUMNS} FROM rates r JOIN rate_tables t ON t.id = r.rate_table_id
     WHERE t.name = $1 AND ($2::text IS NULL OR starts_with(r.prefix, $2))
     ORDER BY r.prefix, r.effective_from NULLS FIRST, r.id
     LIMIT $3 OFFSET $4`,
    [tableName, opts.prefix ?? null, opts.limit ?? null, opts.offset ?? 0],
  );
  return r.rows.map(rateFromRow);
}

/**
 * Streams a table's rates as CSV in the import format through a cursor (constant memory; the same text as
 * exportRates). Unknown table: RangeError. See streamCsv for how it stops when the reader goes away.
 */
export async function streamRates(pool: Pool, tableName: string, out: Writable, opts: StreamOptions = {}): Promise<number> {
  const table = await getRateTable(pool, tableName);
  if (!table) throw new RangeError(`no rate table named "${tableName}"`);
  return streamCsv<RateRow>(
    pool,
    out,
    {
      sql: `SELECT ${RATE_COLUMNS} FROM rates r WHERE r.rate_table_id = $1 ORDER BY r.prefix, r.effective_from NULLS FIRST, r.id`,
      params: [table.id],
      header: RATE_CSV_COLUMNS,
      cells: (r) => rateCsvCells(rateFromRow(r), table.decimals),
    },
    opts,
  );
}

/** The table's rates as CSV in the import format (amounts exact to the micro). Unknown table: RangeError. */
export async function exportRates(db: Queryable, tableName: string): Promise<string> {
  const table = await getRateTable(db, tableName);
  if (!table) throw new RangeError(`no rate table named "${tableName}"`);
  const rates = await listRates(db, tableName);
  return formatRatesCsv(rates, table.decimals);
}
