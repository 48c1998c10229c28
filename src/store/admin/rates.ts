import { z } from 'zod';
import { RateImportError, type RateCsvInput } from '../../billing/rates-csv.ts';
import type { Writable } from 'node:stream';
import type { StreamOptions } from './export-stream.ts';
import { streamRates, getRateTable, importRates as importRatesCsv, listRateTables, listRates } from '../rates.ts';
import { formatAtLeast } from './format.ts';
import type { AdminContext } from './context.ts';
import { AdminError, notFound } from './errors.ts';
import { booleanInput, pageInput, parseInput, wholeNumber } from './input.ts';

const tableName = z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . -');

export const rateImportOptionsSchema = z.object({
  currency: z.string().trim().regex(/^[A-Za-z]{3}$/, 'must be a 3-letter ISO code').transform((s) => s.toUpperCase()).optional(),
  decimals: wholeNumber(0, 6).optional(),
  rounding: z.enum(['up', 'half_up', 'down']).optional(),
  minBillable: wholeNumber(0, 86_400).optional(),
  merge: booleanInput.default(false),
});
export type RateImportOptionsInput = z.input<typeof rateImportOptionsSchema>;

/** Imports a rate CSV (all or nothing); a bad file's error lists every bad line with its number. */
export async function importRateTable(ctx: AdminContext, table: string, csv: RateCsvInput, rawOpts: RateImportOptionsInput = {}) {
  const name = parseInput(tableName, table, 'table');
  const o = parseInput(rateImportOptionsSchema, rawOpts);
  try {
    return await importRatesCsv(ctx.pool, name, csv, {
      mode: o.merge ? 'merge' : 'replace',
      ...(o.currency !== undefined && { currency: o.currency }),
      ...(o.decimals !== undefined && { decimals: o.decimals }),
      ...(o.rounding !== undefined && { rounding: o.rounding }),
      ...(o.minBillable !== undefined && { minBillableSeconds: o.minBillable }),
    });
  } catch (err) {
    if (err instanceof RateImportError) {
      throw new AdminError(err.code === 'RATE_TABLE_MISMATCH' ? 'CONFLICT' : 'INVALID_INPUT', err.message, err.errors);
    }
    throw err;
  }
}

/** A valid rate table name (INVALID_INPUT otherwise). */
export const rateTableName = (table: string): string => parseInput(tableName, table, 'table');

/** Checks the table name and that it exists (before an answer or a file is started). */
export async function requireRateTable(ctx: AdminContext, table: string): Promise<string> {
  const name = parseInput(tableName, table, 'table');
  if (!(await getRateTable(ctx.pool, name))) throw notFound(`unknown rate table "${name}"`);
  return name;
}

/** Streams a rate table as CSV in the import format (constant memory); returns the number of rates. */
export async function exportRateTable(ctx: AdminContext, table: string, out: Writable, opts: StreamOptions = {}): Promise<number> {
  const name = await requireRateTable(ctx, table);
  return streamRates(ctx.pool, name, out, opts);
}

export async function listRateTablesAdmin(ctx: AdminContext) {
  return listRateTables(ctx.pool);
}

/** A table's rates, amounts formatted with the table's decimals (at least 2, exact to the micro when finer). */
export async function listTableRates(ctx: AdminContext, table: string, page: { limit?: number | string; offset?: number | string; prefix?: string } = {}) {
  const name = parseInput(tableName, table, 'table');
  const p = parseInput(z.object({ ...pageInput, prefix: z.string().regex(/^\d{1,20}$/).optional() }), page);
  const info = await getRateTable(ctx.pool, name);
  if (!info) throw notFound(`unknown rate table "${name}"`);
  const rows = await listRates(ctx.pool, name, { limit: p.limit + 1, offset: p.offset, ...(p.prefix && { prefix: p.prefix }) });
  const fmt = (m: bigint) => formatAtLeast(m, info.decimals);
  return {
    table: info,
    hasMore: rows.length > p.limit,
    items: rows.slice(0, p.limit).map((r) => ({
      prefix: r.prefix,
      destination: r.destination,
      rate: fmt(r.ratePerMin),
      connectFee: fmt(r.connectFee),
      initialIncrement: r.initialIncrement,
      subsequentIncrement: r.subsequentIncrement,
      effectiveFrom: r.effectiveFrom?.toISOString() ?? null,
      effectiveTo: r.effectiveTo?.toISOString() ?? null,
    })),
  };
}
