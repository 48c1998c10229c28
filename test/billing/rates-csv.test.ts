import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  formatRateAmount,
  formatRatesCsv,
  parseIsoDate,
  parseRatesCsv,
  RateImportError,
  type RateCsvRow,
} from '../../src/billing/rates-csv.ts';

async function errorsOf(text: string): Promise<string[]> {
  try {
    await parseRatesCsv(text);
  } catch (err) {
    expect(err).toBeInstanceOf(RateImportError);
    expect((err as RateImportError).code).toBe('RATE_CSV_INVALID');
    return (err as RateImportError).errors;
  }
  throw new Error('expected the CSV to be rejected');
}

const HEADER = 'prefix,destination,rate,connect_fee,initial_increment,subsequent_increment,effective_from,effective_to';

describe('parseRatesCsv', () => {
  it('parses every column into exact values', async () => {
    const rows = await parseRatesCsv(
      `${HEADER}\n44,United Kingdom,0.0125,0.05,30,6,2025-01-01,2025-07-01T12:30:00+02:00\n1,"USA, Canada",0.000001,,,,,\n`,
    );
    expect(rows).toEqual<RateCsvRow[]>([
      {
        line: 2,
        prefix: '44',
        destination: 'United Kingdom',
        ratePerMin: 12_500n,
        connectFee: 50_000n,
        initialIncrement: 30,
        subsequentIncrement: 6,
        effectiveFrom: new Date('2025-01-01T00:00:00Z'),
        effectiveTo: new Date('2025-07-01T10:30:00Z'),
      },
      {
        line: 3,
        prefix: '1',
        destination: 'USA, Canada',
        ratePerMin: 1n,
        connectFee: 0n,
        initialIncrement: 60,
        subsequentIncrement: 60,
        effectiveFrom: null,
        effectiveTo: null,
      },
    ]);
  });

  it('only prefix and rate are required; columns in any order, any case; BOM, CRLF and trailing empty lines are fine', async () => {
    const rows = await parseRatesCsv('\ufeffRATE , Prefix\r\n0.10,44\r\n"0.20","33"\r\n\r\n\r\n');
    expect(rows.map((r) => [r.line, r.prefix, r.ratePerMin, r.initialIncrement, r.subsequentIncrement])).toEqual([
      [2, '44', 100_000n, 60, 60],
      [3, '33', 200_000n, 60, 60],
    ]);
  });

  it('reads a stream of chunks split anywhere', async () => {
    const text = `${HEADER}\n44,UK,0.0125,0,60,60,,\n33,France,0.02,0,1,1,,\n`;
    const chunks = text.match(/[\s\S]{1,7}/g)!.map((c) => Buffer.from(c));
    const rows = await parseRatesCsv(Readable.from(chunks));
    expect(rows.map((r) => r.prefix)).toEqual(['44', '33']);
  });

  it('collects every bad line with its line number', async () => {
    const errors = await errorsOf(
      [
        'prefix,rate,connect_fee,initial_increment,subsequent_increment,effective_from,effective_to',
        '44,0.10,,,,,', // 2 ok
        '45,abc,,,,,', // 3
        '46,-0.5,,,,,', // 4
        '4x7,0.1,,,,,', // 5
        '48,0.1,-1,0,1.5,,', // 6: three problems
        '49,0.1,,,,2025-13-01,', // 7
        '50,0.1,,,,2025-02-01,2025-01-01', // 8
        '51,0.1234567,,,,,', // 9
        '44,0.2,,,,,', // 10: duplicate of line 2
        '52,0.1', // 11: too few fields
        '', // empty: skipped
        '53,,,,,,', // 13: empty rate
      ].join('\n'),
    );
    expect(errors).toEqual([
      "line 3: rate 'abc' is not a decimal number (at most 6 decimals, e.g. 0.0125)",
      "line 4: rate '-0.5' must not be negative",
      "line 5: prefix '4x7' must be 1 to 20 digits",
      "line 6: connect_fee '-1' must not be negative",
      "line 6: initial_increment '0' must be a whole number of seconds from 1 to 86400",
      "line 6: subsequent_increment '1.5' must be a whole number of seconds from 1 to 86400",
      "line 7: effective_from '2025-13-01' is not an ISO 8601 date (e.g. 2025-01-31 or 2025-01-31T00:00:00Z)",
      "line 8: effective_to '2025-01-01' must be after effective_from '2025-02-01'",
      "line 9: rate '0.1234567' is not a decimal number (at most 6 decimals, e.g. 0.0125)",
      'line 10: duplicate of line 2: prefix 44 with the same effective_from (empty)',
      'line 11: expected 7 fields (as in the header), got 2',
      'line 13: rate is empty',
    ]);
  });

  it('the same prefix with different effective_from is fine; the same effective_from is a duplicate', async () => {
    const ok = await parseRatesCsv('prefix,rate,effective_from\n44,0.1,\n44,0.2,2025-01-01\n44,0.3,2025-06-01\n');
    expect(ok).toHaveLength(3);
    const errors = await errorsOf('prefix,rate,effective_from\n44,0.1,2025-01-01\n44,0.2,2025-01-01T00:00:00Z\n');
    expect(errors).toEqual(['line 3: duplicate of line 2: prefix 44 with the same effective_from (2025-01-01T00:00:00.000Z)']);
  });

  it('reports malformed quotes at the line of the broken record, and still checks the other lines', async () => {
    const errors = await errorsOf('prefix,rate\n44,0"1\n45,zz\n46,"0.1\n47,0.2\n');
    expect(errors[0]).toMatch(/^line 2: malformed CSV: Invalid Opening Quote/);
    expect(errors[1]).toBe("line 3: rate 'zz' is not a decimal number (at most 6 decimals, e.g. 0.0125)");
    expect(errors[2]).toMatch(/^line 4: malformed CSV: Quote Not Closed/);
    expect(errors).toHaveLength(3);
  });

  it('refuses a missing header column, an unknown or duplicate column, and an empty file', async () => {
    expect(await errorsOf('prefix,destination\n44,UK\n')).toEqual(["line 1: missing column 'rate'"]);
    expect(await errorsOf('prefix,rate,conect_fee\n44,0.1,0.5\n')).toEqual([
      "line 1: unknown column 'conect_fee' (expected: prefix, destination, rate, connect_fee, initial_increment, subsequent_increment, effective_from, effective_to)",
    ]);
    expect(await errorsOf('prefix,rate,rate\n44,0.1,0.2\n')).toEqual(["line 1: column 'rate' appears twice"]);
    expect(await errorsOf('')).toEqual(['line 1: the file is empty: a header row is required']);
  });

  it('a multi-line quoted destination is refused at the line where its record starts', async () => {
    expect(await errorsOf('prefix,destination,rate\n44,"United\nKingdom",0.1\n33,"France",x\n')).toEqual([
      'line 2: destination must be on one line',
      "line 4: rate 'x' is not a decimal number (at most 6 decimals, e.g. 0.0125)",
    ]);
  });

  it('the error message lists the lines and says nothing was imported', async () => {
    const err = await parseRatesCsv('prefix,rate\n44,abc\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateImportError);
    expect((err as Error).message).toBe(
      "rate CSV rejected, nothing imported (1 error): line 2: rate 'abc' is not a decimal number (at most 6 decimals, e.g. 0.0125)",
    );
    expect((err as RateImportError).issues).toEqual([{ line: 2, message: "rate 'abc' is not a decimal number (at most 6 decimals, e.g. 0.0125)" }]);
  });
});

describe('parseIsoDate', () => {
  it('accepts dates and date-times (UTC unless an offset is given) and refuses impossible ones', () => {
    expect(parseIsoDate('2025-01-31')?.toISOString()).toBe('2025-01-31T00:00:00.000Z');
    expect(parseIsoDate('2025-01-31T10:20')?.toISOString()).toBe('2025-01-31T10:20:00.000Z');
    expect(parseIsoDate('2025-01-31 10:20:30.5Z')?.toISOString()).toBe('2025-01-31T10:20:30.500Z');
    expect(parseIsoDate('2025-01-31T10:20:30-0500')?.toISOString()).toBe('2025-01-31T15:20:30.000Z');
    for (const bad of ['2025-02-30', '2025-1-5', '2025-01-01T24:00', '31/01/2025', 'tomorrow', '2025-01-01T10:00+25:00']) {
      expect(parseIsoDate(bad)).toBeUndefined();
    }
  });
});

describe('formatRatesCsv', () => {
  it('writes amounts exactly and reads back to the same rows (property)', async () => {
    const rowArb = fc.record({
      prefix: fc.stringMatching(/^[0-9]{1,20}$/),
      destination: fc.stringMatching(/^[A-Za-z ,"'-]{0,20}$/),
      ratePerMin: fc.bigInt({ min: 0n, max: 10n ** 15n }),
      connectFee: fc.bigInt({ min: 0n, max: 10n ** 12n }),
      initialIncrement: fc.integer({ min: 1, max: 86_400 }),
      subsequentIncrement: fc.integer({ min: 1, max: 86_400 }),
      effectiveFrom: fc.option(fc.date({ min: new Date('2000-01-01'), max: new Date('2090-01-01'), noInvalidDate: true }), { nil: null }),
      effectiveTo: fc.constant(null),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(rowArb, { selector: (r) => r.prefix, maxLength: 20 }), fc.integer({ min: 0, max: 6 }), async (rows, minDecimals) => {
        const text = formatRatesCsv(rows, minDecimals);
        const back = await parseRatesCsv(text);
        expect(back.map(({ line: _line, ...r }) => r)).toEqual(rows.map((r) => ({ ...r, destination: r.destination.trim() })));
      }),
      { numRuns: 200 },
    );
  });

  it('formats amounts with all significant decimals and at least the table decimals', () => {
    expect(formatRateAmount(12_500n)).toBe('0.0125');
    expect(formatRateAmount(12_500n, 2)).toBe('0.0125');
    expect(formatRateAmount(100_000n, 2)).toBe('0.10');
    expect(formatRateAmount(7_000_000n)).toBe('7');
    expect(formatRateAmount(1n, 0)).toBe('0.000001');
  });
});
