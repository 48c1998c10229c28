import type { RateFields } from './prefix-index.ts';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, type CsvError } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { formatMoney, MoneyFormatError, parseMoney, type Micros } from '../money/money.ts';
import { exportRow, restoreCell } from '../store/admin/cells.ts';

/**
 * Rate CSV format (import and export use the same one).
 *
 * Header row required; column names are case-insensitive, in any order:
 *   prefix                required, 1..20 digits (no "+", no spaces)
 *   rate                  required, per minute, decimal with up to 6 decimals ("0.0123"), >= 0
 *   destination           optional text (one line), default ""
 *   connect_fee           optional, decimal >= 0, empty = 0
 *   initial_increment     optional, whole seconds 1..86400, empty = 60
 *   subsequent_increment  optional, whole seconds 1..86400, empty = 60
 *   effective_from        optional ISO 8601 date or date-time, empty = since always
 *   effective_to          optional ISO 8601, exclusive, empty = for ever; must be after effective_from
 * Empty increments default to 60/60 independently, like the database column defaults, so a CSV row and an SQL
 * insert that omit them mean the same thing (per-minute billing, the conservative choice). A date-time without an
 * offset is UTC. An unknown column is an error (a misspelt "conect_fee" must not silently import free connects).
 * Amounts are parsed as decimal strings into micros; no float is involved.
 */
export const RATE_CSV_COLUMNS = [
  'prefix',
  'destination',
  'rate',
  'connect_fee',
  'initial_increment',
  'subsequent_increment',
  'effective_from',
  'effective_to',
] as const;
export type RateCsvColumn = (typeof RATE_CSV_COLUMNS)[number];

const REQUIRED: readonly RateCsvColumn[] = ['prefix', 'rate'];
export const DEFAULT_INCREMENT = 60;
const MAX_INCREMENT = 86_400;

/** A validated CSV row. `line` is the line in the file where its record starts (the header is line 1). */
export interface RateCsvRow extends RateFields {
  line: number;
}

export interface RateCsvIssue {
  line: number;
  message: string;
}

export type RateImportErrorCode = 'RATE_CSV_INVALID' | 'RATE_TABLE_MISMATCH';

/** At most this many problems are listed; the rest are only counted. */
export const MAX_LISTED_ISSUES = 100;

/**
 * A rate import that changed nothing. `issues` lists the first problems found (for RATE_CSV_INVALID: the first
 * MAX_LISTED_ISSUES bad lines); `moreIssues` counts the ones not listed.
 */
export class RateImportError extends Error {
  readonly code: RateImportErrorCode;
  readonly issues: readonly RateCsvIssue[];
  readonly moreIssues: number;

  constructor(code: RateImportErrorCode, issues: RateCsvIssue[], summary?: string, moreIssues = 0) {
    const total = issues.length + moreIssues;
    const shown = issues.slice(0, 20).map(formatIssue);
    const more = total > shown.length ? `; ... ${total - shown.length} more` : '';
    super(summary ?? `rate CSV rejected, nothing imported (${total} error${total === 1 ? '' : 's'}): ${shown.join('; ')}${more}`);
    this.name = 'RateImportError';
    this.code = code;
    this.issues = issues;
    this.moreIssues = moreIssues;
  }

  /** "line 7: rate 'abc' is not a decimal number", one per listed issue, then "... and N more errors". */
  get errors(): string[] {
    const lines = this.issues.map(formatIssue);
    if (this.moreIssues > 0) lines.push(`... and ${this.moreIssues} more error${this.moreIssues === 1 ? '' : 's'} (not listed)`);
    return lines;
  }
}

function formatIssue(issue: RateCsvIssue): string {
  return `line ${issue.line}: ${issue.message}`;
}

export type RateCsvInput = string | Uint8Array | NodeJS.ReadableStream | AsyncIterable<string | Uint8Array>;

/**
 * Parses and validates a whole rate CSV into memory. Every line is checked; if any is bad, throws
 * RateImportError('RATE_CSV_INVALID') listing the first MAX_LISTED_ISSUES problems and counting the rest, so a
 * bad file can never be half imported. For files of any size use readRatesCsv (batches, bounded memory).
 */
export async function parseRatesCsv(input: RateCsvInput): Promise<RateCsvRow[]> {
  const rows: RateCsvRow[] = [];
  const seen = new Map<string, number>();
  const r = await readRatesCsv(
    input,
    (batch) => {
      for (const row of batch) rows.push(row);
    },
    {
      duplicate: (row) => {
        const key = `${row.prefix}|${row.effectiveFrom ? row.effectiveFrom.toISOString() : ''}`;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, row.line);
        return first;
      },
    },
  );
  if (r.issues.length > 0) throw new RateImportError('RATE_CSV_INVALID', r.issues, undefined, r.moreIssues);
  return rows;
}

/** The message for a row that repeats (prefix, effective_from) of an earlier line. */
export function duplicateMessage(row: Pick<RateCsvRow, 'prefix' | 'effectiveFrom'>, firstLine: number): string {
  return `duplicate of line ${firstLine}: prefix ${row.prefix} with the same effective_from (${row.effectiveFrom ? row.effectiveFrom.toISOString() : 'empty'})`;
}

export interface ReadRatesOptions {
  /** Valid rows per onRows call (default 5000). */
  batchSize?: number;
  /** Problems listed before the rest are only counted (default MAX_LISTED_ISSUES). */
  maxIssues?: number;
  /** The line of an earlier row with the same (prefix, effective_from), if any; omit to check elsewhere (SQL). */
  duplicate?: (row: RateCsvRow) => number | undefined;
}

export interface ReadRatesResult {
  /** Valid rows handed to onRows. */
  rows: number;
  /** The first problems, by line. */
  issues: RateCsvIssue[];
  /** Problems found beyond the listed ones. */
  moreIssues: number;
}

/** Records between two yields to the event loop: parsing a big file never freezes calls and requests. */
const YIELD_EVERY = 2_000;
/** A string or buffer input is fed to the parser in pieces of this size (one piece is parsed synchronously). */
const PIECE = 64 * 1024;

/**
 * Reads a rate CSV incrementally: valid rows go to `onRows` in batches (which may await, e.g. to insert them),
 * problems are collected up to opts.maxIssues and counted beyond. Memory stays bounded by one batch plus the
 * listed problems whatever the size of the file, and the parser yields to the event loop as it goes.
 */
export async function readRatesCsv(
  input: RateCsvInput,
  onRows: (rows: RateCsvRow[]) => Promise<void> | void,
  opts: ReadRatesOptions = {},
): Promise<ReadRatesResult> {
  const { batchSize = 5_000, maxIssues = MAX_LISTED_ISSUES } = opts;
  const issues: RateCsvIssue[] = [];
  let moreIssues = 0;
  const note: IssueSink = (line, message) => {
    if (issues.length < maxIssues) issues.push({ line, message });
    else moreIssues++;
  };
  let batch: RateCsvRow[] = [];
  let rows = 0;
  let columns: (RateCsvColumn | undefined)[] | undefined;
  let headerOk = false;
  let sinceYield = 0;

  const parser = parse({
    bom: true,
    info: true,
    relax_column_count: true,
    skip_records_with_error: true,
    raw: true,
    on_skip: (err: CsvError | undefined, raw: string | undefined) => {
      // err.lines is where the parser gave up; report the line where the broken record starts.
      if (err) note(errorLine(err) - (raw ? lineBreaks([raw.replace(/[\r\n]+$/, '')]) : 0), csvMessage(err));
      return undefined;
    },
  });
  const feeding = pipeline(pieces(input), parser);

  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
      const { record } = item;
      const line = item.info.lines - lineBreaks(record);
      if (columns === undefined) {
        columns = [];
        headerOk = readHeader(record, columns, note, line);
        continue;
      }
      if (record.every((f) => f.trim() === '')) continue; // empty (or all-empty) lines, e.g. trailing ones
      if (!headerOk) continue;
      if (record.length !== columns.length) {
        note(line, `expected ${columns.length} fields (as in the header), got ${record.length}`);
        continue;
      }
      const row = readRow(record, columns, line, note);
      if (!row) continue;
      const first = opts.duplicate?.(row);
      if (first !== undefined) {
        note(line, duplicateMessage(row, first));
        continue;
      }
      rows++;
      // Once the file is known to be bad its rows are only checked, no longer handed on.
      if (issues.length > 0) continue;
      batch.push(row);
      if (batch.length >= batchSize) {
        const full = batch;
        batch = [];
        await onRows(full);
      }
    }
    await feeding;
  } catch (err) {
    await feeding.catch(() => {});
    const csvErr = err as Partial<CsvError> & Error;
    if (typeof csvErr.code === 'string' && csvErr.code.startsWith('CSV_')) {
      note(errorLine(csvErr as CsvError), csvMessage(csvErr as CsvError));
    } else {
      throw err;
    }
  }
  if (columns === undefined) note(1, 'the file is empty: a header row is required');
  if (issues.length === 0 && batch.length > 0) await onRows(batch);
  issues.sort((a, b) => a.line - b.line);
  return { rows, issues, moreIssues };
}

type IssueSink = (line: number, message: string) => void;

function pieces(input: RateCsvInput): Readable {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    return Readable.from(
      (function* () {
        for (let i = 0; i < input.length; i += PIECE) yield input.slice(i, i + PIECE);
      })(),
    );
  }
  return Readable.from(input);
}

function errorLine(err: CsvError): number {
  return typeof err.lines === 'number' ? err.lines : 0;
}

function csvMessage(err: CsvError): string {
  // csv-parse puts "at line N" in its own messages; the issue already carries the line.
  return `malformed CSV: ${err.message.replace(/\s*(at|on) line \d+/, '')}`;
}

/** Line breaks inside quoted fields, counted as csv-parse counts lines (CR and LF each), to find a record's first line. */
function lineBreaks(record: string[]): number {
  let n = 0;
  for (const f of record) {
    for (let i = 0; i < f.length; i++) {
      const c = f.charCodeAt(i);
      if (c === 10 || c === 13) n++;
    }
  }
  return n;
}

function readHeader(record: string[], columns: (RateCsvColumn | undefined)[], note: IssueSink, line: number): boolean {
  let ok = true;
  const bad = (message: string) => {
    ok = false;
    note(line, message);
  };
  const known = new Set<string>(RATE_CSV_COLUMNS);
  const found = new Set<string>();
  for (const raw of record) {
    const name = raw.trim().toLowerCase();
    if (!known.has(name)) {
      bad(name === '' ? 'empty column name in the header' : `unknown column '${raw.trim()}' (expected: ${RATE_CSV_COLUMNS.join(', ')})`);
      columns.push(undefined);
    } else if (found.has(name)) {
      bad(`column '${name}' appears twice`);
      columns.push(undefined);
    } else {
      found.add(name);
      columns.push(name as RateCsvColumn);
    }
  }
  for (const name of REQUIRED) {
    if (!found.has(name)) bad(`missing column '${name}'`);
  }
  return ok;
}

function readRow(record: string[], columns: (RateCsvColumn | undefined)[], line: number, note: IssueSink): RateCsvRow | undefined {
  const field: Partial<Record<RateCsvColumn, string>> = {};
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i];
    if (c) field[c] = record[i]!.trim();
  }
  let ok = true;
  const bad = (message: string) => {
    ok = false;
    note(line, message);
  };

  const prefix = field.prefix ?? '';
  if (!/^[0-9]{1,20}$/.test(prefix)) bad(`prefix '${prefix}' must be 1 to 20 digits`);

  // An exported file carries destinations quoted against spreadsheet formulas ('=x): read them back as they were.
  const destination = restoreCell(field.destination ?? '').trim();
  if (/[\r\n]/.test(destination)) bad('destination must be on one line');
  else if (/[\u0000-\u001f\u007f]/.test(destination)) bad('destination must not contain control characters');

  const ratePerMin = money(field.rate ?? '', 'rate', true, bad);
  const connectFee = money(field.connect_fee ?? '', 'connect_fee', false, bad);
  const initialIncrement = increment(field.initial_increment ?? '', 'initial_increment', bad);
  const subsequentIncrement = increment(field.subsequent_increment ?? '', 'subsequent_increment', bad);
  const effectiveFrom = date(field.effective_from ?? '', 'effective_from', bad);
  const effectiveTo = date(field.effective_to ?? '', 'effective_to', bad);
  if (effectiveFrom && effectiveTo && effectiveTo.getTime() <= effectiveFrom.getTime()) {
    bad(`effective_to '${field.effective_to}' must be after effective_from '${field.effective_from}'`);
  }
  if (!ok) return undefined;
  return {
    line,
    prefix,
    destination,
    ratePerMin: ratePerMin!,
    connectFee: connectFee!,
    initialIncrement: initialIncrement!,
    subsequentIncrement: subsequentIncrement!,
    effectiveFrom: effectiveFrom ?? null,
    effectiveTo: effectiveTo ?? null,
  };
}

function money(text: string, name: string, required: boolean, bad: (m: string) => void): Micros | undefined {
  if (text === '') {
    if (required) bad(`${name} is empty`);
    return required ? undefined : 0n;
  }
  let v: Micros;
  try {
    v = parseMoney(text);
  } catch (err) {
    if (!(err instanceof MoneyFormatError)) throw err;
    bad(`${name} '${text}' is not a decimal number (at most 6 decimals, e.g. 0.0125)`);
    return undefined;
  }
  if (v < 0n) {
    bad(`${name} '${text}' must not be negative`);
    return undefined;
  }
  return v;
}

function increment(text: string, name: string, bad: (m: string) => void): number | undefined {
  if (text === '') return DEFAULT_INCREMENT;
  const n = /^[0-9]{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_INCREMENT)) {
    bad(`${name} '${text}' must be a whole number of seconds from 1 to ${MAX_INCREMENT}`);
    return undefined;
  }
  return n;
}

const DATE_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|z|[+-]\d{2}:?\d{2})?)?$/;

/** ISO 8601 date or date-time; no offset means UTC. Impossible dates (2025-02-30, 24:00) are refused. */
export function parseIsoDate(text: string): Date | undefined {
  const m = DATE_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', off] = m;
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(frac.padEnd(3, '0'))] as const;
  const ms = Date.UTC(...parts);
  const check = new Date(ms);
  if (
    check.getUTCFullYear() !== parts[0] ||
    check.getUTCMonth() !== parts[1] ||
    check.getUTCDate() !== parts[2] ||
    check.getUTCHours() !== parts[3] ||
    check.getUTCMinutes() !== parts[4] ||
    check.getUTCSeconds() !== parts[5]
  ) {
    return undefined;
  }
  let offsetMin = 0;
  if (off && off !== 'Z' && off !== 'z') {
    const om = /^([+-])(\d{2}):?(\d{2})$/.exec(off)!;
    if (Number(om[2]) > 23 || Number(om[3]) > 59) return undefined;
    offsetMin = (om[1] === '-' ? -1 : 1) * (Number(om[2]) * 60 + Number(om[3]));
  }
  return new Date(ms - offsetMin * 60_000);
}

function date(text: string, name: string, bad: (m: string) => void): Date | undefined {
  if (text === '') return undefined;
  const v = parseIsoDate(text);
  if (!v) bad(`${name} '${text}' is not an ISO 8601 date (e.g. 2025-01-31 or 2025-01-31T00:00:00Z)`);
  return v;
}

/** What exportRates writes: one rate row. */
export type RateCsvRecord = RateFields;

/** Exact decimal text for micros: all significant decimals, never fewer than `minDecimals` ("0.0125", "1.00"). */
export function formatRateAmount(v: Micros, minDecimals = 0): string {
  const full = formatMoney(v, 6);
  const [whole, frac = ''] = full.split('.');
  let keep = frac.replace(/0+$/, '');
  if (keep.length < minDecimals) keep = frac.slice(0, minDecimals);
  return keep ? `${whole}.${keep}` : whole!;
}

/** One rate's cells in RATE_CSV_COLUMNS order (the file export and the streamed export share it). */
export function rateCsvCells(r: RateCsvRecord, minDecimals = 0): string[] {
  return [
    r.prefix,
    r.destination,
    formatRateAmount(r.ratePerMin, minDecimals),
    formatRateAmount(r.connectFee, minDecimals),
    String(r.initialIncrement),
    String(r.subsequentIncrement),
    r.effectiveFrom ? r.effectiveFrom.toISOString() : '',
    r.effectiveTo ? r.effectiveTo.toISOString() : '',
  ];
}

/** Writes rates in the import format (header + one line per rate); parseRatesCsv reads it back exactly. */
export function formatRatesCsv(rates: Iterable<RateCsvRecord>, minDecimals = 0): string {
  const rows: string[][] = [[...RATE_CSV_COLUMNS]];
  for (const r of rates) rows.push(exportRow(rateCsvCells(r, minDecimals)));
  return stringify(rows, { record_delimiter: '\n' });
}
