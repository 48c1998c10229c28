import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { COST_ALGORITHM } from '../../src/billing/rating.ts';
import { debitCall } from '../../src/billing/debit.ts';
import { releaseCall } from '../../src/billing/release.ts';
import type { CallPricing } from '../../src/billing/pricing-cache.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { withTransaction } from '../../src/store/db.ts';
import { DebitBatcher, insertCall, toRateSnapshot } from '../../src/store/calls.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { createCard, createSeries, moneyFacts } from './fixtures.ts';

/*
 * The one-statement debit (src/store/calls.ts debitCdr) and the one-statement applyBalanceChange under contention
 * on ONE card: no deadlock, exactly once, never below the floor, balance == sum(ledger), versions strictly rising.
 */

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

// 0.60/min, per-second billing, cents rounded up: 1 s = 0.01.
const RULE = {
  ratePerMin: 600_000n,
  connectFee: 0n,
  initialIncrement: 1,
  subsequentIncrement: 1,
  decimals: 2,
  rounding: 'up' as const,
  minBillableSeconds: 0,
  taxPpm: 0,
};
const rate = toRateSnapshot({ id: '1', prefix: '1', destination: 'test' }, RULE);
const pricing: CallPricing = { rate, maxSeconds: 600, costAlgorithm: COST_ALGORITHM };

async function openCall(cardId: string): Promise<string> {
  const callId = randomUUID();
  await insertCall(db.pool, {
    callId,
    cardId,
    ivrUuid: null,
    did: null,
    callerId: null,
    destination: '15557654321',
    rate,
    costAlgorithm: COST_ALGORITHM,
    maxSeconds: 600,
    reserved: 6_000_000n,
    holdUntil: new Date(Date.now() + 3_600_000),
  });
  return callId;
}

describe('one-statement debit under contention', () => {
  it('many debits, duplicates and new reservations on one card at once: each CDR debited once, no deadlock', async () => {
    const { seriesId } = await createSeries(db.pool, { maxConcurrent: 1000 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000_000n });
    const live = new MemoryLiveBalance();
    const deps = { pool: db.pool, live };
    const ids = await Promise.all(Array.from({ length: 120 }, () => openCall(cardId)));
    const versions: bigint[] = [];
    let debited = 0;
    let duplicates = 0;
    // Every call debited by two CDRs at once (socket + POST), some with the snapshot carried, some read;
    // meanwhile new calls are reserved on the same card (their FK check takes KEY SHARE on the card row).
    await Promise.all([
      ...ids.flatMap((callId, i) =>
        [0, 1].map(async (k) => {
          const r = await debitCall(deps, { callId, answered: true, billsec: 1 + (i % 50), source: k ? 'json_cdr' : 'socket', pricing: (i + k) % 3 ? pricing : undefined });
          if (r.status === 'debited') {
            debited++;
            versions.push(BigInt((await db.pool.query('SELECT balance_version FROM ledger l JOIN cards c ON c.id = l.card_id WHERE l.ref = $1', [callId])).rows[0]!.balance_version));
          } else if (r.status === 'duplicate') {
            duplicates++;
            expect(r.cost).toBe(BigInt(1 + (i % 50)) * 10_000n);
            expect(r.billedSeconds).toBe(1 + (i % 50));
          } else throw new Error(r.status);
        }),
      ),
      ...Array.from({ length: 40 }, () => openCall(cardId)),
    ]);
    expect(debited).toBe(ids.length);
    expect(duplicates).toBe(ids.length);
    const f = await moneyFacts(db.pool, cardId);
    expect(f.ledgerSum).toBe(f.balance);
    expect(-f.callDebits).toBe(f.cdrCost);
    expect(f.cdrs).toBe(ids.length);
    expect(f.uncollected).toBe(0n);
    const expected = ids.reduce((s, _, i) => s + BigInt(1 + (i % 50)) * 10_000n, 0n);
    expect(f.cdrCost).toBe(expected);
    // balance_after of the ledger rows, in id order, is the running sum: no lost update.
    const rows = await db.pool.query<{ amount_micros: bigint; balance_after_micros: bigint }>(
      'SELECT amount_micros, balance_after_micros FROM ledger WHERE card_id = $1 ORDER BY id',
      [cardId],
    );
    let running = 0n;
    for (const r of rows.rows) {
      running += r.amount_micros;
      expect(r.balance_after_micros).toBe(running);
    }
    const v = await db.pool.query<{ balance_version: bigint }>('SELECT balance_version FROM cards WHERE id = $1', [cardId]);
    expect(v.rows[0]!.balance_version).toBe(BigInt(rows.rowCount!) + 1n);
  });

  it('clamps at the floor under contention: the shortfall is uncollected, never below -credit_limit', async () => {
    const { seriesId } = await createSeries(db.pool, { maxConcurrent: 1000 });
    const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n, creditLimit: 500_000n });
    const deps = { pool: db.pool, live: new MemoryLiveBalance() };
    const ids = await Promise.all(Array.from({ length: 40 }, () => openCall(cardId)));
    // 40 calls of 0.60 each against 1.50 of room.
    const out = await Promise.all(ids.map((callId) => debitCall(deps, { callId, answered: true, billsec: 60, source: 'socket', pricing })));
    expect(out.every((o) => o.status === 'debited')).toBe(true);
    const f = await moneyFacts(db.pool, cardId);
    expect(f.balance).toBe(-500_000n);
    expect(f.ledgerSum).toBe(f.balance);
    expect(f.cdrCost).toBe(40n * 600_000n);
    expect(f.uncollected).toBe(40n * 600_000n - 1_500_000n);
    expect(-f.callDebits + f.uncollected).toBe(f.cdrCost);
    // A late duplicate changes nothing.
    expect(await debitCall(deps, { callId: ids[0]!, answered: true, billsec: 60, source: 'json_cdr' })).toMatchObject({ status: 'duplicate', cost: 600_000n, balance: -500_000n });
  });

  it('a free call writes a CDR and settles the call but no ledger row; unknown calls change nothing', async () => {
    const { seriesId } = await createSeries(db.pool);
    const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n });
    const deps = { pool: db.pool, live: new MemoryLiveBalance() };
    const callId = await openCall(cardId);
    expect(await debitCall(deps, { callId, answered: true, billsec: 0, source: 'socket', pricing })).toMatchObject({ status: 'debited', cost: 0n, balance: 1_000_000n });
    const st = await db.pool.query('SELECT status FROM calls WHERE call_id = $1', [callId]);
    expect(st.rows[0]!.status).toBe('settled');
    const f = await moneyFacts(db.pool, cardId);
    expect(f.cdrs).toBe(1);
    expect(f.callDebits).toBe(0n);
    expect(await debitCall(deps, { callId: randomUUID(), answered: true, billsec: 5, source: 'socket', pricing })).toMatchObject({ status: 'unknown_call' });
    expect(await debitCall(deps, { callId: 'not-a-uuid', answered: true, billsec: 5, source: 'socket' })).toMatchObject({ status: 'unknown_call' });
    expect(await releaseCall(deps, randomUUID())).toMatchObject({ status: 'unknown_call' });
    const other = await openCall(cardId);
    expect(await releaseCall(deps, other)).toEqual({ status: 'released', callId: other, cardId, balance: 1_000_000n });
  });

  it('applyBalanceChange: concurrent same-ref changes apply once (the others report duplicate), reject and clamp at the floor', async () => {
    const { seriesId } = await createSeries(db.pool);
    const { cardId } = await createCard(db.pool, { seriesId, balance: 1_000_000n, creditLimit: 200_000n });
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        withTransaction(db.pool, (c) => applyBalanceChange(c, { cardId, amount: 300_000n, reason: 'topup', ref: 'k1', onFloor: 'reject' })),
      ),
    );
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect(results.filter((r) => !r.applied && r.reason === 'duplicate')).toHaveLength(11);
    const apply = (amount: bigint, ref: string, onFloor: 'clamp' | 'reject') =>
      withTransaction(db.pool, (c) => applyBalanceChange(c, { cardId, amount, reason: 'adjustment', ref, onFloor }));
    // 1.30 + 0.20 of credit = 1.50 of room.
    expect(await apply(-2_000_000n, 'r1', 'reject')).toEqual({ applied: false, reason: 'below_floor', balanceAfter: 1_300_000n, version: 3n, creditLimit: 200_000n });
    expect(await apply(-2_000_000n, 'c1', 'clamp')).toEqual({ applied: true, amount: -1_500_000n, uncollected: 500_000n, balanceAfter: -200_000n, version: 4n, creditLimit: 200_000n });
    // At the floor: a clamp debits 0 (still one ledger row), a duplicate wins over below_floor.
    expect(await apply(-1n, 'c2', 'clamp')).toMatchObject({ applied: true, amount: 0n, uncollected: 1n, balanceAfter: -200_000n, version: 5n });
    expect(await apply(-1n, 'c1', 'reject')).toMatchObject({ applied: false, reason: 'duplicate' });
    expect(await withTransaction(db.pool, (c) => applyBalanceChange(c, { cardId: '999999999', amount: 1n, reason: 'topup', ref: 'x', onFloor: 'reject' }))).toEqual({
      applied: false,
      reason: 'no_card',
      balanceAfter: 0n,
      version: 0n,
      creditLimit: 0n,
    });
    const f = await moneyFacts(db.pool, cardId);
    expect(f.ledgerSum).toBe(f.balance);
  });
});

describe('debits batched under load (DebitBatcher)', () => {
  const input = (callId: string, seconds: number) => ({
    callId,
    billsec: seconds,
    billmsec: seconds * 1000,
    billedSeconds: seconds,
    cost: BigInt(seconds) * 10_000n,
    hangupCause: 'NORMAL_CLEARING',
    answeredAt: null,
    endedAt: null,
    source: 'socket' as const,
  });

  /** Records the statements the batcher sends: by name, and for the debit statement how many calls each held. */
  function spy() {
    const names: string[] = [];
    const debitSizes: number[] = [];
    const query = db.pool.query.bind(db.pool);
    const pool = Object.create(db.pool) as typeof db.pool;
    pool.query = ((cfg: unknown, ...rest: unknown[]) => {
      names.push(typeof cfg === 'string' ? cfg.slice(0, 20) : String((cfg as { name?: string }).name ?? (cfg as { text: string }).text.slice(0, 20)));
      const values = (cfg as { values?: unknown[] }).values;
      if (names.at(-1) === 'ccard_debit_cdr' && Array.isArray(values?.[0])) debitSizes.push((values[0] as unknown[]).length);
      return (query as (...a: unknown[]) => unknown)(cfg, ...rest);
    }) as typeof db.pool.query;
    return { pool, names, debitSizes };
  }

  it('debits that arrive together share one statement, each exactly once, with the running balance per card', async () => {
    const { seriesId } = await createSeries(db.pool, { maxConcurrent: 1000 });
    const a = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    const b = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    const calls = await Promise.all([...Array.from({ length: 10 }, () => openCall(a.cardId)), ...Array.from({ length: 10 }, () => openCall(b.cardId))]);
    const { pool, names, debitSizes } = spy();
    const batcher = new DebitBatcher(pool);
    // The first goes alone; the other 19 (and a duplicate of one of them, and an unknown call) wait and go together.
    const results = await Promise.all([
      ...calls.map((id, i) => batcher.debit(input(id, 1 + i), 'test')),
      batcher.debit(input(calls[5]!, 6), 'test'),
      batcher.debit(input(randomUUID(), 3), 'test'),
    ]);
    expect(results.slice(0, 20).map((r) => r.outcome)).toEqual(Array(20).fill('debited'));
    expect(results[20]).toMatchObject({ outcome: 'duplicate', prior: { billedSeconds: 6, cost: 60_000n } });
    expect(results[21]).toEqual({ outcome: 'unknown_call' });
    expect(debitSizes.filter((n) => n > 1).length).toBeGreaterThanOrEqual(1);
    expect(names.length).toBeLessThan(calls.length);
    for (const card of [a, b]) {
      const f = await moneyFacts(db.pool, card.cardId);
      expect(f.ledgerSum).toBe(f.balance);
      expect(-f.callDebits).toBe(f.cdrCost);
      const rows = await db.pool.query<{ amount_micros: bigint; balance_after_micros: bigint }>(
        'SELECT amount_micros, balance_after_micros FROM ledger WHERE card_id = $1 ORDER BY id',
        [card.cardId],
      );
      let running = 0n;
      for (const r of rows.rows) {
        running += r.amount_micros;
        expect(r.balance_after_micros).toBe(running);
      }
      const v = await db.pool.query<{ balance_version: bigint }>('SELECT balance_version FROM cards WHERE id = $1', [card.cardId]);
      expect(v.rows[0]!.balance_version).toBe(BigInt(rows.rowCount!) + 1n);
    }
    // Each result reports the card it debited and a balance that card really had.
    const last = results[19]!;
    expect(last.outcome === 'debited' && last.cardId).toBe(b.cardId);
  });

  it('a card that cannot pay its share of a batch: the batch is redone call by call, clamping only that card', async () => {
    const { seriesId } = await createSeries(db.pool, { maxConcurrent: 1000 });
    const rich = await createCard(db.pool, { seriesId, balance: 10_000_000n });
    const poor = await createCard(db.pool, { seriesId, balance: 150_000n });
    const calls = [await openCall(rich.cardId), await openCall(rich.cardId), await openCall(poor.cardId), await openCall(poor.cardId), await openCall(rich.cardId)];
    const { pool, debitSizes } = spy();
    const batcher = new DebitBatcher(pool);
    const results = await Promise.all(calls.map((id) => batcher.debit(input(id, 10), 'test')));
    // A batch was tried, and its calls then went one by one.
    expect(debitSizes.some((n) => n > 1)).toBe(true);
    expect(debitSizes.filter((n) => n === 1).length).toBeGreaterThanOrEqual(calls.length);
    expect(results.map((r) => r.outcome)).toEqual(Array(5).fill('debited'));
    const poorFacts = await moneyFacts(db.pool, poor.cardId);
    expect(poorFacts.balance).toBe(0n);
    expect(poorFacts.uncollected).toBe(50_000n);
    expect(poorFacts.ledgerSum).toBe(0n);
    const richFacts = await moneyFacts(db.pool, rich.cardId);
    expect(richFacts.balance).toBe(10_000_000n - 3n * 100_000n);
    expect(richFacts.ledgerSum).toBe(richFacts.balance);
  });
});
