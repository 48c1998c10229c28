import { createHmac, randomInt } from 'node:crypto';
import type { Writable } from 'node:stream';
import { z } from 'zod';
import type { PoolClient } from 'pg';
import { withTransaction } from '../db.ts';
import { clientSubject, countFailure, locked, readCounter, serialFailureSubject, type LockoutPolicy } from './selfcare.ts';
import { decryptPin, encryptPin, type PinKeys } from '../pin.ts';
import { applyBalanceChange } from '../../billing/ledger.ts';
import type { Micros } from '../../money/money.ts';
import type { AdminContext } from './context.ts';
import { AdminError, conflict, invalid, notFound } from './errors.ts';
import { amountJson, formatAmount, isoOrNull } from './format.ts';
import { dateInput, parseInput, positiveMoney, serialInput, wholeNumber } from './input.ts';
import { recordAudit } from './audit.ts';
import { streamCsv, streamXlsx, type StreamOptions } from './export-stream.ts';

/** Voucher numbers: 15 random digits and a Luhn check digit (a mistyped digit is caught before any lookup). */
export const VOUCHER_DIGITS = 16;

export function luhnCheckDigit(payload: string): string {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    let d = Number(payload[payload.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

export function isValidVoucherNumber(n: string): boolean {
  return new RegExp(`^\\d{${VOUCHER_DIGITS}}$`).test(n) && luhnCheckDigit(n.slice(0, -1)) === n.at(-1);
}

export function generateVoucherNumber(): string {
  let p = String(randomInt(1, 10));
  for (let i = 1; i < VOUCHER_DIGITS - 1; i++) p += String(randomInt(10));
  return p + luhnCheckDigit(p);
}

export function voucherHash(keys: PinKeys, number: string): Buffer {
  return createHmac('sha256', keys.hashKey).update(`ccard-voucher:${number}`).digest();
}

/** A voucher number for a log: only its last 4 digits ("…1486"). */
export const maskVoucher = (n: string) => `…${normaliseVoucher(n).slice(-4)}`;

/** A number as keyed or typed: spaces and dashes dropped. */
export const normaliseVoucher = (s: string) => s.replace(/[\s-]/g, '');

export const voucherCreateSchema = z.object({
  count: wholeNumber(1, 100_000),
  value: positiveMoney,
  currency: z.string().trim().regex(/^[A-Za-z]{3}$/, 'must be a 3-letter ISO code').transform((s) => s.toUpperCase()),
  expires: dateInput.optional(),
  batch: z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . -').optional(),
});
export type VoucherCreateInput = z.input<typeof voucherCreateSchema>;

export interface VoucherBatch {
  batch: string;
  value: Micros;
  currency: string;
  count: number;
  used: number;
  expiresAt: Date | null;
  createdAt: Date;
}

export const voucherBatchJson = (b: VoucherBatch) => ({ ...b, value: amountJson(b.value), expiresAt: isoOrNull(b.expiresAt), createdAt: b.createdAt.toISOString() });

/** Generates a batch of vouchers in one transaction (numbers only ever leave ccard through an explicit export). */
export async function createVouchers(ctx: AdminContext, raw: VoucherCreateInput): Promise<VoucherBatch> {
  const i = parseInput(voucherCreateSchema, raw);
  if (i.expires && i.expires.getTime() <= Date.now()) throw invalid('expires: must be in the future');
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const batch = i.batch ?? `V${stamp}-${String(randomInt(1000, 10_000))}`;
  await withTransaction(ctx.pool, async (c) => {
    const exists = await c.query('SELECT 1 FROM vouchers WHERE batch = $1 LIMIT 1', [batch]);
    if (exists.rowCount) throw conflict(`voucher batch ${batch} already exists`);
    let left = i.count;
    while (left > 0) {
      const n = Math.min(left, 5000);
      const numbers = Array.from({ length: n }, generateVoucherNumber);
      const r = await c.query(
        `INSERT INTO vouchers (batch, number_hash, number_cipher, value_micros, currency, expires_at)
         SELECT $1, h, ci, $4, $5, $6 FROM unnest($2::bytea[], $3::bytea[]) AS t(h, ci) ON CONFLICT (number_hash) DO NOTHING`,
        [batch, numbers.map((x) => voucherHash(ctx.pinKeys, x)), numbers.map((x) => encryptPin(ctx.pinKeys, x)), i.value.toString(), i.currency, i.expires ?? null],
      );
      left -= r.rowCount ?? 0;
    }
  });
  return (await listVoucherBatches(ctx, batch))[0]!;
}

export async function listVoucherBatches(ctx: AdminContext, batch?: string): Promise<VoucherBatch[]> {
  const r = await ctx.pool.query<{ batch: string; value_micros: bigint; currency: string; count: number; used: number; expires_at: Date | null; created_at: Date }>(
    `SELECT batch, value_micros, currency, count(*)::int AS count, count(used_at)::int AS used, max(expires_at) AS expires_at,
            min(created_at) AS created_at
       FROM vouchers ${batch ? 'WHERE batch = $1' : ''} GROUP BY batch, value_micros, currency ORDER BY min(created_at), batch`,
    batch ? [batch] : [],
  );
  return r.rows.map((x) => ({ batch: x.batch, value: x.value_micros, currency: x.currency, count: x.count, used: x.used, expiresAt: x.expires_at, createdAt: x.created_at }));
}

/**
 * Streams a batch as CSV or XLSX through the card export's machinery (streamCsv / ExportSink: every cell through
 * exportRow, nothing written before the first batch of rows, stops when `out` closes or stalls or opts.signal
 * fires); the numbers are decrypted only with withNumbers (like `cards export --with-pins`).
 */
export async function exportVouchers(
  ctx: AdminContext,
  batch: string,
  out: Writable,
  opts: { format: 'csv' | 'xlsx'; withNumbers: boolean } & StreamOptions,
): Promise<number> {
  if (!(await listVoucherBatches(ctx, batch)).length) throw notFound(`unknown voucher batch ${batch}`);
  const header = ['batch', 'id', ...(opts.withNumbers ? ['number'] : []), 'value', 'currency', 'expires_at', 'used_at', 'used_by'];
  type Row = { batch: string; id: bigint; number_cipher: Buffer | null; value_micros: bigint; currency: string; expires_at: Date | null; used_at: Date | null; serial: string | null };
  const sql = `SELECT v.batch, v.id, ${opts.withNumbers ? 'v.number_cipher' : 'NULL::bytea AS number_cipher'}, v.value_micros, v.currency,
      v.expires_at, v.used_at, c.serial
    FROM vouchers v LEFT JOIN cards c ON c.id = v.used_by_card_id WHERE v.batch = $1 ORDER BY v.id`;
  const cells = (r: Row): string[] => [
    r.batch,
    r.id.toString(),
    ...(opts.withNumbers ? [r.number_cipher ? decryptPin(ctx.pinKeys, r.number_cipher) : ''] : []),
    formatAmount(r.value_micros),
    r.currency,
    isoOrNull(r.expires_at) ?? '',
    isoOrNull(r.used_at) ?? '',
    r.serial ?? '',
  ];
  const stream = { signal: opts.signal, stallMs: opts.stallMs };
  if (opts.format === 'csv') return streamCsv<Row>(ctx.pool, out, { sql, params: [batch], header, cells }, stream);

  return streamXlsx<Row>(ctx.pool, out, { sql, params: [batch], header, cells, sheet: 'vouchers' }, stream);
}

export type VoucherFailure = 'invalid' | 'currency' | 'card';

export class VoucherError extends AdminError {
  constructor(
    readonly reason: VoucherFailure,
    message: string,
  ) {
    super(reason === 'card' ? 'FORBIDDEN' : 'INVALID_INPUT', message);
  }
}

export interface VoucherRecharge {
  serial: string;
  voucherId: string;
  amount: Micros;
  balance: Micros;
  currency: string;
  /** The ledger row's ref: voucher:<id>. */
  ref: string;
}

export const voucherRechargeJson = (r: VoucherRecharge) => ({ ...r, amount: amountJson(r.amount), balance: amountJson(r.balance) });

/**
 * Recharges a card with a voucher, once: the card row is locked, the voucher is claimed by one UPDATE that only a
 * still-unused, unexpired voucher of the card's currency passes (a second redemption waits on the row and then
 * finds it used), and the credit is a ledger row 'topup' with ref voucher:<id>, all in one transaction.
 * `client` runs it inside a caller's transaction (self-care counts failures on the same connection).
 */
export async function redeemVoucher(
  ctx: AdminContext,
  input: { number: string; cardId?: string; serial?: string },
  client?: PoolClient,
  /**
   * Who redeems, when not a /v1 request (whose audit hook records it): self-care (`card:<serial>`) or the IVR
   * (`ivr:<caller ID>`). The redemption is then written to the audit log in the same transaction.
   */
  audit?: { actor: string; action: string },
): Promise<VoucherRecharge> {
  const number = normaliseVoucher(input.number);
  if (!isValidVoucherNumber(number)) throw new VoucherError('invalid', 'invalid, used or expired voucher');
  let snapshot: { cardId: string; spendable: Micros; version: bigint } | undefined;
  const run = async (c: PoolClient): Promise<VoucherRecharge> => {
    const card = await c.query<{ id: bigint; serial: string; currency: string; status: string; expired: boolean }>(
      `SELECT id, serial, currency, status, (expires_at IS NOT NULL AND expires_at <= now()) AS expired FROM cards
        WHERE ${input.cardId ? 'id = $1' : 'serial = $1'} FOR UPDATE`,
      [input.cardId ?? input.serial],
    );
    const k = card.rows[0];
    if (!k) throw notFound(`unknown card ${input.serial ?? input.cardId}`);
    if (k.status === 'disabled' || k.status === 'expired' || k.expired) throw new VoucherError('card', `card ${k.serial} is ${k.status === 'disabled' ? 'disabled' : 'expired'}`);
    const h = voucherHash(ctx.pinKeys, number);
    const v = await c.query<{ id: bigint; value_micros: bigint; batch: string }>(
      `UPDATE vouchers SET used_at = now(), used_by_card_id = $2
        WHERE number_hash = $1 AND used_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AND currency = $3
        RETURNING id, value_micros, batch`,
      [h, k.id, k.currency],
    );
    const row = v.rows[0];
    if (!row) {
      const other = await c.query<{ currency: string }>('SELECT currency FROM vouchers WHERE number_hash = $1 AND used_at IS NULL AND (expires_at IS NULL OR expires_at > now())', [h]);
      if (other.rowCount) throw new VoucherError('currency', `the voucher is in ${other.rows[0]!.currency}, the card in ${k.currency}`);
      throw new VoucherError('invalid', 'invalid, used or expired voucher');
    }
    const ref = `voucher:${row.id}`;
    const r = await applyBalanceChange(c, { cardId: k.id.toString(), amount: row.value_micros, reason: 'topup', ref, note: `voucher ${row.batch}`, onFloor: 'reject' });
    if (!r.applied) throw new Error(`voucher ${row.id} credit not applied (${r.reason})`);
    snapshot = { cardId: k.id.toString(), spendable: r.balanceAfter + r.creditLimit, version: r.version };
    if (audit) {
      await recordAudit(
        { pool: c as unknown as AdminContext['pool'] },
        {
          actor: audit.actor,
          action: audit.action,
          object: `card:${k.serial}`,
          status: 200,
          request: { voucher: row.id.toString(), batch: row.batch, number: maskVoucher(number) },
          after: { amount: formatAmount(row.value_micros), balance: formatAmount(r.balanceAfter), currency: k.currency, ref },
        },
      );
    }
    return { serial: k.serial, voucherId: row.id.toString(), amount: row.value_micros, balance: r.balanceAfter, currency: k.currency, ref };
  };
  const result = client ? await run(client) : await withTransaction(ctx.pool, run);
  // Inside a caller's transaction the caller refreshes the live balance after its commit (notify via afterCommit).
  if (!client && snapshot && ctx.onBalanceChange) await ctx.onBalanceChange(snapshot.cardId, { spendable: snapshot.spendable, version: snapshot.version });
  if (client && snapshot) (result as VoucherRecharge & { snapshot?: typeof snapshot }).snapshot = snapshot;
  return result;
}

export const voucherRedeemSchema = z.object({ number: z.string().trim().min(1, 'is required').max(40), serial: serialInput });

/**
 * A cardholder's recharge from self-care. A wrong voucher counts exactly like a wrong self-care PIN, on the same
 * counters (selfcare_login_failures): the card's serial and the client's address, each serialised on its row and
 * committed although the recharge is refused. After the serial's limit the card can neither log in nor recharge
 * until the lock ends; an address over its limit is refused first. A voucher of another currency, or one the
 * card cannot take, is refused without counting (it is a real voucher).
 */
export async function selfcareRedeemVoucher(
  ctx: AdminContext,
  card: { cardId: string; serial: string },
  rawNumber: unknown,
  policy: LockoutPolicy,
  clientIp?: string,
): Promise<VoucherRecharge> {
  const number = parseInput(z.string().trim().min(1, 'is required').max(40), rawNumber, 'number');
  const cardId = card.cardId;
  let snapshot: { cardId: string; spendable: Micros; version: bigint } | undefined;
  const ipSubject = clientSubject(clientIp);
  const serialSubject = serialFailureSubject(card.serial);
  const outcome = await withTransaction(ctx.pool, async (c): Promise<{ ok: true; r: VoucherRecharge } | { ok: false; error: AdminError }> => {
    const ip = await readCounter(c, ipSubject, policy.windowSeconds);
    if (ip.locked_for !== null) return { ok: false, error: locked(ip.locked_for, ' from this address', 'attempts') };
    const serial = await readCounter(c, serialSubject, policy.windowSeconds);
    if (serial.locked_for !== null) return { ok: false, error: locked(serial.locked_for, '', 'attempts') };
    await c.query('SAVEPOINT voucher');
    try {
      const r = await redeemVoucher(ctx, { number, cardId }, c, { actor: `card:${card.serial}`, action: 'POST /selfcare/voucher' });
      snapshot = (r as VoucherRecharge & { snapshot?: typeof snapshot }).snapshot;
      delete (r as VoucherRecharge & { snapshot?: unknown }).snapshot;
      return { ok: true, r };
    } catch (err) {
      await c.query('ROLLBACK TO SAVEPOINT voucher');
      if (!(err instanceof VoucherError) || err.reason !== 'invalid') throw err;
      await countFailure(c, ipSubject, ip, policy.ipMaxFailures ?? 10, policy.lockSeconds);
      await countFailure(c, serialSubject, serial, policy.maxFailures, policy.lockSeconds);
      return { ok: false, error: err };
    }
  });
  if (!outcome.ok) throw outcome.error;
  if (snapshot && ctx.onBalanceChange) await ctx.onBalanceChange(snapshot.cardId, { spendable: snapshot.spendable, version: snapshot.version });
  return outcome.r;
}
