/**
 * Text that leaves ccard for a spreadsheet or a terminal. Caller IDs, hangup causes and rate destinations come from
 * the phone network or an operator's file; none of them may become a formula in a spreadsheet (OWASP "CSV
 * injection") or an escape sequence in a terminal.
 *
 * Pure functions, no IO: every export path (cards, CDRs, rates; CLI and API; CSV and XLSX) passes each cell
 * through `exportCell` where a row is turned into cells.
 */

// C0 controls (tab, CR and LF included: a cell is one line), DEL and the C1 controls (0x9B is a one-byte CSI).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// What a terminal also acts on: the bidirectional overrides and isolates (they reorder what the operator reads).
const TERMINAL_EXTRA = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A plain decimal number ("12", "-1.50", "+15551234567"): a spreadsheet reads it as a number, never a formula. */
const PLAIN_NUMBER = /^[+-]?\d+(\.\d+)?$/;
/**
 * Leading characters a spreadsheet may take as the start of a formula (OWASP: = + - @, tab and CR, which are
 * stripped anyway), plus the quote itself so that neutralising stays reversible (see restoreCell).
 */
const FORMULA_LEAD = /^\s*[=+\-@']/; // after spaces too: some spreadsheets skip them

/**
 * One cell for a CSV or XLSX export: control characters removed, and a cell that could start a formula prefixed
 * with a single quote (`=HYPERLINK(…)` → `'=HYPERLINK(…)`). Plain decimal numbers are data, not formulas, and are
 * left as they are, so money columns ("-1.50") stay exact and re-importable.
 */
export function exportCell(value: string | number | bigint | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value).replace(CONTROL, '');
  if (PLAIN_NUMBER.test(text) || !FORMULA_LEAD.test(text)) return text;
  return `'${text}`;
}

/** exportCell over a row. */
export const exportRow = (values: ReadonlyArray<string | number | bigint | null | undefined>): string[] => values.map(exportCell);

/**
 * The inverse of exportCell's quote, for files ccard reads back (a rate CSV it exported): `'=x` → `=x`, `''x` → `'x`.
 * Text that exportCell would not have quoted is returned unchanged.
 */
export function restoreCell(text: string): string {
  if (text.length >= 2 && text[0] === "'" && FORMULA_LEAD.test(text.slice(1)) && !PLAIN_NUMBER.test(text.slice(1))) return text.slice(1);
  return text;
}

/** Operator- or network-controlled text for a terminal: no escape sequences, no control characters, one line. */
export function terminalText(value: string): string {
  return value.replace(CONTROL, '').replace(TERMINAL_EXTRA, '');
}

/** Like terminalText but keeps line breaks (multi-line output such as a rendered table). */
export function terminalLines(value: string): string {
  return value.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '').replace(TERMINAL_EXTRA, '');
}
