import type { PoolClient } from 'pg';
import type { Micros } from '../money/money.ts';
import { statementName } from '../store/db.ts';

export type LedgerReason = 'initial' | 'activation_fee' | 'call' | 'maintenance_fee' | 'topup' | 'adjustment';

export interface BalanceChange {
  cardId: string;
  /** Signed: negative debits, positive credits. */
  amount: Micros;
  reason: LedgerReason;
  /** Idempotency reference: the same (card, reason, ref) is applied at most once. */
  ref: string;
  note?: string;
  /**
   * What to do when a debit would take the balance below -credit_limit:
   * 'clamp' charges only down to the floor (the rest is reported as `uncollected`), 'reject' changes nothing.
   */
  onFloor: 'clamp' | 'reject';
}

export type BalanceChangeResult =
  | { applied: true; amount: Micros; uncollected: Micros; balanceAfter: Micros; version: bigint; creditLimit: Micros }
  | { applied: false; reason: 'duplicate' | 'below_floor' | 'no_card'; balanceAfter: Micros; version: bigint; creditLimit: Micros };

/*
 * Two statements inside the caller's transaction (were four):
 * 1. SELECT ... FOR UPDATE locks the card row (as before).
 * 2. One statement that, with a snapshot taken AFTER the lock (so it sees the newest row and every change
 *    committed before it: the duplicate check is exact and the UPDATE needs no EvalPlanQual), computes the amount
 *    (clamped at -credit_limit, or refused with 'reject'), inserts the ledger row and updates balance + version.
 * Why not one statement: a lock that waits leaves the statement's snapshot older than the row it locked, and the
 * UPDATE in the same statement then goes back to the stale version (EvalPlanQual), taking its tuple lock while
 * holding the newer row - a deadlock against a FOR UPDATE waiter holding that tuple lock (see DEBIT_SQL in
 * src/store/calls.ts, which avoids it by making its UPDATE the only lock).
 *   calc - the amount; `below` when the unclamped debit would cross the floor; `dup` when (card, reason, ref)
 *          is already applied.
 *   ins  - the ledger row, unless a duplicate or refused; ON CONFLICT DO NOTHING as a second guard.
 *   upd  - balance and version, only when the ledger row went in.
 */
const APPLY_SQL = `
WITH card AS (
  SELECT id, balance_micros, credit_limit_micros, balance_version FROM cards WHERE id = $1::bigint FOR UPDATE
), calc AS (
  SELECT card.*,
         EXISTS (SELECT 1 FROM ledger WHERE card_id = $1::bigint AND reason = $3::text AND ref = $4::text) AS dup,
         ($2::bigint < 0 AND card.balance_micros + $2::bigint < -card.credit_limit_micros) AS below,
         CASE WHEN $2::bigint < 0 AND card.balance_micros + $2::bigint < -card.credit_limit_micros
              THEN CASE WHEN card.balance_micros > -card.credit_limit_micros THEN -card.credit_limit_micros - card.balance_micros ELSE 0 END
              ELSE $2::bigint END AS amount
    FROM card
), ins AS (
  INSERT INTO ledger (card_id, amount_micros, balance_after_micros, reason, ref, note)
  SELECT calc.id, calc.amount, calc.balance_micros + calc.amount, $3::text, $4::text, $5::text
    FROM calc
   WHERE NOT calc.dup AND NOT (calc.below AND $6::boolean)
  ON CONFLICT (card_id, reason, ref) DO NOTHING
  RETURNING card_id, balance_after_micros
), upd AS (
  UPDATE cards c SET balance_micros = ins.balance_after_micros, balance_version = c.balance_version + 1
    FROM ins WHERE c.id = ins.card_id
  RETURNING c.balance_micros, c.balance_version
)
SELECT calc.balance_micros, calc.credit_limit_micros, calc.balance_version, calc.dup, calc.below, calc.amount,
       (SELECT balance_micros FROM upd) AS after_micros, (SELECT balance_version FROM upd) AS after_version
  FROM calc`;

interface ApplyRow {
  balance_micros: bigint;
  credit_limit_micros: bigint;
  balance_version: bigint;
  dup: boolean;
  below: boolean;
  amount: bigint;
  after_micros: bigint | null;
  after_version: bigint | null;
}

/**
 * The only way a card's balance changes. Must run inside the caller's transaction: locks the card row, applies
 * the change once per (card, reason, ref), bumps balance_version and writes the ledger row with the balance after.
 * So the balance always equals the sum of its ledger, and a retried change is a no-op.
 */
export async function applyBalanceChange(client: PoolClient, change: BalanceChange): Promise<BalanceChangeResult> {
  const lock = await client.query('SELECT 1 FROM cards WHERE id = $1 FOR UPDATE', [change.cardId]);
  if (lock.rowCount === 0) return { applied: false, reason: 'no_card', balanceAfter: 0n, version: 0n, creditLimit: 0n };
  const r = await client.query<ApplyRow>({
    name: statementName('ccard_apply_balance_change'),
    text: APPLY_SQL,
    values: [change.cardId, change.amount.toString(), change.reason, change.ref, change.note ?? '', change.onFloor === 'reject'],
  });
  const row = r.rows[0]!;
  const { balance_micros: balance, credit_limit_micros: creditLimit, balance_version: version } = row;
  if (row.after_micros !== null && row.after_version !== null) {
    return { applied: true, amount: row.amount, uncollected: row.amount - change.amount, balanceAfter: row.after_micros, version: row.after_version, creditLimit };
  }
  // Not applied: a duplicate (checked first, as before), else refused at the floor.
  const reason = !row.dup && row.below && change.onFloor === 'reject' ? 'below_floor' : 'duplicate';
  return { applied: false, reason, balanceAfter: balance, version, creditLimit };
}
