import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices } from '../../src/app/call-services.ts';
import { chargeMaintenance, expireCards } from '../../src/billing/lifecycle.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { withTransaction } from '../../src/store/db.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog } from './fixtures.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const DAY = 86_400_000;

function services(now?: () => Date) {
  const live = new MemoryLiveBalance();
  return { live, svc: createCallServices({ pool: db.pool, live, rates: memoryRates({}), pinKeys, config: BASE_CONFIG, logger: silentLog, now }) };
}

describe('authorize', () => {
  it('activates a pending card exactly once under concurrent authorize, charging the fee once', async () => {
    const { seriesId } = await createSeries(db.pool, { activationFee: 500_000n, expiryDays: 30 });
    const { cardId, pin } = await createCard(db.pool, { seriesId, balance: 5_000_000n, status: 'pending' });
    const { svc, live } = services();
    expect(await svc.authorizeByPin('000000000000')).toEqual({ ok: false, reason: 'unknown' });
    const results = await Promise.all(Array.from({ length: 20 }, () => svc.authorize(cardId)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.filter((r) => r.ok && r.activated).length).toBe(1);
    const f = await moneyFacts(db.pool, cardId);
    expect(f.balance).toBe(4_500_000n);
    expect(f.ledgerSum).toBe(4_500_000n);
    const fees = await db.pool.query(`SELECT 1 FROM ledger WHERE card_id = $1 AND reason = 'activation_fee'`, [cardId]);
    expect(fees.rowCount).toBe(1);
    const card = await db.pool.query<{ status: string; activated_at: Date; expires_at: Date }>(
      'SELECT status, activated_at, expires_at FROM cards WHERE id = $1',
      [cardId],
    );
    const row = card.rows[0]!;
    expect(row.status).toBe('active');
    expect(row.expires_at.getTime() - row.activated_at.getTime()).toBe(30 * DAY);
    const last = results.at(-1)!;
    expect(last.ok && last.card).toMatchObject({ id: cardId, balance: 4_500_000n, available: 4_500_000n, currency: 'USD' });
    expect(await live.peek(cardId)).toEqual({ available: 4_500_000n, active: 0 });
    expect(await svc.authorizeByPin(pin)).toMatchObject({ ok: true, activated: false, card: { id: cardId } });
  });

  it('expiry_days: expires_at is the earlier of activation + days and the series date', async () => {
    const seriesDate = new Date(Date.now() + 10 * DAY);
    const { seriesId } = await createSeries(db.pool, { expiryDays: 30, expiryDate: seriesDate });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n, status: 'pending' });
    const { svc } = services();
    expect(await svc.authorize(cardId)).toMatchObject({ ok: true, activated: true });
    const r = await db.pool.query<{ expires_at: Date }>('SELECT expires_at FROM cards WHERE id = $1', [cardId]);
    expect(r.rows[0]!.expires_at.getTime()).toBe(seriesDate.getTime());
  });

  it('expires a card by its period and by its series date', async () => {
    const { seriesId } = await createSeries(db.pool, { expiryDays: 30 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n, status: 'pending' });
    expect(await services().svc.authorize(cardId)).toMatchObject({ ok: true, activated: true });
    const in31 = new Date(Date.now() + 31 * DAY);
    expect(await services(() => in31).svc.authorize(cardId)).toEqual({ ok: false, reason: 'expired' });
    const st = await db.pool.query<{ status: string }>('SELECT status FROM cards WHERE id = $1', [cardId]);
    expect(st.rows[0]!.status).toBe('expired');
    expect(await services().svc.authorize(cardId)).toEqual({ ok: false, reason: 'expired' });

    const past = await createSeries(db.pool, { expiryDate: new Date(Date.now() - DAY) });
    const pending = await createCard(db.pool, { seriesId: past.seriesId, balance: 1_000_000n, status: 'pending' });
    const active = await createCard(db.pool, { seriesId: past.seriesId, balance: 1_000_000n });
    expect(await services().svc.authorize(pending.cardId)).toEqual({ ok: false, reason: 'expired' });
    // The sweep finds the other one without anyone calling.
    expect(await expireCards(db.pool)).toEqual([active.cardId]);
    expect(await services().svc.authorize(active.cardId)).toEqual({ ok: false, reason: 'expired' });
    // Nothing was charged for a card that never activated.
    expect((await moneyFacts(db.pool, pending.cardId)).balance).toBe(1_000_000n);
  });

  it('refuses disabled cards, cards of stopped series, empty cards and unknown ids', async () => {
    const { seriesId } = await createSeries(db.pool);
    const disabled = await createCard(db.pool, { seriesId, balance: 1_000_000n, status: 'disabled' });
    const empty = await createCard(db.pool, { seriesId, balance: 0n });
    const credit = await createCard(db.pool, { seriesId, balance: 0n, creditLimit: 500_000n });
    const stopped = await createSeries(db.pool, { status: 'stopped' });
    const ofStopped = await createCard(db.pool, { seriesId: stopped.seriesId, balance: 1_000_000n });
    const { svc } = services();
    expect(await svc.authorize(disabled.cardId)).toEqual({ ok: false, reason: 'disabled' });
    expect(await svc.authorize(ofStopped.cardId)).toEqual({ ok: false, reason: 'disabled' });
    expect(await svc.authorize(empty.cardId)).toEqual({ ok: false, reason: 'no_balance' });
    expect(await svc.authorize(credit.cardId)).toMatchObject({ ok: true, card: { balance: 0n, available: 500_000n } });
    expect(await svc.authorize('999999999')).toEqual({ ok: false, reason: 'unknown' });
    expect(await svc.authorize('not-a-card')).toEqual({ ok: false, reason: 'unknown' });
  });

  it('authorizeByPin reads and authorizes the card in one step: unknown PIN, pricing for quote and reserve', async () => {
    const { seriesId, rateTableId } = await createSeries(db.pool, { activationFee: 100_000n, maxConcurrent: 3 });
    const { cardId, pin } = await createCard(db.pool, { seriesId, balance: 2_000_000n, status: 'pending' });
    const { svc } = services();
    expect(await svc.authorizeByPin('000000000000')).toEqual({ ok: false, reason: 'unknown' });
    expect(await svc.authorizeByPin('12ab')).toEqual({ ok: false, reason: 'unknown' });
    const r = await svc.authorizeByPin(pin);
    expect(r).toMatchObject({
      ok: true,
      activated: true,
      card: { id: cardId, balance: 1_900_000n, available: 1_900_000n, pricing: { rateTableId, taxPpm: 0, maxConcurrentCalls: 3 } },
    });
    expect(await svc.authorizeByPin(pin)).toMatchObject({ ok: true, activated: false });
    await db.pool.query(`UPDATE cards SET status = 'disabled' WHERE id = $1`, [cardId]);
    expect(await svc.authorizeByPin(pin)).toEqual({ ok: false, reason: 'disabled' });
  });

  it('accessNumber with a caller ID also says which card it is bound to (null: none)', async () => {
    const { seriesId } = await createSeries(db.pool);
    const a = await createCard(db.pool, { seriesId, balance: 1n });
    const { svc } = services();
    await db.pool.query(
      `INSERT INTO access_numbers (did, language, auth_mode, gateway, min_digits, max_digits, country_code, national_prefix)
       VALUES ('18005559999', 'en', 'cli', 'carrier', 11, 15, '1', '1') ON CONFLICT DO NOTHING`,
    );
    await svc.bindCli('15557770000', a.cardId);
    expect(await svc.accessNumber('18005559999', '15557770000')).toMatchObject({ did: '18005559999', cliCardId: a.cardId });
    expect(await svc.accessNumber('18005559999', '15557770001')).toMatchObject({ cliCardId: null });
    expect((await svc.accessNumber('18005559999'))!.cliCardId).toBeUndefined();
    expect((await svc.accessNumber('18005559999', 'anonymous'))!.cliCardId).toBeUndefined();
    expect(await svc.accessNumber('18005550000', '15557770000')).toBeUndefined();
  });

  it('binds and finds caller IDs, never for anonymous ones', async () => {
    const { seriesId } = await createSeries(db.pool);
    const a = await createCard(db.pool, { seriesId, balance: 1n });
    const b = await createCard(db.pool, { seriesId, balance: 1n });
    const { svc } = services();
    await svc.bindCli('+15551239999', a.cardId);
    expect(await svc.cardIdByCli('+15551239999')).toBe(a.cardId);
    await svc.bindCli('+15551239999', b.cardId);
    expect(await svc.cardIdByCli('+15551239999')).toBe(b.cardId);
    await svc.bindCli('anonymous', a.cardId);
    for (const cli of ['', 'anonymous', 'Anonymous', 'unknown', '0']) expect(await svc.cardIdByCli(cli)).toBeUndefined();
  });
});

describe('maintenance fees', () => {
  async function maintained(balance: bigint, fee: bigint, activatedDaysAgo: number) {
    const { seriesId } = await createSeries(db.pool, { maintenanceFee: fee, maintenancePeriodHours: 24 });
    return createCard(db.pool, { seriesId, balance, activatedAt: new Date(Date.now() - activatedDaysAgo * DAY - 3_600_000) });
  }
  const periods = async (cardId: string) =>
    (await db.pool.query<{ ref: string }>(`SELECT ref FROM ledger WHERE card_id = $1 AND reason = 'maintenance_fee' ORDER BY id`, [cardId])).rows.map(
      (r) => r.ref,
    );

  it('catches up every missed period once, even with two schedulers at once, and pushes the balance live', async () => {
    const { cardId } = await maintained(10_000_000n, 1_000_000n, 3);
    const live = new MemoryLiveBalance();
    await live.load(cardId, { spendable: 10_000_000n, version: 2n });
    const now = new Date();
    await Promise.all([chargeMaintenance(db.pool, now, live), chargeMaintenance(db.pool, now, live), chargeMaintenance(db.pool, now, live)]);
    expect(await periods(cardId)).toEqual(['period:1', 'period:2', 'period:3']);
    expect(await chargeMaintenance(db.pool, now, live)).toMatchObject({ charges: 0 });
    const f = await moneyFacts(db.pool, cardId);
    expect(f.balance).toBe(7_000_000n);
    expect(f.ledgerSum).toBe(f.balance);
    expect(await live.peek(cardId)).toEqual({ available: 7_000_000n, active: 0 });
    // A day later: one more.
    await chargeMaintenance(db.pool, new Date(now.getTime() + DAY), live);
    expect(await periods(cardId)).toEqual(['period:1', 'period:2', 'period:3', 'period:4']);
  });

  it('never takes the balance below zero: the last fee is partial, empty periods are waived', async () => {
    const { cardId } = await maintained(2_500_000n, 1_000_000n, 6);
    const s = await chargeMaintenance(db.pool, new Date());
    expect(await periods(cardId)).toEqual(['period:1', 'period:2', 'period:3']);
    expect((await moneyFacts(db.pool, cardId)).balance).toBe(0n);
    const row = await db.pool.query<{ maintenance_charged_periods: number }>('SELECT maintenance_charged_periods FROM cards WHERE id = $1', [cardId]);
    expect(row.rows[0]!.maintenance_charged_periods).toBe(6);
    expect(s.waived).toBeGreaterThanOrEqual(3);
    // A top-up is not eaten by back fees: only the next period is charged.
    await withTransaction(db.pool, (c) =>
      applyBalanceChange(c, { cardId, amount: 5_000_000n, reason: 'topup', ref: 'topup-1', onFloor: 'reject' }),
    );
    expect(await chargeMaintenance(db.pool, new Date())).toMatchObject({ charges: 0 });
    await chargeMaintenance(db.pool, new Date(Date.now() + DAY));
    expect(await periods(cardId)).toEqual(['period:1', 'period:2', 'period:3', 'period:7']);
    const f = await moneyFacts(db.pool, cardId);
    expect(f.balance).toBe(4_000_000n);
    expect(f.ledgerSum).toBe(f.balance);
  });
});
