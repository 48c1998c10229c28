import type { Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import { stringify } from 'csv-stringify/sync';
import { exportRow } from './cells.ts';
import type { Pool } from '../db.ts';
import { forEachBatch } from './cursor.ts';

/**
 * Streamed exports (cards, CDRs, rates; the API, the CLI and the console share them). Every export holds one
 * database connection (a cursor) while it runs, so it must never outlive its reader: a write waits for the output
 * to drain only until the output closes or fails, the caller's signal fires, or `stallMs` pass without the reader
 * taking anything. Then the export fails, its cursor is rolled back and its connection goes back to the pool.
 */
export interface StreamOptions {
  /** Fires when the export must stop (the client went away, the service is shutting down). */
  signal?: AbortSignal;
  /** Longest wait for the reader to take buffered output (0: no limit, e.g. a file). */
  stallMs?: number;
}

/** The output went away (client disconnected, EPIPE, destroyed) or stalled: the export stops. */
export class ExportAbortedError extends Error {
  readonly code = 'EXPORT_ABORTED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExportAbortedError';
  }
}

/** One export's view of its output: backpressure with a way out, and the output's errors captured, never thrown. */
export class ExportSink {
  private failure: Error | undefined;
  private readonly onError = (err: Error) => {
    this.failure ??= new ExportAbortedError(`the output failed: ${err.message}`, { cause: err });
  };

  constructor(
    readonly out: Writable,
    private readonly opts: StreamOptions = {},
  ) {
    // Listening keeps a failing output (EPIPE, a destroyed response) from crashing the process.
    out.on('error', this.onError);
  }

  /** Throws if the export must stop. */
  check(): void {
    if (this.failure) throw this.failure;
    if (this.opts.signal?.aborted) throw new ExportAbortedError(`export stopped: ${reason(this.opts.signal)}`);
    if (this.out.destroyed || this.out.writableEnded) throw new ExportAbortedError('the output was closed before the export finished');
  }

  async write(chunk: string | Buffer): Promise<void> {
    this.check();
    if (!this.out.write(chunk)) await this.drained();
  }

  /** Waits while the output holds more than its high-water mark (writers that write on their own, e.g. XLSX). */
  async writable(): Promise<void> {
    this.check();
    if (this.out.writableNeedDrain) await this.drained();
  }

  /** Stops listening to the output (call when the export is over). */
  done(): void {
    this.out.off('error', this.onError);
    // A late error of an output we no longer write to must not crash the process either.
    this.out.on('error', () => {});
  }

  private drained(): Promise<void> {
    const { out } = this;
    const { signal, stallMs = 0 } = this.opts;
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: Error) => {
        out.off('drain', onDrain);
        out.off('close', onClose);
        out.off('error', onFail);
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => finish();
      const onClose = () => finish(this.failure ?? new ExportAbortedError('the output was closed before the export finished'));
      const onFail = (err: Error) => finish(new ExportAbortedError(`the output failed: ${err.message}`, { cause: err }));
      const onAbort = () => finish(new ExportAbortedError(`export stopped: ${reason(signal!)}`));
      const timer =
        stallMs > 0
          ? setTimeout(() => {
              const err = new ExportAbortedError(`the reader took nothing for ${Math.round(stallMs / 1000)} s: export stopped`);
              this.failure ??= err;
              finish(err);
            }, stallMs)
          : undefined;
      out.on('drain', onDrain);
      out.on('close', onClose);
      out.on('error', onFail);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function reason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted';
}

/**
 * The one place a row of cells becomes CSV text (every export goes through it, so cell rules, e.g. neutralising
 * spreadsheet formulas, apply to all of them).
 */
export function csvText(rows: readonly (readonly unknown[])[]): string {
  // Every cell of every CSV export: formulas neutralised and control characters stripped (cells.ts).
  return stringify(rows.map((r) => exportRow(r as Parameters<typeof exportRow>[0])));
}

export interface CsvExport<R> {
  sql: string;
  params: unknown[];
  header: readonly string[];
  /** A database row's cells, in header order. */
  cells: (row: R) => readonly unknown[];
}

/**
 * Streams a query as CSV through a cursor in constant memory. Nothing is written before the first batch of rows
 * has been read (the header goes with it), so an HTTP answer can still fail cleanly (503, not a 200 with only a
 * header row) when the database cannot serve the export. Returns the number of rows.
 */
export async function streamCsv<R extends object>(pool: Pool, out: Writable, spec: CsvExport<R>, opts: StreamOptions = {}): Promise<number> {
  const sink = new ExportSink(out, opts);
  let headerSent = false;
  try {
    const n = await forEachBatch<R>(
      pool,
      spec.sql,
      spec.params,
      async (rows) => {
        const lines = rows.map(spec.cells);
        await sink.write(csvText(headerSent ? lines : [spec.header, ...lines]));
        headerSent = true;
      },
      { signal: opts.signal },
    );
    if (!headerSent) await sink.write(csvText([spec.header]));
    return n;
  } finally {
    sink.done();
  }
}

/**
 * Streams a query as an XLSX workbook (one sheet) through a cursor, with the same rules as streamCsv: the workbook is
 * opened with the first batch, so nothing is written before the database has answered; every cell is text (a PIN or
 * serial must never turn into a number and lose its leading zeros) and neutralised like a CSV cell.
 */
export async function streamXlsx<R extends object>(
  pool: Pool,
  out: Writable,
  spec: CsvExport<R> & { sheet: string },
  opts: StreamOptions = {},
): Promise<number> {
  const sink = new ExportSink(out, opts);
  let wb: InstanceType<typeof ExcelJS.stream.xlsx.WorkbookWriter> | undefined;
  let ws: ExcelJS.Worksheet | undefined;
  const open = () => {
    wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useSharedStrings: false, useStyles: false });
    ws = wb.addWorksheet(spec.sheet);
    ws.addRow([...spec.header]).commit();
    return ws;
  };
  try {
    const n = await forEachBatch<R>(
      pool,
      spec.sql,
      spec.params,
      async (rows) => {
        const sheet = ws ?? open();
        for (const r of rows) sheet.addRow(exportRow(spec.cells(r) as Parameters<typeof exportRow>[0])).commit();
        // The workbook writes on its own: wait for the reader before reading more rows.
        await new Promise((r) => setImmediate(r));
        await sink.writable();
      },
      { signal: opts.signal },
    );
    (ws ?? open()).commit();
    await wb!.commit();
    return n;
  } finally {
    sink.done();
  }
}
