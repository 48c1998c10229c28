import type { Pool } from 'pg';
import { withTransaction } from '../store/db.ts';
import { getCard, readSnapshot, type CardRecord, type CardStatus } from '../store/cards.ts';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { Micros } from '../money/money.ts';
import { applyBalanceChange } from './ledger.ts';

export type AuthorizeOutcome =
  | { ok: true; card: CardRecord; activated: boolean }
  | { ok: false; reason: 'unknown' | 'disabled' | 'expired' | 'no_balance' };

/** Past the card's own expiry or its series' expiry date. */
export function isPastExpiry(card: Pick<CardRecord, 'expiresAt' | 'seriesExpiryDate'>, now: Date): boolean {
  const t = now.getTime();
  return (card.expiresAt !== null && card.expiresAt.getTime() <= t) || (card.seriesExpiryDate !== null && card.seriesExpiryDate.getTime() <= t);
}

/**
 * Decides whether a card may be used now. In order: unknown; disabled (or its series stopped/deleted);
 * expired (by status, by its expires_at or by the series' expiry_date, marking it expired); a pending card is
 * activated exactly once (a conditional UPDATE ... WHERE status = 'pending': concurrent callers serialise on the
 * row and only one sees it pending) and its series' activation fee is charged in the same transaction;
 * finally a card with nothing to spend (balance + credit limit <= 0) is 'no_balance'.
 */
export async function authorizeCard(pool: Pool, cardOrId: string | CardRecord, now: Date = new Date()): Promise<AuthorizeOutcome> {
  // A record the caller just read (e.g. by PIN) saves the read.
  const cardId = typeof cardOrId === 'string' ? cardOrId : cardOrId.id;
  let card = typeof cardOrId === 'string' ? await getCard(pool, cardOrId) : cardOrId;
  if (!card) return { ok: false, reason: 'unknown' };
  if (card.seriesStatus !== 'active') return { ok: false, reason: 'disabled' };
  const refused = statusRefusal(card.status);
  if (refused) return { ok: false, reason: refused };
  if (isPastExpiry(card, now)) {
    await pool.query(`UPDATE cards SET status = 'expired' WHERE id = $1 AND status IN ('pending', 'active')`, [card.id]);
    return { ok: false, reason: 'expired' };
  }
  let activated = false;
  if (card.status === 'pending') {
    activated = await activate(pool, card.id, now);
    card = await getCard(pool, cardId);
    if (!card) return { ok: false, reason: 'unknown' };
    if (card.status !== 'active') return { ok: false, reason: card.status === 'expired' ? 'expired' : 'disabled' };
  }
  if (card.balance + card.creditLimit <= 0n) return { ok: false, reason: 'no_balance' };
  return { ok: true, card, activated };
}

/**
 * Why a card in this status may not call, or undefined when it may (a pending card is activated first). Exhaustive:
 * a status added to CARD_STATUSES without a decision here does not compile, and a status this code has never heard
 * of (a row written by newer code, a hand-made record) is refused, never let through.
 */
export function statusRefusal(status: CardStatus): 'disabled' | 'expired' | undefined {
  switch (status) {
    case 'pending':
    case 'active':
      return undefined;
    case 'disabled':
      return 'disabled';
    case 'expired':
      return 'expired';
    default: {
      const unknown: never = status;
      void unknown;
      return 'disabled';
    }
  }
}

/**
 * Why a card may not reserve a call now, as its caller hears it; undefined for an active card. A card that is
 * pending again (an operator put it back) is refused like a disabled one: it must be authorized first.
 */
export function reserveRefusal(card: Pick<CardRecord, 'status'> | undefined): 'card_unknown' | 'card_disabled' | 'card_expired' | undefined {
  if (!card) return 'card_unknown';
  if (card.status === 'active') return undefined;
  return statusRefusal(card.status) === 'expired' ? 'card_expired' : 'card_disabled';
}

/** Activates a pending card once; true when this call did it. */
async function activate(pool: Pool, cardId: string, now: Date): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    const r = await client.query<{ activation_fee_micros: bigint }>(
      `UPDATE cards c
          SET status = 'active', activated_at = $2,
              expires_at = LEAST(c.expires_at, $2::timestamptz + make_interval(days => s.expiry_days), s.expiry_date)
         FROM series s
        WHERE c.id = $1 AND s.id = c.series_id AND c.status = 'pending'
      RETURNING s.activation_fee_micros`,
      [cardId, now],
    );
    const row = r.rows[0];
    if (!row) return false;
    if (row.activation_fee_micros > 0n) {
      // Never below the floor: a card holding less than the fee pays what it has.
      await applyBalanceChange(client, {
        cardId,
        amount: -row.activation_fee_micros,
        reason: 'activation_fee',
        ref: 'activation',
        onFloor: 'clamp',
      });
    }
    return true;
  });
}

/** Marks every pending/active card past its (or its series') expiry as expired. Returns their ids. */
export async function expireCards(pool: Pool, now: Date = new Date()): Promise<string[]> {
  const r = await pool.query<{ id: string }>(
    `UPDATE cards c SET status = 'expired'
       FROM series s
      WHERE s.id = c.series_id AND c.status IN ('pending', 'active')
        AND (c.expires_at <= $1 OR s.expiry_date <= $1)
    RETURNING c.id::text AS id`,
    [now],
  );
  return r.rows.map((x) => x.id);
}

export interface MaintenanceSummary {
  cards: number;
  /** Ledger rows written. */
  charges: number;
  /** Periods skipped because the card had nothing left. */
  waived: number;
  total: Micros;
}

const HOUR_MS = 3_600_000;

/**
 * Charges the series' maintenance fee once per whole period elapsed since activation, catching up every period
 * missed while no scheduler ran. Idempotent and safe with several schedulers at once: the card row is locked,
 * cards.maintenance_charged_periods says how far it got, and each charge has ledger ref 'period:<n>' (the
 * UNIQUE(card, reason, ref) makes a replay a no-op).
 *
 * Decision: a fee never takes the balance below zero and never uses the credit limit. A card holding less than
 * the fee pays what it has; a period that finds the balance at zero (or below) is waived, not accrued, so a
 * later top-up is not swallowed by back fees. The new snapshot is pushed to the live store (versioned load).
 */
export async function chargeMaintenance(pool: Pool, now: Date = new Date(), live?: LiveBalanceStore): Promise<MaintenanceSummary> {
  const due = await pool.query<{ id: string }>(
    `SELECT c.id::text AS id
       FROM cards c JOIN series s ON s.id = c.series_id
      WHERE c.status = 'active' AND c.activated_at IS NOT NULL
        AND s.maintenance_fee_micros > 0 AND s.maintenance_period_hours IS NOT NULL
        AND c.activated_at <= $1
        AND floor(extract(epoch FROM ($1::timestamptz - c.activated_at)) / (s.maintenance_period_hours * 3600))
            > c.maintenance_charged_periods
      ORDER BY c.id`,
    [now],
  );
  const summary: MaintenanceSummary = { cards: 0, charges: 0, waived: 0, total: 0n };
  for (const { id } of due.rows) {
    const changed = await withTransaction(pool, async (client) => {
      const r = await client.query<{
        balance_micros: bigint;
        activated_at: Date;
        maintenance_charged_periods: number;
        maintenance_fee_micros: bigint;
        maintenance_period_hours: number;
        status: string;
      }>(
        `SELECT c.balance_micros, c.activated_at, c.maintenance_charged_periods, c.status,
                s.maintenance_fee_micros, s.maintenance_period_hours
           FROM cards c JOIN series s ON s.id = c.series_id
          WHERE c.id = $1 FOR UPDATE OF c`,
        [id],
      );
      const row = r.rows[0];
      if (!row || row.status !== 'active') return false;
      const periods = Math.floor((now.getTime() - row.activated_at.getTime()) / (row.maintenance_period_hours * HOUR_MS));
      if (periods <= row.maintenance_charged_periods) return false;
      let balance = row.balance_micros;
      for (let n = row.maintenance_charged_periods + 1; n <= periods; n++) {
        const fee = balance <= 0n ? 0n : balance < row.maintenance_fee_micros ? balance : row.maintenance_fee_micros;
        if (fee === 0n) {
          summary.waived++;
          continue;
        }
        const res = await applyBalanceChange(client, {
          cardId: id,
          amount: -fee,
          reason: 'maintenance_fee',
          ref: `period:${n}`,
          note: `maintenance period ${n}`,
          onFloor: 'reject',
        });
        balance = res.balanceAfter;
        if (res.applied) {
          summary.charges++;
          summary.total += -res.amount;
        }
      }
      await client.query('UPDATE cards SET maintenance_charged_periods = $2 WHERE id = $1', [id, periods]);
      return true;
    });
    if (!changed) continue;
    summary.cards++;
    if (live) {
      const snap = await readSnapshot(pool, id);
      if (snap) await live.load(id, { spendable: snap.spendable, version: snap.version });
    }
  }
  return summary;
}
