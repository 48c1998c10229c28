import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { PoolClient } from 'pg';
import { z } from 'zod';
import { withTransaction } from '../db.ts';
import { hashPin } from '../pin.ts';
import type { AdminContext } from './context.ts';
import { AdminError } from './errors.ts';
import { parseInput, serialInput } from './input.ts';

export interface LockoutPolicy {
  /** Failed logins on one serial within `windowSeconds` that lock that serial's self-care login. */
  maxFailures: number;
  windowSeconds: number;
  lockSeconds: number;
  /**
   * Failed logins from one client address (an IPv6 /64) within `windowSeconds` before that address is refused for
   * `lockSeconds`, before its attempts can count against any serial (default 10).
   */
  ipMaxFailures?: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { maxFailures: 5, windowSeconds: 600, lockSeconds: 900, ipMaxFailures: 10 };

export const selfcareLoginSchema = z.object({
  serial: serialInput,
  pin: z.string().trim().regex(/^\d{4,20}$/, 'must be 4 to 20 digits'),
});

const BAD_CREDENTIALS = 'invalid serial or PIN';
// Compared against when the serial is unknown, so that a wrong serial costs the same work as a wrong PIN.
const DUMMY_HASH = randomBytes(32);

type Outcome = { ok: true; cardId: string; serial: string } | { ok: false; error: AdminError };

/** The address a failure counts against: an IPv4 address, or the /64 of an IPv6 one (one subscriber's block). */
export function clientSubject(ip: string | undefined): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip ?? '')?.[1];
  if (v4) return `ip:${v4}`;
  if (ip && isIPv6(ip)) {
    const [head = '', tail = ''] = ip.toLowerCase().split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    return `ip:${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
  }
  return `ip:${ip ?? 'unknown'}`;
}

/** Locks (FOR UPDATE) and reads one subject's counter; the minutes left when it is locked. */
export async function readCounter(c: PoolClient, subject: string, windowSeconds: number) {
  await c.query('INSERT INTO selfcare_login_failures (subject) VALUES ($1) ON CONFLICT DO NOTHING', [subject]);
  const r = await c.query<{ failures: number; window_expired: boolean; locked_for: number | null }>(
    `SELECT failures, window_started_at + make_interval(secs => $2) <= now() AS window_expired,
       CASE WHEN locked_until > now() THEN ceil(extract(epoch FROM locked_until - now()))::int END AS locked_for
     FROM selfcare_login_failures WHERE subject = $1 FOR UPDATE`,
    [subject, windowSeconds],
  );
  return r.rows[0]!;
}

export async function countFailure(c: PoolClient, subject: string, row: { failures: number; window_expired: boolean }, max: number, lockSeconds: number) {
  const failures = (row.window_expired ? 0 : row.failures) + 1;
  if (failures >= max) {
    await c.query(
      `UPDATE selfcare_login_failures SET failures = 0, window_started_at = now(),
         locked_until = now() + make_interval(secs => $2) WHERE subject = $1`,
      [subject, lockSeconds],
    );
  } else {
    await c.query(
      `UPDATE selfcare_login_failures SET failures = $2,
         window_started_at = CASE WHEN $3 THEN now() ELSE window_started_at END WHERE subject = $1`,
      [subject, failures, row.window_expired],
    );
  }
}

/** The failure counter of one card's self-care: wrong PINs at login and wrong vouchers once logged in. */
export const serialFailureSubject = (serial: string) => `serial:${serial}`;

export const locked = (seconds: number, what: string, tries = 'logins') => {
  const minutes = Math.ceil(seconds / 60);
  return new AdminError('LOCKED', `too many failed ${tries}${what}: try again in ${minutes} minute${minutes === 1 ? '' : 's'}`);
};

/**
 * Checks a cardholder's serial and PIN. In order: the client address's failures (an address over its limit is
 * refused before anything else, so it cannot go on locking serials), the serial's failures (kept for unknown
 * serials too), then the PIN. Every refusal other than a lock is the same 401 "invalid serial or PIN", after the
 * same work: an unknown serial, a wrong PIN, and a right PIN on a card that may not log in (self-care off, card
 * disabled, series deleted) cannot be told apart, and each counts as a failure. Attempts on one subject are
 * serialised on its row; failures are committed although the login is refused.
 */
export async function selfcareLogin(
  ctx: AdminContext,
  raw: { serial?: unknown; pin?: unknown },
  policy: LockoutPolicy = DEFAULT_LOCKOUT,
  clientIp?: string,
): Promise<{ cardId: string; serial: string }> {
  const input = parseInput(selfcareLoginSchema, raw);
  const given = hashPin(ctx.pinKeys, input.pin);
  const ipSubject = clientSubject(clientIp);
  const outcome = await withTransaction(ctx.pool, async (c): Promise<Outcome> => {
    const ip = await readCounter(c, ipSubject, policy.windowSeconds);
    if (ip.locked_for !== null) return { ok: false, error: locked(ip.locked_for, ' from this address') };
    const serialSubject = serialFailureSubject(input.serial);
    const serial = await readCounter(c, serialSubject, policy.windowSeconds);
    if (serial.locked_for !== null) return { ok: false, error: locked(serial.locked_for, '') };

    const card = await c.query<{ id: bigint; pin_hash: Buffer; status: string; selfcare: boolean; series_status: string }>(
      `SELECT c.id, c.pin_hash, c.status, s.selfcare, s.status AS series_status FROM cards c JOIN series s ON s.id = c.series_id
       WHERE c.serial = $1`,
      [input.serial],
    );
    const row = card.rows[0];
    const expected = row?.pin_hash.length === given.length ? row.pin_hash : DUMMY_HASH;
    const pinRight = timingSafeEqual(given, expected) && row !== undefined;
    const mayLogIn = row !== undefined && row.selfcare && row.series_status !== 'deleted' && row.status !== 'disabled';
    if (!pinRight || !mayLogIn) {
      await countFailure(c, ipSubject, ip, policy.ipMaxFailures ?? 10, policy.lockSeconds);
      await countFailure(c, serialSubject, serial, policy.maxFailures, policy.lockSeconds);
      return { ok: false, error: new AdminError('UNAUTHORIZED', BAD_CREDENTIALS) };
    }
    await c.query('UPDATE selfcare_login_failures SET failures = 0, locked_until = NULL WHERE subject = $1', [serialSubject]);
    return { ok: true, cardId: row.id.toString(), serial: input.serial };
  });
  // Now and then, forget counters nobody has touched for a day (unknown serials would otherwise pile up).
  if (Math.random() < 0.01) {
    await ctx.pool
      .query(`DELETE FROM selfcare_login_failures WHERE window_started_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())`)
      .catch(() => {});
  }
  if (!outcome.ok) throw outcome.error;
  return { cardId: outcome.cardId, serial: outcome.serial };
}

/**
 * The card a self-care token names, if it may still use self-care: the card exists with that serial, is not
 * disabled, and its series is not deleted and still allows self-care. Read on every request, so disabling or
 * deleting takes effect at once for tokens already issued.
 */
export async function selfcareCardAllowed(ctx: AdminContext, cardId: string, serial: string): Promise<boolean> {
  if (!/^\d{1,19}$/.test(cardId)) return false;
  const r = await ctx.pool.query(
    `SELECT 1 FROM cards c JOIN series s ON s.id = c.series_id
      WHERE c.id = $1 AND c.serial = $2 AND c.status <> 'disabled' AND s.selfcare AND s.status <> 'deleted'`,
    [cardId, serial],
  );
  return r.rowCount === 1;
}
