/**
 * Voucher recharge in the IVR, end to end (real server + simulator): key 0 after the balance announcement on an
 * access number that enables it, key the voucher, hear the new balance; wrong vouchers count toward the PIN lockout;
 * two callers keying the same voucher at the same moment: one recharge.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { createVouchers, exportVouchers } from '../../src/store/admin/vouchers.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import { startHarness, type Harness } from './harness.ts';

describe('IVR voucher recharge', () => {
  let h: Harness;
  let ctx: AdminContext;
  let batch = 0;

  beforeAll(async () => {
    h = await startHarness({ env: { CCARD_PIN_LOCKOUT_FAILURES: '3' } });
    ctx = { pool: h.service.pool, pinKeys: h.service.pinKeys };
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    await h.service.pool.query('UPDATE access_numbers SET voucher_recharge = true WHERE did = $1', [h.data.did]);
  });

  async function vouchers(count: number, value: string, currency = 'USD'): Promise<string[]> {
    const name = `IVR${++batch}`;
    await createVouchers(ctx, { count, value, currency, batch: name });
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c) => chunks.push(c));
    await exportVouchers(ctx, name, out, { format: 'csv', withNumbers: true });
    return (parse(Buffer.concat(chunks).toString(), { columns: true }) as Array<{ number: string }>).map((r) => r.number);
  }

  it('key 0, key the voucher, hear "recharged" and the new balance, then call', async () => {
    const [n] = await vouchers(1, '10.00');
    const { rich } = h.data.cards;
    const before = await h.balance(rich.id);
    const { outcome } = await h.place({ did: h.data.did, callerId: '15550007001', digits: [`${rich.pin}#`, '0#', `${n}#`, '15557654321#', ''] });
    expect(outcome.played).toEqual(
      expect.arrayContaining(['voucher_offer', 'enter_voucher', 'voucher_accepted']),
    );
    const accepted = outcome.played.indexOf('voucher_accepted');
    // The new balance is announced after the recharge, and the caller goes on to the destination prompt.
    expect(outcome.played.slice(accepted + 1, accepted + 3)).toEqual(['you_have', `say:CURRENCY:${((Number(before) + 10_000_000) / 1e6).toFixed(2)}`]);
    expect(outcome.calls).toHaveLength(1);
    const cost = outcome.calls[0]!.settle?.cost ?? 0n;
    expect(await h.balance(rich.id)).toBe(before + 10_000_000n - cost);
    const ledger = await h.service.pool.query("SELECT reason, amount_micros FROM ledger WHERE card_id = $1 AND ref LIKE 'voucher:%'", [rich.id]);
    expect(ledger.rows).toEqual([{ reason: 'topup', amount_micros: 10_000_000n }]);
    const logged = await h.service.pool.query("SELECT actor, object FROM audit_log WHERE action LIKE 'ivr voucher%'");
    expect(logged.rows).toEqual([{ actor: 'ivr:15550007001', object: `card:${rich.serial}` }]);
  });

  it('no voucher menu where the access number does not enable it', async () => {
    await h.service.pool.query('UPDATE access_numbers SET voucher_recharge = false WHERE did = $1', [h.data.did]);
    const { outcome } = await h.place({ did: h.data.did, callerId: '15550007002', digits: [`${h.data.cards.rich.pin}#`, '0#', ''] });
    expect(outcome.played).not.toContain('voucher_offer');
    expect(outcome.played).not.toContain('enter_voucher');
    expect(outcome.played).toContain('invalid_destination');
  });

  it('wrong vouchers count toward the same lockout as wrong PINs', async () => {
    const callerId = '15550007003';
    const { rich } = h.data.cards;
    // A right PIN forgets the caller's earlier wrong PINs and trusts its number (src/app/pin-guard.ts); wrong vouchers
    // then count on that number exactly like wrong PINs: the third (CCARD_PIN_LOCKOUT_FAILURES=3) ends the trust
    // and locks the caller out, even with the right PIN.
    const { outcome } = await h.place({
      did: h.data.did,
      callerId,
      digits: ['9999999999#', `${rich.pin}#`, '0#', '4539578763621486#', '0#', '4539578763621478#', '0#', '4539578763621460#'],
    });
    expect(outcome.played.filter((p) => p === 'voucher_invalid')).toHaveLength(2);
    expect(outcome.ended).toBe('locked_out');
    const again = await h.place({ did: h.data.did, callerId, digits: [`${rich.pin}#`] });
    expect(again.outcome.ended).toBe('locked_out');
    // Another caller ID is not affected.
    const other = await h.place({ did: h.data.did, callerId: '15550007013', digits: [`${rich.pin}#`, ''] });
    expect(other.outcome.ended).not.toBe('locked_out');
  });

  it('a voucher of another currency is refused without a recharge', async () => {
    const [eur] = await vouchers(1, '5', 'EUR');
    const { outcome } = await h.place({ did: h.data.did, callerId: '15550007004', digits: [`${h.data.cards.poor.pin}#`, '0#', `${eur}#`, ''] });
    expect(outcome.played).toContain('voucher_wrong_currency');
    expect((await h.service.pool.query("SELECT count(*)::int AS n FROM ledger WHERE card_id = $1 AND ref LIKE 'voucher:%'", [h.data.cards.poor.id])).rows[0].n).toBe(0);
  });

  it('two callers keying the same voucher at the same moment: one recharge', async () => {
    const [n] = await vouchers(1, '3.00');
    const { rich, pinless } = h.data.cards;
    // Placed through the simulator directly (the harness's place() pairs outcomes with calls by order).
    const n0 = h.outcomes.length;
    await Promise.all([
      h.sim.call({ did: h.data.did, callerId: '15550007005', digits: [`${rich.pin}#`, '0#', `${n}#`, ''] }),
      h.sim.call({ did: h.data.did, callerId: '15550007006', digits: [`${pinless.pin}#`, '0#', `${n}#`, ''] }),
    ]);
    const outcomes = (await h.waitOutcomes(n0 + 2)).slice(n0);
    expect(outcomes.map((o) => o.cardId).sort()).toEqual([rich.id, pinless.id].sort());
    const results = outcomes.map((o) => (o.played.includes('voucher_accepted') ? 'ok' : o.played.includes('voucher_invalid') ? 'invalid' : 'other'));
    expect(results.sort()).toEqual(['invalid', 'ok']);
    const rows = await h.service.pool.query("SELECT count(*)::int AS n FROM ledger WHERE ref = (SELECT 'voucher:' || id FROM vouchers WHERE batch = $1)", [`IVR${batch}`]);
    expect(rows.rows[0].n).toBe(1);
  });
});
