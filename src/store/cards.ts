import type { Pool, PoolClient } from 'pg';
import type { Micros } from '../money/money.ts';
import { statementName } from './db.ts';
import { hashPin, type PinKeys } from './pin.ts';

/** Anything that runs a query: the pool or a client inside a transaction. */
export type Queryable = Pick<Pool, 'query'> | Pick<PoolClient, 'query'>;

/**
 * Every card status, the one list the code reads (admin validation, the API schema, the CLI's help, authorization).
 * pending: never used (activated on first use); active; disabled (by an operator); expired (past its or its series'
 * expiry). migrations/001_init.sql's CHECK on cards.status holds the same list; test/billing/card-status checks it.
 */
export const CARD_STATUSES = ['pending', 'active', 'disabled', 'expired'] as const;
export type CardStatus = (typeof CARD_STATUSES)[number];
/** The statuses a series may give its new cards (series.initial_status's CHECK). */
export const INITIAL_CARD_STATUSES = ['pending', 'active', 'disabled'] as const satisfies readonly CardStatus[];

/** A card with the series settings that decide how it may be used. */
export interface CardRecord {
  id: string;
  serial: string;
  status: CardStatus;
  currency: string;
  balance: Micros;
  creditLimit: Micros;
  version: bigint;
  /** The card's own table, else its series'. */
  rateTableId: string;
  taxPpm: number;
  /** The card's override, else its series'. */
  maxConcurrentCalls: number;
  /** The card's routing plan, else its series' (null: none). */
  routingPlanId: string | null;
  activatedAt: Date | null;
  expiresAt: Date | null;
  seriesId: string;
  seriesStatus: 'active' | 'stopped' | 'deleted';
  seriesExpiryDate: Date | null;
  expiryDays: number | null;
  activationFee: Micros;
}

interface CardRow {
  id: string;
  serial: string;
  status: CardStatus;
  currency: string;
  balance_micros: bigint;
  credit_limit_micros: bigint;
  balance_version: bigint;
  rate_table_id: string;
  tax_ppm: number | null;
  max_concurrent_calls: number;
  routing_plan_id: string | null;
  activated_at: Date | null;
  expires_at: Date | null;
  series_id: string;
  series_status: CardRecord['seriesStatus'];
  expiry_date: Date | null;
  expiry_days: number | null;
  activation_fee_micros: bigint;
}

// id and the foreign keys are BIGINT: cast to text so they are plain strings, never numbers.
const CARD_SELECT = `
  SELECT c.id::text AS id, c.serial, c.status, c.currency, c.balance_micros, c.credit_limit_micros, c.balance_version,
         COALESCE(c.rate_table_id, s.rate_table_id)::text AS rate_table_id, t.rate_ppm AS tax_ppm,
         COALESCE(c.max_concurrent_calls, s.max_concurrent_calls) AS max_concurrent_calls,
         COALESCE(c.routing_plan_id, s.routing_plan_id)::text AS routing_plan_id,
         c.activated_at, c.expires_at, s.id::text AS series_id, s.status AS series_status, s.expiry_date, s.expiry_days,
         s.activation_fee_micros
    FROM cards c
    JOIN series s ON s.id = c.series_id
    LEFT JOIN tax_profiles t ON t.id = s.tax_profile_id
   WHERE c.id = $1`;
const CARD_BY_PIN_SELECT = CARD_SELECT.replace('WHERE c.id = $1', 'WHERE c.pin_hash = $1');

const ID_RE = /^[1-9][0-9]{0,18}$/;

/** Card ids are BIGSERIAL: anything else cannot name a card (and must not reach a query as a bad cast). */
export const isCardId = (id: string): boolean => ID_RE.test(id);

export async function getCard(db: Queryable, cardId: string, forUpdate = false): Promise<CardRecord | undefined> {
  if (!isCardId(cardId)) return undefined;
  const r = forUpdate
    ? await db.query<CardRow>(`${CARD_SELECT} FOR UPDATE OF c`, [cardId])
    : await db.query<CardRow>({ name: statementName('ccard_card'), text: CARD_SELECT, values: [cardId] });
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

/** The card holding this PIN, in one indexed query on cards.pin_hash (UNIQUE), with what getCard gives. */
export async function getCardByPin(db: Queryable, keys: PinKeys, pin: string): Promise<CardRecord | undefined> {
  const r = await db.query<CardRow>({ name: statementName('ccard_card_by_pin'), text: CARD_BY_PIN_SELECT, values: [hashPin(keys, pin)] });
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

function toRecord(row: CardRow): CardRecord {
  return {
    id: row.id,
    serial: row.serial,
    status: row.status,
    currency: row.currency.trim(),
    balance: row.balance_micros,
    creditLimit: row.credit_limit_micros,
    version: row.balance_version,
    rateTableId: row.rate_table_id,
    taxPpm: row.tax_ppm ?? 0,
    maxConcurrentCalls: row.max_concurrent_calls,
    routingPlanId: row.routing_plan_id ?? null,
    activatedAt: row.activated_at,
    expiresAt: row.expires_at,
    seriesId: row.series_id,
    seriesStatus: row.series_status,
    seriesExpiryDate: row.expiry_date,
    expiryDays: row.expiry_days,
    activationFee: row.activation_fee_micros,
  };
}

export const CALLER_ID_RE = /^\+?[0-9]{3,20}$/;

export async function cardIdByCallerId(db: Queryable, callerId: string): Promise<string | undefined> {
  if (!CALLER_ID_RE.test(callerId)) return undefined;
  const r = await db.query<{ id: string }>({
    name: statementName('ccard_card_by_cli'),
    text: 'SELECT card_id::text AS id FROM caller_ids WHERE caller_id = $1',
    values: [callerId],
  });
  return r.rows[0]?.id;
}

/** Binds (or re-binds, latest PIN wins) a caller ID to a card. Invalid caller IDs are ignored. */
export async function bindCallerId(db: Queryable, callerId: string, cardId: string): Promise<boolean> {
  if (!CALLER_ID_RE.test(callerId) || !isCardId(cardId)) return false;
  await db.query(
    `INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2)
     ON CONFLICT (caller_id) DO UPDATE SET card_id = EXCLUDED.card_id`,
    [callerId, cardId],
  );
  return true;
}

/** The card's balance as stored (undefined: no such card). */
export async function cardBalance(db: Queryable, cardId: string): Promise<Micros | undefined> {
  if (!isCardId(cardId)) return undefined;
  const r = await db.query<{ balance_micros: bigint }>('SELECT balance_micros FROM cards WHERE id = $1', [cardId]);
  return r.rows[0]?.balance_micros;
}

/** What the live store caches for a card: spendable = balance + credit limit, at balance_version. */
export async function readSnapshot(db: Queryable, cardId: string): Promise<{ spendable: Micros; version: bigint; balance: Micros } | undefined> {
  if (!isCardId(cardId)) return undefined;
  const r = await db.query<{ balance_micros: bigint; credit_limit_micros: bigint; balance_version: bigint }>(
    'SELECT balance_micros, credit_limit_micros, balance_version FROM cards WHERE id = $1',
    [cardId],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return { spendable: row.balance_micros + row.credit_limit_micros, version: row.balance_version, balance: row.balance_micros };
}
