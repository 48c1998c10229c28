import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { withTransaction } from '../db.ts';
import { hashPin } from '../pin.ts';
import type { AdminContext } from './context.ts';
import { AdminError } from './errors.ts';
import { parseInput, serialInput } from './input.ts';

export interface LockoutPolicy {
  /** Wrong PINs within `windowSeconds` that lock the card's self-care login. */
  maxFailures: number;
  windowSeconds: number;
  lockSeconds: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { maxFailures: 5, windowSeconds: 600, lockSeconds: 900 };

export const selfcareLoginSchema = z.object({
  serial: serialInput,
  pin: z.string().trim().regex(/^\d{4,20}$/, 'must be 4 to 20 digits'),
});

const BAD_CREDENTIALS = 'invalid serial or PIN';

type Outcome = { ok: true; cardId: string; serial: string } | { ok: false; error: AdminError };

/**
 * Checks a cardholder's serial and PIN. Attempts on one card are serialised on its lockout row, so no burst of
 * parallel guesses gets past the limit; a failure is committed even though the login is refused. Only a card whose
 * series has self-care enabled may log in (checked after the PIN, so the answer reveals nothing without it).
 */
export async function selfcareLogin(
  ctx: AdminContext,
  raw: { serial?: unknown; pin?: unknown },
  policy: LockoutPolicy = DEFAULT_LOCKOUT,
): Promise<{ cardId: string; serial: string }> {
  const input = parseInput(selfcareLoginSchema, raw);
  const outcome = await withTransaction(ctx.pool, async (c): Promise<Outcome> => {
    const card = await c.query<{ id: bigint; pin_hash: Buffer; selfcare: boolean; series_status: string }>(
      `SELECT c.id, c.pin_hash, s.selfcare, s.status AS series_status FROM cards c JOIN series s ON s.id = c.series_id
       WHERE c.serial = $1`,
      [input.serial],
    );
    if (!card.rowCount) return { ok: false, error: new AdminError('UNAUTHORIZED', BAD_CREDENTIALS) };
    const { id, pin_hash: pinHash, selfcare, series_status: seriesStatus } = card.rows[0]!;
    await c.query('INSERT INTO selfcare_lockouts (card_id) VALUES ($1) ON CONFLICT DO NOTHING', [id]);
    const lock = await c.query<{ failures: number; window_expired: boolean; locked_for: number | null }>(
      `SELECT failures, window_started_at + make_interval(secs => $2) <= now() AS window_expired,
         CASE WHEN locked_until > now() THEN ceil(extract(epoch FROM locked_until - now()))::int END AS locked_for
       FROM selfcare_lockouts WHERE card_id = $1 FOR UPDATE`,
      [id, policy.windowSeconds],
    );
    const l = lock.rows[0]!;
    if (l.locked_for !== null) {
      const minutes = Math.ceil(l.locked_for / 60);
      return { ok: false, error: new AdminError('LOCKED', `too many failed logins: try again in ${minutes} minute${minutes === 1 ? '' : 's'}`) };
    }
    const given = hashPin(ctx.pinKeys, input.pin);
    if (given.length !== pinHash.length || !timingSafeEqual(given, pinHash)) {
      const failures = (l.window_expired ? 0 : l.failures) + 1;
      if (failures >= policy.maxFailures) {
        await c.query(
          `UPDATE selfcare_lockouts SET failures = 0, window_started_at = now(),
             locked_until = now() + make_interval(secs => $2) WHERE card_id = $1`,
          [id, policy.lockSeconds],
        );
      } else {
        await c.query(
          `UPDATE selfcare_lockouts SET failures = $2,
             window_started_at = CASE WHEN $3 THEN now() ELSE window_started_at END WHERE card_id = $1`,
          [id, failures, l.window_expired],
        );
      }
      return { ok: false, error: new AdminError('UNAUTHORIZED', BAD_CREDENTIALS) };
    }
    await c.query('UPDATE selfcare_lockouts SET failures = 0, locked_until = NULL WHERE card_id = $1', [id]);
    if (!selfcare) return { ok: false, error: new AdminError('FORBIDDEN', 'self-care is not enabled for this card') };
    if (seriesStatus === 'deleted') return { ok: false, error: new AdminError('FORBIDDEN', 'this card is no longer in service') };
    return { ok: true, cardId: id.toString(), serial: input.serial };
  });
  if (!outcome.ok) throw outcome.error;
  return { cardId: outcome.cardId, serial: outcome.serial };
}
