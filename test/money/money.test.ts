import { describe, expect, it } from 'vitest';
import { divRound, formatMoney, parseMoney, parsePositiveMoney, unitsAndCents } from '../../src/money/money.ts';
import { createTestDb } from '../helpers/env.ts';

describe('money', () => {
  it('parses decimal strings into exact micros', () => {
    expect(parseMoney('4.37')).toBe(4_370_000n);
    expect(parseMoney('-0.5')).toBe(-500_000n);
    expect(parseMoney('12')).toBe(12_000_000n);
    expect(parseMoney('0.000001')).toBe(1n);
    expect(parseMoney('0.1') + parseMoney('0.2')).toBe(parseMoney('0.3'));
  });
  it('rejects junk with a clear message', () => {
    for (const bad of ['', 'abc', '1e3', '1,5', '1.1234567', '--1', '0x10', 'NaN']) {
      expect(() => parseMoney(bad)).toThrow(/invalid amount/);
    }
    expect(() => parsePositiveMoney('0')).toThrow(/greater than zero/);
    expect(() => parsePositiveMoney('-3')).toThrow(/greater than zero/);
  });
  it('formats with a fixed number of decimals (mod_say_en reads 12.5 as five cents)', () => {
    expect(formatMoney(12_500_000n)).toBe('12.50');
    expect(formatMoney(4_370_000n)).toBe('4.37');
    expect(formatMoney(-500_000n)).toBe('-0.50');
    expect(formatMoney(1n, 6)).toBe('0.000001');
    expect(formatMoney(7_000_000n, 0)).toBe('7');
    expect(unitsAndCents(4_370_000n)).toEqual({ units: 4n, cents: 37n });
  });
  it('divides with each rounding rule', () => {
    expect(divRound(7n, 2n, 'down')).toBe(3n);
    expect(divRound(7n, 2n, 'up')).toBe(4n);
    expect(divRound(7n, 2n, 'half_up')).toBe(4n);
    expect(divRound(5n, 3n, 'half_up')).toBe(2n);
    expect(divRound(4n, 3n, 'half_up')).toBe(1n);
    expect(divRound(6n, 3n, 'up')).toBe(2n);
  });
  it('round-trips BIGINT through PostgreSQL as bigint', async () => {
    const db = await createTestDb();
    try {
      const { rows } = await db.pool.query('SELECT $1::bigint AS v', ['9007199254740993']);
      expect(rows[0].v).toBe(9007199254740993n);
    } finally {
      await db.drop();
    }
  });
});

describe('the one money bound', () => {
  it('parseMoney refuses more than 1 000 000 000 either way, and accepts the bound itself', () => {
    expect(parseMoney('1000000000')).toBe(1_000_000_000_000_000n);
    expect(parseMoney('-1000000000')).toBe(-1_000_000_000_000_000n);
    expect(() => parseMoney('1000000000.000001')).toThrow(/at most 1000000000/);
    expect(() => parseMoney('9223372036854')).toThrow(/at most 1000000000/);
    expect(() => parseMoney('-999999999999999')).toThrow(/at most 1000000000/);
  });
});
