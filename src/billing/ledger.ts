import type { PoolClient } from 'pg';
import type { Micros } from '../money/money.ts';

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

/**
 * The only way a card's balance changes. Must run inside the caller's transaction: locks the card row, applies
 * the change once per (card, reason, ref), bumps balance_version and writes the ledger row with the balance after.
 * So the balance always equals the sum of its ledger, and a retried change is a no-op.
 */
export async function applyBalanceChange(client: PoolClient, change: BalanceChange): Promise<BalanceChangeResult> {
  const card = await client.query<{ balance_micros: bigint; credit_limit_micros: bigint; balance_version: bigint }>(
    'SELECT balance_micros, credit_limit_micros, balance_version FROM cards WHERE id = $1 FOR UPDATE',
    [change.cardId],
  );
  if (card.rowCount === 0) return { applied: false, reason: 'no_card', balanceAfter: 0n, version: 0n, creditLimit: 0n };
  const { balance_micros: balance, credit_limit_micros: creditLimit, balance_version: version } = card.rows[0]!;

  const dup = await client.query(
    'SELECT 1 FROM ledger WHERE card_id = $1 AND reason = $2 AND ref = $3',
    [change.cardId, change.reason, change.ref],
  );
  if (dup.rowCount) return { applied: false, reason: 'duplicate', balanceAfter: balance, version, creditLimit };

  let amount = change.amount;
  let uncollected = 0n;
  const floor = -creditLimit;
  if (amount < 0n && balance + amount < floor) {
    if (change.onFloor === 'reject') return { applied: false, reason: 'below_floor', balanceAfter: balance, version, creditLimit };
    const clamped = balance > floor ? floor - balance : 0n;
    uncollected = clamped - amount;
    amount = clamped;
  }
  const after = balance + amount;
  const updated = await client.query<{ balance_version: bigint }>(
    `UPDATE cards SET balance_micros = $2, balance_version = balance_version + 1 WHERE id = $1 RETURNING balance_version`,
    [change.cardId, after.toString()],
  );
  await client.query(
    `INSERT INTO ledger (card_id, amount_micros, balance_after_micros, reason, ref, note) VALUES ($1, $2, $3, $4, $5, $6)`,
    [change.cardId, amount.toString(), after.toString(), change.reason, change.ref, change.note ?? ''],
  );
  return { applied: true, amount, uncollected, balanceAfter: after, version: updated.rows[0]!.balance_version, creditLimit };
}
