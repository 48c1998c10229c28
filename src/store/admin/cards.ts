import { createHash, randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { withTransaction } from '../db.ts';
import { CARD_STATUSES } from '../cards.ts';
import { decryptPin } from '../pin.ts';
import { applyBalanceChange } from '../../billing/ledger.ts';
import { MAX_AMOUNT_MICROS, MAX_AMOUNT_UNITS, type Micros } from '../../money/money.ts';
import type { AdminContext } from './context.ts';
import { AdminError, invalid, notFound, pgCode } from './errors.ts';
import { resellerScope } from './scope.ts';
import { changeWholesale } from './resellers.ts';
import { amountJson, formatAmount, isoOrNull } from './format.ts';
import {
  anyMoney,
  dateInput,
  nonNegativeMoney,
  nonZeroMoney,
  pageInput,
  parseInput,
  positiveMoney,
  serialInput,
  seriesNumberInput,
  wholeNumber,
} from './input.ts';
import { streamCsv, streamXlsx, type StreamOptions } from './export-stream.ts';

export const cardFilterSchema = z.object({
  series: seriesNumberInput.optional(),
  status: z.enum(CARD_STATUSES).optional(),
  serial: z.string().trim().regex(/^[0-9-]{1,20}$/, 'must be a serial or its beginning').optional(),
  minBalance: anyMoney.optional(),
  maxBalance: anyMoney.optional(),
  lastUsedBefore: dateInput.optional(),
  lastUsedAfter: dateInput.optional(),
});
export type CardFilterInput = z.input<typeof cardFilterSchema>;
export const cardSearchSchema = cardFilterSchema.extend(pageInput);
export type CardSearchInput = z.input<typeof cardSearchSchema>;

export interface Card {
  id: string;
  serial: string;
  series: string;
  status: string;
  currency: string;
  balance: Micros;
  creditLimit: Micros;
  balanceVersion: bigint;
  /** Simultaneous calls allowed: the card's own value, else its series'. */
  maxCalls: number;
  /** The card's own value (null: the series value applies). */
  maxCallsOverride: number | null;
  /** The rate table the card's calls are rated with: the card's own table, else its series'. */
  rateTable: string;
  rateTableOverride: string | null;
  activatedAt: Date | null;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

export interface CardRow {
  id: bigint;
  serial: string;
  series_number: string;
  status: string;
  currency: string;
  balance_micros: bigint;
  credit_limit_micros: bigint;
  balance_version: bigint;
  max_calls: number;
  max_calls_override: number | null;
  rate_table: string;
  rate_table_override: string | null;
  activated_at: Date | null;
  expires_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
}

export const toCard = (r: CardRow): Card => ({
  id: r.id.toString(),
  serial: r.serial,
  series: r.series_number,
  status: r.status,
  currency: r.currency,
  balance: r.balance_micros,
  creditLimit: r.credit_limit_micros,
  balanceVersion: r.balance_version,
  maxCalls: r.max_calls,
  maxCallsOverride: r.max_calls_override,
  rateTable: r.rate_table,
  rateTableOverride: r.rate_table_override,
  activatedAt: r.activated_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  createdAt: r.created_at,
});

export function cardJson(c: Card) {
  return {
    serial: c.serial,
    series: c.series,
    status: c.status,
    currency: c.currency,
    balance: amountJson(c.balance),
    creditLimit: amountJson(c.creditLimit),
    maxCalls: c.maxCalls,
    maxCallsOverride: c.maxCallsOverride,
    rateTable: c.rateTable,
    rateTableOverride: c.rateTableOverride,
    activatedAt: isoOrNull(c.activatedAt),
    expiresAt: isoOrNull(c.expiresAt),
    lastUsedAt: isoOrNull(c.lastUsedAt),
    createdAt: c.createdAt.toISOString(),
  };
}

// expires_at: the effective expiry, the earlier of the card's own and its series' date (LEAST skips NULLs).
// max_calls and rate_table: the card's own value, else the series' (as src/store/cards.ts reads them for a call).
export const CARD_COLUMNS = `c.id, c.serial, s.series_number, c.status, c.currency, c.balance_micros, c.credit_limit_micros,
  c.balance_version, COALESCE(c.max_concurrent_calls, s.max_concurrent_calls) AS max_calls,
  c.max_concurrent_calls AS max_calls_override,
  (SELECT rt.name FROM rate_tables rt WHERE rt.id = COALESCE(c.rate_table_id, s.rate_table_id)) AS rate_table,
  (SELECT rt.name FROM rate_tables rt WHERE rt.id = c.rate_table_id) AS rate_table_override,
  c.activated_at, LEAST(c.expires_at, s.expiry_date) AS expires_at, c.last_used_at, c.created_at`;

function filterSql(f: z.output<typeof cardFilterSchema>): { where: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    conds.push(sql.replace('?', `$${params.length}`));
  };
  if (f.series !== undefined) add('s.series_number = ?', f.series);
  const reseller = resellerScope();
  if (reseller !== null) add('s.reseller_id = ?', reseller);
  if (f.status !== undefined) add('c.status = ?', f.status);
  if (f.serial !== undefined) add(`c.serial LIKE ? || '%'`, f.serial);
  if (f.minBalance !== undefined) add('c.balance_micros >= ?', f.minBalance.toString());
  if (f.maxBalance !== undefined) add('c.balance_micros <= ?', f.maxBalance.toString());
  if (f.lastUsedBefore !== undefined) add('c.last_used_at < ?', f.lastUsedBefore);
  if (f.lastUsedAfter !== undefined) add('c.last_used_at > ?', f.lastUsedAfter);
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

async function requireSeries(ctx: AdminContext, number: string | undefined): Promise<void> {
  if (number === undefined) return;
  const r = await ctx.pool.query('SELECT 1 FROM series WHERE series_number = $1', [number]);
  if (!r.rowCount) throw notFound(`unknown series ${number}`);
}

/** Cards matching the filters, in serial order; `hasMore` tells whether another page exists. */
export async function searchCards(ctx: AdminContext, raw: CardSearchInput): Promise<{ items: Card[]; hasMore: boolean }> {
  const f = parseInput(cardSearchSchema, raw);
  await requireSeries(ctx, f.series);
  const { where, params } = filterSql(f);
  const r = await ctx.pool.query<CardRow>(
    `SELECT ${CARD_COLUMNS} FROM cards c JOIN series s ON s.id = c.series_id ${where}
     ORDER BY c.serial LIMIT ${f.limit + 1} OFFSET ${f.offset}`,
    params,
  );
  return { items: r.rows.slice(0, f.limit).map(toCard), hasMore: r.rows.length > f.limit };
}

export async function getCard(ctx: AdminContext, serial: string): Promise<Card> {
  const s = parseInput(serialInput, serial, 'serial');
  const r = await ctx.pool.query<CardRow>(
    `SELECT ${CARD_COLUMNS} FROM cards c JOIN series s ON s.id = c.series_id WHERE c.serial = $1`,
    [s],
  );
  if (!r.rowCount) throw notFound(`unknown card ${s}`);
  return toCard(r.rows[0]!);
}

export async function setCardStatus(ctx: AdminContext, serial: string, status: string): Promise<Card> {
  const s = parseInput(serialInput, serial, 'serial');
  const st = parseInput(z.enum(CARD_STATUSES), status, 'status');
  const r = await ctx.pool.query('UPDATE cards SET status = $2 WHERE serial = $1', [s, st]);
  if (!r.rowCount) throw notFound(`unknown card ${s}`);
  return getCard(ctx, s);
}

/** "series" (or null in JSON) puts a per-card setting back to its series' value. */
const orSeries = <T extends z.ZodType>(inner: T) => z.preprocess((v) => (v === 'series' ? null : v), inner.nullable());

const rateTableName = z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . - (or "series")');

export const cardLimitsSchema = z
  .object({
    maxCalls: orSeries(wholeNumber(1, 1000)).optional(),
    creditLimit: nonNegativeMoney.optional(),
    rateTable: orSeries(rateTableName).optional(),
  })
  .strict();
export type CardLimitsInput = z.input<typeof cardLimitsSchema>;

/**
 * Per-card settings: simultaneous calls and rate table (own value, or back to the series' with "series"/null),
 * and the credit limit (how far below zero the balance may go). A new credit limit changes what the card may
 * spend: it bumps balance_version in the same UPDATE and, after commit, hands the new snapshot to onBalanceChange
 * so the live store takes it. A limit the current balance is already below is refused (balance_floor).
 */
export async function setCardLimits(ctx: AdminContext, serial: string, raw: CardLimitsInput): Promise<Card> {
  const s = parseInput(serialInput, serial, 'serial');
  const i = parseInput(cardLimitsSchema, raw);
  if (i.maxCalls === undefined && i.creditLimit === undefined && i.rateTable === undefined) {
    throw invalid('nothing to change: give maxCalls, creditLimit or rateTable');
  }
  const snapshot = await withTransaction(ctx.pool, async (client) => {
    const card = await client.query<{ id: bigint; currency: string; balance_micros: bigint }>(
      'SELECT id, currency, balance_micros FROM cards WHERE serial = $1 FOR UPDATE',
      [s],
    );
    if (!card.rowCount) throw notFound(`unknown card ${s}`);
    const { id, currency, balance_micros: balance } = card.rows[0]!;
    const sets: string[] = [];
    const values: unknown[] = [id];
    const set = (col: string, v: unknown) => {
      values.push(v);
      sets.push(`${col} = $${values.length}`);
    };
    if (i.maxCalls !== undefined) set('max_concurrent_calls', i.maxCalls);
    if (i.rateTable !== undefined) {
      let tableId: bigint | null = null;
      if (i.rateTable !== null) {
        const rt = await client.query<{ id: bigint; currency: string }>('SELECT id, currency FROM rate_tables WHERE name = $1', [i.rateTable]);
        if (!rt.rowCount) throw notFound(`unknown rate table "${i.rateTable}"`);
        const tableCurrency = rt.rows[0]!.currency.trim();
        if (tableCurrency !== currency.trim()) {
          throw invalid(`rate table "${i.rateTable}" is in ${tableCurrency}, not ${currency.trim()} (the currency of ${s})`);
        }
        tableId = rt.rows[0]!.id;
      }
      set('rate_table_id', tableId);
    }
    const floorError = (limit: Micros) =>
      invalid(
        `credit limit ${formatAmount(limit)} is below what the balance of ${s} needs (balance ${formatAmount(balance)}): ` +
          `the limit must be at least ${formatAmount(-balance)} until the card is topped up`,
      );
    if (i.creditLimit !== undefined) {
      if (balance < -i.creditLimit) throw floorError(i.creditLimit);
      set('credit_limit_micros', i.creditLimit.toString());
      sets.push('balance_version = balance_version + 1');
    }
    try {
      const u = await client.query<{ balance_micros: bigint; credit_limit_micros: bigint; balance_version: bigint }>(
        `UPDATE cards SET ${sets.join(', ')} WHERE id = $1 RETURNING balance_micros, credit_limit_micros, balance_version`,
        values,
      );
      const row = u.rows[0]!;
      return i.creditLimit === undefined
        ? undefined
        : { cardId: id.toString(), spendable: row.balance_micros + row.credit_limit_micros, version: row.balance_version };
    } catch (err) {
      if (pgCode(err) === '23514' && i.creditLimit !== undefined) throw floorError(i.creditLimit);
      throw err;
    }
  });
  if (snapshot && ctx.onBalanceChange) {
    await ctx.onBalanceChange(snapshot.cardId, { spendable: snapshot.spendable, version: snapshot.version });
  }
  return getCard(ctx, s);
}

export const topUpSchema = z.object({
  serial: serialInput,
  amount: positiveMoney,
  reason: z.string().max(500).default(''),
  idempotencyKey: z.string().trim().min(1).max(200).optional(),
});
export type TopUpInput = z.input<typeof topUpSchema>;

export const adjustSchema = z.object({
  serial: serialInput,
  amount: nonZeroMoney,
  reason: z.string().trim().min(1, 'a reason is required for an adjustment').max(500),
  idempotencyKey: z.string().trim().min(1).max(200).optional(),
});
export type AdjustInput = z.input<typeof adjustSchema>;

/** What a top-up or adjustment answers, and what an idempotency key replays. */
export interface MoneyMoveResponse {
  serial: string;
  kind: 'topup' | 'adjustment';
  amount: { value: string; micros: string };
  balance: { value: string; micros: string };
  ref: string;
  applied: boolean;
}

export interface MoneyMoveResult {
  statusCode: number;
  response: MoneyMoveResponse;
  /** True when an earlier request with the same idempotency key answered and nothing was applied now. */
  replayed: boolean;
}

// JSONB reorders keys: a replayed answer is rebuilt in this order so that it is byte-for-byte the first one.
const canonical = (r: MoneyMoveResponse): MoneyMoveResponse => ({
  serial: r.serial,
  kind: r.kind,
  amount: { value: r.amount.value, micros: r.amount.micros },
  balance: { value: r.balance.value, micros: r.balance.micros },
  ref: r.ref,
  applied: r.applied,
});

/** Credits a card (reason 'topup'). */
export function topUp(ctx: AdminContext, raw: TopUpInput): Promise<MoneyMoveResult> {
  const i = parseInput(topUpSchema, raw);
  return moveMoney(ctx, 'topup', i.serial, i.amount, i.reason, i.idempotencyKey);
}

/** Corrects a card's balance up or down (reason 'adjustment'); never below the card's credit floor. */
export function adjust(ctx: AdminContext, raw: AdjustInput): Promise<MoneyMoveResult> {
  const i = parseInput(adjustSchema, raw);
  return moveMoney(ctx, 'adjustment', i.serial, i.amount, i.reason, i.idempotencyKey);
}

/**
 * One money move through the ledger. With an idempotency key the request is serialised on the key (advisory
 * lock), a stored answer is replayed for the same request and refused (IDEMPOTENCY_MISMATCH) for a different one,
 * and the key is the ledger ref, so even a concurrent duplicate credits once.
 */
async function moveMoney(
  ctx: AdminContext,
  kind: 'topup' | 'adjustment',
  serial: string,
  amount: Micros,
  note: string,
  key: string | undefined,
): Promise<MoneyMoveResult> {
  const requestHash = createHash('sha256')
    .update(JSON.stringify({ kind, serial, amount: amount.toString(), note }))
    .digest('hex');
  const scope = ctx.actor ?? '';
  let snapshot: { cardId: string; spendable: Micros; version: bigint } | undefined;
  const result = await withTransaction(ctx.pool, async (client): Promise<MoneyMoveResult> => {
    if (key !== undefined) {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`idempotency:${scope}:${key}`]);
      // The caller's own key; a key stored before keys were scoped (scope '') is honoured for anyone.
      const prior = await client.query<{ request_hash: string; status_code: number; response: MoneyMoveResponse }>(
        `SELECT request_hash, status_code, response FROM idempotency_keys WHERE key = $1 AND scope IN ($2, '')
          ORDER BY scope DESC LIMIT 1`,
        [key, scope],
      );
      if (prior.rowCount) {
        const p = prior.rows[0]!;
        if (p.request_hash !== requestHash) {
          throw new AdminError('IDEMPOTENCY_MISMATCH', `idempotency key "${key}" was already used for a different request`);
        }
        return { statusCode: p.status_code, response: canonical(p.response), replayed: true };
      }
    }
    const card = await client.query<{ id: bigint; reseller_id: string | null }>(
      'SELECT c.id, s.reseller_id::text AS reseller_id FROM cards c JOIN series s ON s.id = c.series_id WHERE c.serial = $1',
      [serial],
    );
    if (!card.rowCount) throw notFound(`unknown card ${serial}`);
    const cardId = card.rows[0]!.id.toString();
    // The ledger ref of a scoped key carries its scope: two clients' equal keys are two credits.
    const ref = key === undefined ? randomUUID() : scope ? `${scope}/${key}` : key;
    // A top-up of a reseller's card is paid from the reseller's wholesale balance, in the same transaction.
    const reseller = card.rows[0]!.reseller_id;
    if (reseller !== null && kind === 'topup' && amount > 0n) {
      const dup = await client.query('SELECT 1 FROM ledger WHERE card_id = $1 AND reason = $2 AND ref = $3', [cardId, kind, ref]);
      if (!dup.rowCount) await changeWholesale(client, reseller, amount, 'card_topup', `${serial}:${ref}`);
    }
    const r = await applyBalanceChange(client, { cardId, amount, reason: kind, ref, note, onFloor: 'reject' });
    if (!r.applied && r.reason === 'below_floor') {
      throw invalid(`the adjustment would take the balance of ${serial} below its floor (balance ${formatAmount(r.balanceAfter)})`);
    }
    if (!r.applied && r.reason === 'no_card') throw notFound(`unknown card ${serial}`);
    if (r.applied && r.balanceAfter > MAX_AMOUNT_MICROS) {
      throw invalid(`the balance of ${serial} would exceed ${MAX_AMOUNT_UNITS}, the largest balance a card may hold`);
    }
    if (r.applied) snapshot = { cardId, spendable: r.balanceAfter + r.creditLimit, version: r.version };
    const response: MoneyMoveResponse = {
      serial,
      kind,
      amount: amountJson(amount),
      balance: amountJson(r.balanceAfter),
      ref,
      applied: r.applied,
    };
    if (key !== undefined) {
      await client.query('INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response) VALUES ($1, $2, $3, $4, $5)', [
        scope,
        key,
        requestHash,
        200,
        JSON.stringify(response),
      ]);
    }
    return { statusCode: 200, response, replayed: !r.applied };
  });
  if (snapshot && ctx.onBalanceChange) {
    await ctx.onBalanceChange(snapshot.cardId, { spendable: snapshot.spendable, version: snapshot.version });
  }
  return result;
}

export interface LedgerEntry {
  id: string;
  amount: Micros;
  balanceAfter: Micros;
  reason: string;
  ref: string;
  note: string;
  createdAt: Date;
}

export async function cardHistory(
  ctx: AdminContext,
  serial: string,
  page: { limit?: number | string; offset?: number | string } = {},
): Promise<{ items: LedgerEntry[]; hasMore: boolean }> {
  const p = parseInput(z.object(pageInput), page);
  const card = await getCard(ctx, serial);
  const r = await ctx.pool.query<{
    id: bigint;
    amount_micros: bigint;
    balance_after_micros: bigint;
    reason: string;
    ref: string;
    note: string;
    created_at: Date;
  }>(
    `SELECT id, amount_micros, balance_after_micros, reason, ref, note, created_at FROM ledger
     WHERE card_id = $1 ORDER BY id LIMIT ${p.limit + 1} OFFSET ${p.offset}`,
    [card.id],
  );
  return {
    items: r.rows.slice(0, p.limit).map((x) => ({
      id: x.id.toString(),
      amount: x.amount_micros,
      balanceAfter: x.balance_after_micros,
      reason: x.reason,
      ref: x.ref,
      note: x.note,
      createdAt: x.created_at,
    })),
    hasMore: r.rows.length > p.limit,
  };
}

export const ledgerEntryJson = (e: LedgerEntry) => ({
  id: e.id,
  amount: amountJson(e.amount),
  balanceAfter: amountJson(e.balanceAfter),
  reason: e.reason,
  ref: e.ref,
  note: e.note,
  createdAt: e.createdAt.toISOString(),
});

export interface ExportOptions extends StreamOptions {
  format: 'csv' | 'xlsx';
  withPins?: boolean;
}

/**
 * Streams the matching cards to `out` (serial, [pin], balance, currency, status, expires_at) through a cursor:
 * memory stays constant for any number of cards. PINs are decrypted only with withPins. Nothing is written before
 * the first batch is read. Does not end `out` for CSV; for XLSX the workbook writer finishes the stream. Stops
 * (ExportAbortedError) when `out` closes or stalls past opts.stallMs, or opts.signal fires.
 */
export async function exportCards(ctx: AdminContext, rawFilter: CardFilterInput, out: Writable, opts: ExportOptions): Promise<number> {
  const f = parseInput(cardFilterSchema, rawFilter);
  await requireSeries(ctx, f.series);
  const { where, params } = filterSql(f);
  const header = ['serial', ...(opts.withPins ? ['pin'] : []), 'balance', 'currency', 'status', 'expires_at'];
  const sql = `SELECT c.serial, ${opts.withPins ? 'c.pin_cipher' : 'NULL::bytea AS pin_cipher'}, c.balance_micros,
      c.currency, c.status, LEAST(c.expires_at, s.expiry_date) AS expires_at
    FROM cards c JOIN series s ON s.id = c.series_id ${where} ORDER BY c.id`;
  type Row = { serial: string; pin_cipher: Buffer | null; balance_micros: bigint; currency: string; status: string; expires_at: Date | null };
  const cells = (r: Row): string[] => [
    r.serial,
    ...(opts.withPins ? [r.pin_cipher ? decryptPin(ctx.pinKeys, r.pin_cipher) : ''] : []),
    formatAmount(r.balance_micros),
    r.currency,
    r.status,
    r.expires_at ? r.expires_at.toISOString() : '',
  ];
  const stream = { signal: opts.signal, stallMs: opts.stallMs };
  if (opts.format === 'csv') return streamCsv<Row>(ctx.pool, out, { sql, params, header, cells }, stream);

  return streamXlsx<Row>(ctx.pool, out, { sql, params: params, header, cells, sheet: 'cards' }, stream);
}
