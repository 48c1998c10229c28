import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exportCell, exportRow, restoreCell, terminalText } from '../../src/store/admin/cells.ts';
import { formatRatesCsv, parseRatesCsv } from '../../src/billing/rates-csv.ts';
import { formatAmount } from '../../src/store/admin/format.ts';

describe('exportCell: spreadsheet formula injection (OWASP CSV injection)', () => {
  it('quotes every cell a spreadsheet could read as a formula', () => {
    for (const evil of ['=HYPERLINK("http://x","y")', '+1+cmd|" /C calc"!A0', '-2+3+cmd|" /C calc"!A0', '@SUM(1+1)*cmd', "'=1+1"]) {
      expect(exportCell(evil)).toBe(`'${evil}`);
    }
    // Tab and CR lead a formula in some spreadsheets: removed with every control character, and what is left is
    // checked again.
    expect(exportCell('\t=1+1')).toBe("'=1+1");
    expect(exportCell('\r=1+1')).toBe("'=1+1");
    expect(exportCell('a\u0000b\u001bc\u007fd\u009be\nf')).toBe('abcdef');
  });

  it('leaves plain numbers (money, caller IDs, durations) and ordinary text as they are', () => {
    for (const v of ['-1.50', '4.37', '0', '+15551234567', '15551234567', 'USA', 'NORMAL_CLEARING', '2026-12-31T00:00:00.000Z', '']) {
      expect(exportCell(v)).toBe(v);
    }
    expect(exportCell(-1n)).toBe('-1');
    expect(exportCell(null)).toBe('');
    expect(exportCell(formatAmount(-1_500_000n))).toBe('-1.50');
    expect(exportRow(['=x', '-0.25', 12])).toEqual(["'=x", '-0.25', '12']);
  });

  it('restoreCell undoes exportCell exactly for any text without control characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }).map((s) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '')), (s) => {
        expect(restoreCell(exportCell(s))).toBe(s);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.constantFrom('=', '+', '-', '@', "'", 'a', '1'), fc.string(), (lead, rest) => {
        const s = (lead + rest).replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
        expect(restoreCell(exportCell(s))).toBe(s);
        expect(exportCell(s)).not.toMatch(/^\s*[=@]|^\s*[+-](?!\d+(\.\d+)?$)/);
      }),
      { numRuns: 2000 },
    );
  });

  it('a rate table with hostile destinations exports neutralised and re-imports exactly', async () => {
    const rows = [
      { prefix: '1', destination: '=HYPERLINK("http://evil","click")', ratePerMin: 10_000n, connectFee: 0n, initialIncrement: 60, subsequentIncrement: 60, effectiveFrom: null, effectiveTo: null },
      { prefix: '44', destination: "'quoted", ratePerMin: 20_000n, connectFee: 0n, initialIncrement: 60, subsequentIncrement: 60, effectiveFrom: null, effectiveTo: null },
      { prefix: '33', destination: '-France', ratePerMin: 30_000n, connectFee: 0n, initialIncrement: 60, subsequentIncrement: 60, effectiveFrom: null, effectiveTo: null },
    ];
    const csv = formatRatesCsv(rows, 2);
    expect(csv).toContain(`"'=HYPERLINK(""http://evil"",""click"")"`);
    expect(csv).toContain("''quoted");
    expect(csv).toContain("'-France");
    const back = await parseRatesCsv(csv);
    expect(back.map((r) => r.destination)).toEqual(rows.map((r) => r.destination));
  });
});

describe('terminalText', () => {
  it('drops escape sequences, control characters and bidi overrides', () => {
    expect(terminalText('a\u001b]0;title\u0007b\u001b[2Jc\u009b31md\u202ee\r\nf')).toBe('a]0;titleb[2Jc31mdef');
  });
});

describe('leading spaces', () => {
  it('a formula after spaces is quoted too, and restores exactly', () => {
    expect(exportCell('  =1+1')).toBe("'  =1+1");
    expect(restoreCell("'  =1+1")).toBe('  =1+1');
    expect(exportCell(' -1.5')).toBe("' -1.5");
    expect(exportCell('a =1')).toBe('a =1');
  });
});
