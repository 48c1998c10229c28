/**
 * Voucher recharge in the IVR (issue 11): on access numbers that enable it, the caller presses 0 after the balance
 * announcement, keys the voucher and hears the new balance. A wrong voucher counts as a wrong PIN toward the same
 * lockout (caller ID and access number); the redemption itself is the operator's and self-care's
 * (store/admin/vouchers.ts: once, even when keyed twice at the same moment; currency must match; a ledger row).
 */
import type { Micros } from '../money/money.ts';
import type { AdminContext } from '../store/admin/context.ts';
import { redeemVoucher, VoucherError, VOUCHER_DIGITS } from '../store/admin/vouchers.ts';
import type { CallServices } from './services.ts';

export type IvrVoucherResult =
  | { ok: true; amount: Micros; balance: Micros }
  /** invalid: unknown, used, expired or mistyped; currency: another currency; card: not usable; locked: too many failures. */
  | { ok: false; reason: 'invalid' | 'currency' | 'card' | 'locked' };

/** The key that opens the voucher menu on the destination prompt (a destination is never one digit). */
export const VOUCHER_KEY = '0';
export const VOUCHER_MAX_DIGITS = VOUCHER_DIGITS;

export function createIvrVouchers(deps: { admin: AdminContext; recordPinFailure: CallServices['recordPinFailure']; isLockedOut: CallServices['isLockedOut'] }) {
  return async (cardId: string, number: string, did: string, callerId: string): Promise<IvrVoucherResult> => {
    try {
      const r = await redeemVoucher(deps.admin, { number, cardId }, undefined, { actor: `ivr:${callerId || 'withheld'}`, action: `ivr voucher on ${did}` });
      return { ok: true, amount: r.amount, balance: r.balance };
    } catch (err) {
      if (!(err instanceof VoucherError)) throw err;
      if (err.reason === 'invalid') {
        await deps.recordPinFailure(did, callerId);
        if (await deps.isLockedOut(did, callerId)) return { ok: false, reason: 'locked' };
      }
      return { ok: false, reason: err.reason };
    }
  };
}

export const voucherEffects = {
  redeemVoucher: ({ input }: { input: { services: CallServices; cardId: string; number: string; did: string; callerId: string } }): Promise<IvrVoucherResult> =>
    input.services.redeemVoucher
      ? input.services.redeemVoucher(input.cardId, input.number, input.did, input.callerId)
      : Promise.resolve({ ok: false, reason: 'invalid' }),
};
