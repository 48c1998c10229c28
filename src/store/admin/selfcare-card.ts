import { z } from 'zod';
import type { AdminContext } from './context.ts';
import { AdminError, conflict, notFound, pgCode } from './errors.ts';
import { amountJson, formatAtLeast } from './format.ts';
import { pageInput, parseInput, phoneInput } from './input.ts';
import { formatPercent } from './tax.ts';

/**
 * What a cardholder may see and do with their own card in self-care. Every function takes the card id from the
 * cardholder's token (never a serial from the request), so one cardholder can never reach another card.
 */

export async function selfcareLedger(ctx: AdminContext, cardId: string, page: { limit?: unknown; offset?: unknown }) {
  const p = parseInput(z.object(pageInput), page);
  const r = await ctx.pool.query<{ amount_micros: bigint; balance_after_micros: bigint; reason: string; note: string; created_at: Date }>(
    `SELECT amount_micros, balance_after_micros, reason, note, created_at FROM ledger WHERE card_id = $1
     ORDER BY id DESC LIMIT ${p.limit + 1} OFFSET ${p.offset}`,
    [cardId],
  );
  return {
    items: r.rows.slice(0, p.limit).map((x) => ({
      amount: amountJson(x.amount_micros),
      balanceAfter: amountJson(x.balance_after_micros),
      reason: x.reason,
      note: x.reason === 'topup' || x.reason === 'adjustment' ? x.note : '',
      createdAt: x.created_at.toISOString(),
    })),
    hasMore: r.rows.length > p.limit,
  };
}

export const rateLookupSchema = z.object({
  number: z
    .string()
    .transform((s) => s.replace(/[\s().-]/g, ''))
    .pipe(z.string().regex(/^(\+|00)?\d{3,20}$/, 'must be a phone number in international format, e.g. +44 20 7123 4567'))
    .transform((s) => s.replace(/^(\+|00)/, '')),
});

/**
 * "What does a call to this number cost per minute": the longest matching prefix of the card's rate table (its own
 * or its series'), effective now, with the connect fee, the billing increments and the series' tax.
 */
export async function selfcareRate(ctx: AdminContext, cardId: string, raw: { number?: unknown }) {
  const { number } = parseInput(rateLookupSchema, raw);
  const prefixes = Array.from({ length: number.length }, (_x, i) => number.slice(0, i + 1));
  const r = await ctx.pool.query<{
    prefix: string; destination: string; rate_per_min_micros: bigint; connect_fee_micros: bigint; initial_increment: number;
    subsequent_increment: number; decimals: number; currency: string; rate_ppm: number | null;
  }>(
    `SELECT r.prefix, r.destination, r.rate_per_min_micros, r.connect_fee_micros, r.initial_increment, r.subsequent_increment,
       rt.decimals, rt.currency, tp.rate_ppm
     FROM cards c JOIN series s ON s.id = c.series_id
       JOIN rate_tables rt ON rt.id = COALESCE(c.rate_table_id, s.rate_table_id)
       JOIN rates r ON r.rate_table_id = rt.id
       LEFT JOIN tax_profiles tp ON tp.id = s.tax_profile_id
     WHERE c.id = $1 AND r.prefix = ANY($2::text[])
       AND (r.effective_from IS NULL OR r.effective_from <= now()) AND (r.effective_to IS NULL OR r.effective_to > now())
     ORDER BY length(r.prefix) DESC LIMIT 1`,
    [cardId, prefixes],
  );
  if (!r.rowCount) throw notFound(`calls to +${number} are not possible with this card`);
  const x = r.rows[0]!;
  const fmt = (m: bigint) => formatAtLeast(m, Math.max(2, x.decimals));
  return {
    number: `+${number}`,
    destination: x.destination,
    prefix: x.prefix,
    currency: x.currency.trim(),
    ratePerMinute: fmt(x.rate_per_min_micros),
    connectFee: fmt(x.connect_fee_micros),
    initialIncrement: x.initial_increment,
    subsequentIncrement: x.subsequent_increment,
    taxPercent: formatPercent(x.rate_ppm ?? 0),
  };
}

export const MAX_SELFCARE_CALLER_IDS = 5;

/** Pinless calling is possible when some enabled access number identifies callers by caller ID. */
async function pinlessAvailable(ctx: AdminContext): Promise<boolean> {
  const r = await ctx.pool.query(`SELECT 1 FROM access_numbers WHERE enabled AND auth_mode IN ('cli', 'cli-then-pin') LIMIT 1`);
  return (r.rowCount ?? 0) > 0;
}

export async function selfcareCallerIds(ctx: AdminContext, cardId: string) {
  const r = await ctx.pool.query<{ caller_id: string; created_at: Date }>('SELECT caller_id, created_at FROM caller_ids WHERE card_id = $1 ORDER BY caller_id', [cardId]);
  return {
    pinlessAvailable: await pinlessAvailable(ctx),
    max: MAX_SELFCARE_CALLER_IDS,
    items: r.rows.map((x) => ({ callerId: x.caller_id, createdAt: x.created_at.toISOString() })),
  };
}

/** Binds a phone number to the card for pinless calls (at most MAX_SELFCARE_CALLER_IDS). */
export async function selfcareBind(ctx: AdminContext, cardId: string, raw: { callerId?: unknown }) {
  const { callerId } = parseInput(z.object({ callerId: phoneInput }), raw);
  if (!(await pinlessAvailable(ctx))) throw new AdminError('FORBIDDEN', 'pinless calling is not offered on any access number');
  const n = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM caller_ids WHERE card_id = $1', [cardId]);
  if (n.rows[0]!.n >= MAX_SELFCARE_CALLER_IDS) throw conflict(`at most ${MAX_SELFCARE_CALLER_IDS} phone numbers per card: remove one first`);
  try {
    const r = await ctx.pool.query<{ created_at: Date }>('INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2) RETURNING created_at', [callerId, cardId]);
    return { callerId, createdAt: r.rows[0]!.created_at.toISOString() };
  } catch (err) {
    // Whose card it is stays private.
    if (pgCode(err) === '23505') throw conflict(`${callerId} is already registered for pinless calling`);
    throw err;
  }
}

export async function selfcareUnbind(ctx: AdminContext, cardId: string, callerId: string): Promise<void> {
  const cid = parseInput(phoneInput, callerId, 'callerId');
  const r = await ctx.pool.query('DELETE FROM caller_ids WHERE caller_id = $1 AND card_id = $2', [cid, cardId]);
  if (!r.rowCount) throw notFound(`${cid} is not registered on this card`);
}
