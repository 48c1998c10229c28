/**
 * Routing plans through the real service and the FreeSWITCH simulator: least-cost order, failover to the next
 * carrier on congestion (a fresh reservation, billed once), no failover on busy, refusal at a loss, blocked
 * prefixes, carrier cool-down, and the carrier and its buy cost recorded with the CDR.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { carrier, type CallScript } from '../../src/sim/index.ts';
import { importRates } from '../../src/store/rates.ts';
import { addCarrier, addPlan, assignPlan, editPlan, setEntry } from '../../src/store/admin/routing.ts';
import { costReport } from '../../src/store/admin/cdrs.ts';
import type { AdminContext } from '../../src/store/admin/context.ts';
import { startHarness, type Harness } from './harness.ts';

const FAILURES = 3;

describe('routing plans, end to end', () => {
  let h: Harness;
  let ctx: AdminContext;
  let did: string;

  beforeAll(async () => {
    h = await startHarness({ env: { CCARD_CARRIER_FAILURES: String(FAILURES), CCARD_CARRIER_FAILURE_WINDOW: '600', CCARD_CARRIER_COOLDOWN: '600' } });
    did = h.data.did;
    ctx = { pool: h.service.pool, pinKeys: h.service.pinKeys };
    // Sell (demo table): 1555 = 0.05/min + 0.01 connect (30/6 s); 44 = 0.04/min (60/60).
    await addCarrier(ctx, { name: 'cheap', gateway: 'gw-cheap' });
    await addCarrier(ctx, { name: 'mid', gateway: 'gw-mid', prefixAdd: '9' });
    await addCarrier(ctx, { name: 'pricey', gateway: 'gw-pricey', prefixStrip: 1, prefixAdd: '00' });
    await importRates(h.service.pool, 'buy-cheap', 'prefix,rate\n1,0.010\n');
    await importRates(h.service.pool, 'buy-mid', 'prefix,rate,connect_fee,initial_increment,subsequent_increment\n1,0.020,0,6,6\n');
    await importRates(h.service.pool, 'buy-pricey', 'prefix,rate\n1,0.030\n44,0.090\n');
    await addPlan(ctx, { name: 'retail' });
    await setEntry(ctx, 'retail', { prefix: 'default', mode: 'lcr', carriers: [] });
    await setEntry(ctx, 'retail', { prefix: '44', mode: 'ordered', carriers: [{ carrier: 'pricey' }] });
    await setEntry(ctx, 'retail', { prefix: '1555404', mode: 'block' });
    await assignPlan(ctx, { plan: 'retail', series: '100' });
    await h.service.rates.reload();
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    await h.service.pool.query(`UPDATE access_numbers SET auth_mode = 'pin', failover_gateway = NULL WHERE did = $1`, [did]);
  });

  const call = (script: CallScript) => h.place({ did, callerId: '15554440001', ...script });
  const byGateway = (gws: Record<string, ReturnType<typeof carrier.answer>>) => (number: string) =>
    number.startsWith('9') ? gws.mid : number.startsWith('00') ? gws.pricey : gws.cheap;
  const gatewayOf = (dial: string) => /sofia\/gateway\/([^/]+)\//.exec(dial)![1];
  const cdr = async (callId: string) =>
    (
      await h.service.pool.query<{ carrier: string | null; buy_cost_micros: bigint | null; cost_micros: bigint; billsec: number }>(
        `SELECT ca.name AS carrier, d.buy_cost_micros, d.cost_micros, d.billsec FROM cdrs d LEFT JOIN carriers ca ON ca.id = d.carrier_id
          WHERE d.call_id = $1`,
        [callId],
      )
    ).rows[0];

  it('least cost: the cheapest carrier is dialled first, with its own number format; the CDR records it and its cost', async () => {
    const card = h.data.cards.rich;
    const { result, outcome } = await call({ digits: [`${card.pin}#`, '15557654321#', ''], carrier: () => carrier.answer(500, 3000) });
    expect(result.dialStrings).toHaveLength(1);
    expect(gatewayOf(result.dialStrings[0]!)).toBe('gw-cheap');
    expect(result.dialStrings[0]).toMatch(/\/15557654321$/);
    expect(outcome.calls[0]!.route?.carrier).toBe('cheap');
    const row = await cdr(outcome.calls[0]!.callId);
    expect(row!.carrier).toBe('cheap');
    // 0.010/min, 60/60 increments: any call under a minute costs 0.01 (10 000 micros).
    expect(row!.billsec).toBeGreaterThan(0);
    expect(row!.buy_cost_micros).toBe(10_000n);
  });

  it('congestion on the first carrier: the next one bridges with a NEW reservation, billed once at the sell rate', async () => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await call({
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: byGateway({ cheap: carrier.congestion(), mid: carrier.answer(500, 4000), pricey: carrier.answer(500, 4000) }),
    });
    expect(result.dialStrings.map((d) => gatewayOf(d))).toEqual(['gw-cheap', 'gw-mid']);
    expect(result.dialStrings[1]).toMatch(/\/915557654321$/);
    const [first, second] = outcome.calls;
    expect(first!.outcome).toBe('congestion');
    expect(second!.outcome).toBe('answered');
    expect(second!.callId).not.toBe(first!.callId);
    expect(outcome.played).not.toContain('congestion');
    const calls = await h.service.pool.query<{ call_id: string; status: string }>(
      'SELECT call_id::text, status FROM calls WHERE call_id = ANY($1::uuid[]) ORDER BY created_at',
      [[first!.callId, second!.callId]],
    );
    expect(Object.fromEntries(calls.rows.map((r) => [r.call_id, r.status]))).toEqual({ [first!.callId]: 'released', [second!.callId]: 'settled' });
    const row = await cdr(second!.callId);
    expect(await cdr(first!.callId)).toBeUndefined();
    expect(row!.carrier).toBe('mid');
    // mid: 0.020/min in 6 s blocks; billsec 4 or 5 -> 6 s -> 0.002.
    expect(row!.buy_cost_micros).toBe(2_000n);
    expect(await h.balance(card.id)).toBe(before - row!.cost_micros);
    const ledger = await h.service.pool.query('SELECT 1 FROM ledger WHERE card_id = $1 AND reason = $2 AND ref = ANY($3)', [
      card.id,
      'call',
      [first!.callId, second!.callId],
    ]);
    expect(ledger.rowCount).toBe(1);
  });

  it('busy on the first carrier stops there: the busy prompt, no second carrier, nothing charged', async () => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await call({ digits: [`${card.pin}#`, '15557654321#', ''], carrier: () => carrier.busy() });
    expect(result.dialStrings).toHaveLength(1);
    expect(outcome.played).toContain('busy');
    expect(await h.balance(card.id)).toBe(before);
  });

  it('never at a loss: the only carrier for 44 costs more than the card pays -> its own prompt, nothing dialled', async () => {
    const card = h.data.cards.rich;
    const { result, outcome } = await call({ digits: [`${card.pin}#`, '442071234567#', ''] });
    expect(result.dialStrings).toHaveLength(0);
    expect(outcome.played).toContain('destination_unprofitable');
    expect(result.prompts).toContain('ccard/destination_unprofitable.wav');
    expect(outcome.calls).toHaveLength(0);
  });

  it('the loss prompt is configurable per plan', async () => {
    await editPlan(ctx, 'retail', { lossPrompt: 'no_rate' });
    await h.service.rates.reload();
    try {
      const { outcome } = await call({ digits: [`${h.data.cards.rich.pin}#`, '442071234567#', ''] });
      expect(outcome.played).toContain('no_rate');
      expect(outcome.played).not.toContain('destination_unprofitable');
    } finally {
      await editPlan(ctx, 'retail', { lossPrompt: 'destination_unprofitable' });
      await h.service.rates.reload();
    }
  });

  it('a blocked prefix is refused as "not available"', async () => {
    const { result, outcome } = await call({ digits: [`${h.data.cards.rich.pin}#`, '15554041234#', ''] });
    expect(result.dialStrings).toHaveLength(0);
    expect(outcome.played).toContain('no_rate');
  });

  it('the cost report shows revenue, buy cost and margin per destination and carrier', async () => {
    const rows = await costReport(ctx, { by: 'carrier' } as never);
    const cheap = rows.find((r) => r.key.includes('cheap'));
    const mid = rows.find((r) => r.key.includes('mid'));
    expect(cheap && mid).toBeTruthy();
    for (const r of [cheap!, mid!]) {
      expect(r.buyCost).not.toBeNull();
      expect(r.margin).toBe(r.totalCost - r.buyCost!);
      expect(r.margin!).toBeGreaterThan(0n);
    }
  });

  it(`a carrier failing ${FAILURES} times is skipped for its cool-down: the next call goes straight to the next carrier`, async () => {
    const card = h.data.cards.rich;
    // One congestion on "cheap" happened above; FAILURES - 1 more start its cool-down.
    for (let i = 1; i < FAILURES; i++) {
      await call({
        digits: [`${card.pin}#`, '15557654321#', ''],
        carrier: byGateway({ cheap: carrier.congestion(), mid: carrier.answer(500, 1000), pricey: carrier.answer(500, 1000) }),
      });
    }
    const { result } = await call({ digits: [`${card.pin}#`, '15557654321#', ''], carrier: () => carrier.answer(500, 1000) });
    expect(result.dialStrings.map((d) => gatewayOf(d))).toEqual(['gw-mid']);
  });
});
