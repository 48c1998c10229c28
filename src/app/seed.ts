import { applyBalanceChange } from '../billing/ledger.ts';
import { parseMoney, type Micros } from '../money/money.ts';
import { withTransaction, type Pool } from '../store/db.ts';
import { encryptPin, hashPin, type PinKeys } from '../store/pin.ts';

export interface DemoCard {
  id: string;
  serial: string;
  pin: string;
}

export interface DemoData {
  did: string;
  rateTableId: string;
  cards: { rich: DemoCard; poor: DemoCard; pinless: DemoCard };
  callerIdOfPinless: string;
}

interface SeedRate {
  prefix: string;
  destination: string;
  rate: string;
  connectFee: string;
  initial: number;
  subsequent: number;
}

/** The demo rate table: per-minute rates with 30/6 s increments, one connect fee, premium numbers priced high. */
export const DEMO_RATES: SeedRate[] = [
  { prefix: '1', destination: 'USA', rate: '0.020', connectFee: '0', initial: 30, subsequent: 6 },
  { prefix: '1555', destination: 'USA test exchange', rate: '0.050', connectFee: '0.01', initial: 30, subsequent: 6 },
  { prefix: '1555999', destination: 'USA long-call line', rate: '0.500', connectFee: '0', initial: 60, subsequent: 1 },
  { prefix: '44', destination: 'United Kingdom', rate: '0.040', connectFee: '0', initial: 60, subsequent: 60 },
];

async function insertCard(pool: Pool, keys: PinKeys, seriesId: string, serial: string, pin: string, balance: Micros): Promise<DemoCard> {
  return withTransaction(pool, async (c) => {
    const r = await c.query<{ id: bigint }>(
      `INSERT INTO cards (series_id, serial, pin_hash, pin_cipher, status, currency, balance_micros)
       VALUES ($1, $2, $3, $4, 'active', 'USD', 0) RETURNING id`,
      [seriesId, serial, hashPin(keys, pin), encryptPin(keys, pin)],
    );
    const id = String(r.rows[0]!.id);
    await applyBalanceChange(c, { cardId: id, amount: balance, reason: 'initial', ref: 'initial', onFloor: 'reject' });
    return { id, serial, pin };
  });
}

/** Seeds an empty database with one access number, a rate table, a series and three cards. */
export async function seedDemo(pool: Pool, keys: PinKeys): Promise<DemoData> {
  const table = await pool.query<{ id: bigint }>(
    `INSERT INTO rate_tables (name, currency, decimals, rounding) VALUES ('demo', 'USD', 2, 'up') RETURNING id`,
  );
  const rateTableId = String(table.rows[0]!.id);
  for (const r of DEMO_RATES) {
    await pool.query(
      `INSERT INTO rates (rate_table_id, prefix, destination, rate_per_min_micros, connect_fee_micros,
                          initial_increment, subsequent_increment) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [rateTableId, r.prefix, r.destination, parseMoney(r.rate).toString(), parseMoney(r.connectFee).toString(), r.initial, r.subsequent],
    );
  }
  const series = await pool.query<{ id: bigint }>(
    `INSERT INTO series (name, series_number, card_count, initial_balance_micros, rate_table_id, max_concurrent_calls)
     VALUES ('Demo cards', '100', 3, 0, $1, 2) RETURNING id`,
    [rateTableId],
  );
  const seriesId = String(series.rows[0]!.id);
  const rich = await insertCard(pool, keys, seriesId, '100-000000001', '1234567890', parseMoney('5.00'));
  const poor = await insertCard(pool, keys, seriesId, '100-000000002', '2222222222', parseMoney('0.02'));
  const pinless = await insertCard(pool, keys, seriesId, '100-000000003', '3333333333', parseMoney('2.50'));
  const did = '15550001111';
  await pool.query(
    `INSERT INTO access_numbers (did, language, auth_mode, gateway, min_digits, max_digits, denied_prefixes, country_code, national_prefix)
     VALUES ($1, 'en', 'cli-then-pin', 'carrier', 11, 14, '{1900,1976}', '1', '1')`,
    [did],
  );
  const callerIdOfPinless = '15551239999';
  await pool.query(`INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2)`, [callerIdOfPinless, pinless.id]);
  return { did, rateTableId, cards: { rich, poor, pinless }, callerIdOfPinless };
}
