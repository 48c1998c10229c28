import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeCard, statusRefusal } from '../../src/billing/lifecycle.ts';
import { CARD_STATUSES, INITIAL_CARD_STATUSES, getCard, type CardStatus } from '../../src/store/cards.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { createCard, createSeries } from './fixtures.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

/** The literals of a table's CHECK constraint on one column, as PostgreSQL holds it after the migrations. */
async function checkedValues(table: string, column: string): Promise<string[]> {
  const r = await db.pool.query<{ def: string }>(
    `SELECT pg_get_constraintdef(c.oid) AS def
       FROM pg_constraint c
       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
      WHERE c.contype = 'c' AND c.conrelid = $1::regclass AND a.attname = $2`,
    [table, column],
  );
  expect(r.rows).toHaveLength(1);
  return [...r.rows[0]!.def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]!);
}

describe('card statuses: one list', () => {
  it("the database's CHECKs allow exactly CARD_STATUSES and INITIAL_CARD_STATUSES", async () => {
    expect((await checkedValues('cards', 'status')).sort()).toEqual([...CARD_STATUSES].sort());
    expect((await checkedValues('series', 'initial_status')).sort()).toEqual([...INITIAL_CARD_STATUSES].sort());
  });

  it('every status has a decision: only pending and active may call', () => {
    expect(Object.fromEntries(CARD_STATUSES.map((s) => [s, statusRefusal(s) ?? 'may call']))).toEqual({
      pending: 'may call',
      active: 'may call',
      disabled: 'disabled',
      expired: 'expired',
    });
  });

  it('authorizeCard refuses a status it does not know instead of letting it through', async () => {
    const { seriesId } = await createSeries(db.pool);
    const { cardId } = await createCard(db.pool, { seriesId, balance: 5_000_000n });
    const card = (await getCard(db.pool, cardId))!;
    expect(await authorizeCard(db.pool, card)).toMatchObject({ ok: true });
    const frozen = { ...card, status: 'frozen' as CardStatus };
    expect(await authorizeCard(db.pool, frozen)).toEqual({ ok: false, reason: 'disabled' });
  });
});
