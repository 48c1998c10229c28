import { z } from 'zod';
import type { PoolClient } from 'pg';
import { withTransaction } from '../db.ts';
import type { Micros } from '../../money/money.ts';
import type { AdminContext } from './context.ts';
import { conflict, invalid, notFound, pgCode } from './errors.ts';
import { nonNegativeMoney, nonZeroMoney, parseInput } from './input.ts';
import { percentInput } from './tax.ts';
import { amountJson, formatAmount } from './format.ts';
import { resellerScope } from './scope.ts';

const nameInput = z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . -');

export const resellerAddSchema = z.object({
  name: nameInput,
  currency: z.string().trim().regex(/^[A-Za-z]{3}$/, 'must be a 3-letter ISO code').transform((s) => s.toUpperCase()).default('USD'),
  creditLimit: nonNegativeMoney.default(0n),
  /** Percent off face value the reseller pays for its cards' value (e.g. "20"). */
  discount: percentInput.default(0),
});
export type ResellerAddInput = z.input<typeof resellerAddSchema>;

export interface Reseller {
  id: string;
  name: string;
  currency: string;
  balance: Micros;
  creditLimit: Micros;
  discountPpm: number;
  series: string[];
}

export const resellerJson = (r: Reseller) => ({
  name: r.name,
  currency: r.currency,
  balance: amountJson(r.balance),
  creditLimit: amountJson(r.creditLimit),
  discountPercent: (r.discountPpm / 10_000).toString(),
  series: r.series,
});

const SELECT = `SELECT r.id::text AS id, r.name, r.currency, r.balance_micros, r.credit_limit_micros, r.discount_ppm,
  ARRAY(SELECT s.series_number FROM series s WHERE s.reseller_id = r.id ORDER BY s.series_number) AS series
  FROM resellers r`;
type Row = { id: string; name: string; currency: string; balance_micros: bigint; credit_limit_micros: bigint; discount_ppm: number; series: string[] };
const fromRow = (r: Row): Reseller => ({
  id: r.id,
  name: r.name,
  currency: r.currency.trim(),
  balance: r.balance_micros,
  creditLimit: r.credit_limit_micros,
  discountPpm: r.discount_ppm,
  series: r.series,
});

export async function addReseller(ctx: AdminContext, raw: ResellerAddInput): Promise<Reseller> {
  const i = parseInput(resellerAddSchema, raw);
  try {
    await ctx.pool.query('INSERT INTO resellers (name, currency, credit_limit_micros, discount_ppm) VALUES ($1, $2, $3, $4)', [
      i.name,
      i.currency,
      i.creditLimit.toString(),
      i.discount,
    ]);
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`reseller "${i.name}" already exists`);
    throw err;
  }
  return getReseller(ctx, i.name);
}

export async function listResellers(ctx: AdminContext): Promise<Reseller[]> {
  const r = await ctx.pool.query<Row>(`${SELECT} ORDER BY r.name`);
  return r.rows.map(fromRow);
}

export async function getReseller(ctx: AdminContext, name: string): Promise<Reseller> {
  const n = parseInput(z.string().trim().min(1).max(64), name, 'name');
  const r = await ctx.pool.query<Row>(`${SELECT} WHERE r.name = $1`, [n]);
  if (!r.rows[0]) throw notFound(`unknown reseller "${n}"`);
  return fromRow(r.rows[0]);
}

export async function getResellerById(ctx: AdminContext, id: string): Promise<Reseller> {
  const r = await ctx.pool.query<Row>(`${SELECT} WHERE r.id = $1`, [id]);
  if (!r.rows[0]) throw notFound('unknown reseller');
  return fromRow(r.rows[0]);
}

export async function resellerIdByName(db: Pick<PoolClient, 'query'>, name: string): Promise<string> {
  const r = await db.query<{ id: string }>('SELECT id::text AS id FROM resellers WHERE name = $1', [name]);
  if (!r.rows[0]) throw notFound(`unknown reseller "${name}"`);
  return r.rows[0].id;
}

export type WholesaleReason = 'topup' | 'generation' | 'card_topup' | 'adjustment';

/**
 * Changes a reseller's wholesale balance inside the caller's transaction, atomically: one UPDATE that refuses to go
 * below -credit_limit (the row lock serialises concurrent draws, the CHECK is the last guard), plus its ledger row.
 * The lock is FOR NO KEY UPDATE: it does not conflict with the KEY SHARE locks that foreign-key checks of series
 * and ledger rows take on the reseller, so two generations cannot deadlock on them.
 * A draw of face value is charged at the reseller's discount (wholesale). Refused: INVALID_INPUT naming what is left.
 */
export async function changeWholesale(
  client: Pick<PoolClient, 'query'>,
  resellerId: string,
  face: Micros,
  reason: WholesaleReason,
  ref: string,
  note = '',
): Promise<{ amount: Micros; balanceAfter: Micros }> {
  const r = await client.query<{ amount: string; balance_micros: bigint; ok: boolean; credit_limit_micros: bigint; old: bigint }>(
    `WITH cur AS (SELECT id, balance_micros, credit_limit_micros, discount_ppm FROM resellers WHERE id = $1 FOR NO KEY UPDATE),
          calc AS (SELECT cur.*, CASE WHEN $3 IN ('generation', 'card_topup')
                                      THEN -(($2::bigint * (1000000 - cur.discount_ppm) + 999999) / 1000000)
                                      ELSE $2::bigint END AS amount FROM cur),
          upd AS (UPDATE resellers r SET balance_micros = r.balance_micros + calc.amount FROM calc
                   WHERE r.id = calc.id AND r.balance_micros + calc.amount >= -r.credit_limit_micros RETURNING r.balance_micros)
     SELECT calc.amount::text AS amount, calc.balance_micros AS old, calc.credit_limit_micros,
            COALESCE((SELECT balance_micros FROM upd), calc.balance_micros) AS balance_micros, EXISTS (SELECT 1 FROM upd) AS ok
       FROM calc`,
    [resellerId, face.toString(), reason],
  );
  const row = r.rows[0];
  if (!row) throw notFound('unknown reseller');
  const amount = BigInt(row.amount);
  if (!row.ok) {
    throw invalid(
      `the reseller's wholesale balance does not cover ${formatAmount(-amount)} (balance ${formatAmount(row.old)}, credit limit ${formatAmount(row.credit_limit_micros)})`,
    );
  }
  try {
    await client.query(
      'INSERT INTO reseller_ledger (reseller_id, amount_micros, balance_after_micros, reason, ref, note) VALUES ($1, $2, $3, $4, $5, $6)',
      [resellerId, amount.toString(), row.balance_micros.toString(), reason, ref, note],
    );
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`wholesale ${reason} ${ref} was already applied`);
    throw err;
  }
  return { amount, balanceAfter: row.balance_micros };
}

export const resellerTopupSchema = z.object({ amount: nonZeroMoney, ref: z.string().trim().min(1).max(200).optional(), note: z.string().max(500).default('') });

/** Credits (or, negative, debits) a reseller's wholesale balance: what the reseller paid the operator. */
export async function topUpReseller(ctx: AdminContext, name: string, raw: z.input<typeof resellerTopupSchema>): Promise<Reseller> {
  const i = parseInput(resellerTopupSchema, raw);
  await withTransaction(ctx.pool, async (c) => {
    const id = await resellerIdByName(c, name.trim());
    await changeWholesale(c, id, i.amount, i.amount > 0n ? 'topup' : 'adjustment', i.ref ?? `topup:${Date.now()}:${Math.random().toString(36).slice(2)}`, i.note);
  });
  return getReseller(ctx, name);
}

export async function resellerLedger(ctx: AdminContext, name: string, limit = 50) {
  const r = await getReseller(ctx, name);
  const rows = await ctx.pool.query<{ amount_micros: bigint; balance_after_micros: bigint; reason: string; ref: string; note: string; created_at: Date }>(
    'SELECT amount_micros, balance_after_micros, reason, ref, note, created_at FROM reseller_ledger WHERE reseller_id = $1 ORDER BY id DESC LIMIT $2',
    [r.id, limit],
  );
  return rows.rows.map((x) => ({
    amount: x.amount_micros,
    balanceAfter: x.balance_after_micros,
    reason: x.reason,
    ref: x.ref,
    note: x.note,
    createdAt: x.created_at,
  }));
}

export interface ResellerReport {
  reseller: string;
  currency: string;
  cards: number;
  /** Cards used at least once (activated): sold to an end user. */
  cardsSold: number;
  calls: number;
  billedSeconds: number;
  /** What the reseller's cards were charged for calls (end-user revenue). */
  revenue: Micros;
  /** Face value of the cards' balances and top-ups, and what the reseller paid for it (wholesale). */
  faceValue: Micros;
  wholesale: Micros;
  balance: Micros;
  /** What the reseller owes the operator: the wholesale balance below zero (used credit). */
  owed: Micros;
}

/** Per reseller (or one, or the scope's own): cards sold, usage, revenue, wholesale paid and owed. */
export async function resellerReport(ctx: AdminContext, name?: string): Promise<ResellerReport[]> {
  const scope = resellerScope();
  const r = await ctx.pool.query<{
    name: string; currency: string; cards: bigint; sold: bigint; calls: bigint; secs: bigint; revenue: bigint;
    wholesale: bigint; balance: bigint;
  }>(
    `SELECT r.name, r.currency, r.balance_micros AS balance,
       (SELECT count(*) FROM cards c JOIN series s ON s.id = c.series_id WHERE s.reseller_id = r.id)::bigint AS cards,
       (SELECT count(*) FROM cards c JOIN series s ON s.id = c.series_id WHERE s.reseller_id = r.id AND c.activated_at IS NOT NULL)::bigint AS sold,
       (SELECT count(*) FROM cdrs d JOIN cards c ON c.id = d.card_id JOIN series s ON s.id = c.series_id WHERE s.reseller_id = r.id)::bigint AS calls,
       (SELECT COALESCE(sum(d.billed_seconds), 0) FROM cdrs d JOIN cards c ON c.id = d.card_id JOIN series s ON s.id = c.series_id WHERE s.reseller_id = r.id)::bigint AS secs,
       (SELECT COALESCE(sum(d.cost_micros), 0) FROM cdrs d JOIN cards c ON c.id = d.card_id JOIN series s ON s.id = c.series_id WHERE s.reseller_id = r.id)::bigint AS revenue,
       (SELECT COALESCE(-sum(l.amount_micros), 0) FROM reseller_ledger l WHERE l.reseller_id = r.id AND l.reason IN ('generation', 'card_topup'))::bigint AS wholesale
     FROM resellers r
     WHERE ($1::text IS NULL OR r.name = $1) AND ($2::bigint IS NULL OR r.id = $2)
     ORDER BY r.name`,
    [name ?? null, scope],
  );
  if (name && !r.rowCount) throw notFound(`unknown reseller "${name}"`);
  const face = await ctx.pool.query<{ name: string; face: bigint }>(
    `SELECT r.name, COALESCE(sum(g.face), 0)::bigint AS face FROM resellers r LEFT JOIN (
        SELECT s.reseller_id, s.initial_balance_micros * s.card_count AS face FROM series s
        UNION ALL
        SELECT s.reseller_id, l.amount_micros FROM ledger l JOIN cards c ON c.id = l.card_id JOIN series s ON s.id = c.series_id
         WHERE l.reason = 'topup' AND l.amount_micros > 0) g ON g.reseller_id = r.id
      GROUP BY r.name`,
  );
  const faceOf = new Map(face.rows.map((x) => [x.name, x.face]));
  return r.rows.map((x) => ({
    reseller: x.name,
    currency: x.currency.trim(),
    cards: Number(x.cards),
    cardsSold: Number(x.sold),
    calls: Number(x.calls),
    billedSeconds: Number(x.secs),
    revenue: x.revenue,
    faceValue: faceOf.get(x.name) ?? 0n,
    wholesale: x.wholesale,
    balance: x.balance,
    owed: x.balance < 0n ? -x.balance : 0n,
  }));
}

export const resellerReportJson = (r: ResellerReport) => ({
  ...r,
  revenue: amountJson(r.revenue),
  faceValue: amountJson(r.faceValue),
  wholesale: amountJson(r.wholesale),
  balance: amountJson(r.balance),
  owed: amountJson(r.owed),
});
