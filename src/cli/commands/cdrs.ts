import { readLimitedFile, writeOutputFile } from '../files.ts';
import type { Command } from 'commander';
import { cdrJson, costReport, costReportJson, exportCdrs, listCdrs, type CdrListInput } from '../../store/admin/cdrs.ts';
import { formatAmount } from '../../store/admin/format.ts';
import { defined } from '../../store/admin/input.ts';
import { invalid } from '../../store/admin/errors.ts';
import type { CliRuntime } from '../runtime.ts';

function filters(cmd: Command): Command {
  return cmd
    .option('--card <serial>', 'only this card')
    .option('--series <number>', 'only this series')
    .option('--from <date>', 'recorded at or after (ISO 8601)')
    .option('--to <date>', 'recorded before (ISO 8601)');
}
const filterOf = (o: Record<string, unknown>) => defined({ card: o.card, series: o.series, from: o.from, to: o.to }) as Record<string, string>;

/** A mod_json_cdr document is ~20 KB; anything past 1 MiB is not one (and is not read whole). */
export const MAX_CDR_FILE_BYTES = 1024 * 1024;

export function registerCdrs(program: Command, rt: CliRuntime): void {
  const cdr = program.command('cdr').description('call detail records');

  filters(cdr.command('list'))
    .option('--limit <n>', 'at most this many (max 1000)', '50')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await listCdrs(await rt.admin(), { ...filterOf(o), ...defined({ limit: o.limit, offset: o.offset }) } as CdrListInput);
      if (o.json) return rt.json({ items: r.items.map(cdrJson), hasMore: r.hasMore });
      rt.table(
        ['call id', 'serial', 'destination', 'billsec', 'billed s', 'cost', 'cause', 'ended'],
        r.items.map((c) => [c.callId, c.serial, c.destination, c.billsec, c.billedSeconds, formatAmount(c.cost), c.hangupCause, c.endedAt?.toISOString()]),
      );
      if (r.hasMore) rt.out('(more: use --offset)');
    });

  cdr
    .command('import <files...>')
    .description("bill mod_json_cdr documents FreeSWITCH could not POST (its err-log-dir *.cdr.json files); idempotent")
    .option('--json', 'print JSON')
    .action(async (files: string[], o) => {
      const { ingestJsonCdr } = await import('../../cdr/json-cdr.ts');
      const deps = { pool: (await rt.admin()).pool, live: await rt.liveStore() };
      const results: Array<{ file: string; status: string; detail: string }> = [];
      for (const file of files) {
        let text: string;
        try {
          text = await readLimitedFile(file, MAX_CDR_FILE_BYTES);
        } catch (err) {
          results.push({ file, status: 'unreadable', detail: (err as Error).message });
          continue;
        }
        const r = await ingestJsonCdr(deps, text, 'import');
        const detail =
          r.status === 'debited' ? `${r.callId}: ${r.billedSeconds} s, ${formatAmount(r.cost)}`
          : r.status === 'invalid' ? r.reason
          : r.status === 'ignored' ? `${r.reason} ${r.uuid ?? ''}`.trim()
          : r.callId;
        results.push({ file, status: r.status, detail });
      }
      if (o.json) rt.json(results);
      else rt.table(['file', 'status', 'detail'], results.map((r) => [r.file, r.status, r.detail]));
      // Not-a-ccard-leg documents (the caller's and IVR legs) are expected in an err-log-dir; unreadable or
      // malformed ones are not.
      if (results.some((r) => r.status === 'invalid' || r.status === 'unreadable')) throw invalid('some files could not be imported');
    });

  filters(cdr.command('export').description('export CDRs as CSV, streaming (stdout unless --out)'))
    .option('--format <format>', 'csv', 'csv')
    .option('--out <file>')
    .action(async (o) => {
      if (o.format !== 'csv') throw invalid(`--format must be csv, not "${o.format}"`);
      const ctx = await rt.admin();
      if (!o.out) {
        await exportCdrs(ctx, filterOf(o), rt.stdout);
        return;
      }
      await listCdrs(ctx, { ...filterOf(o), limit: 1 }); // validate before creating the file
      const n = await writeOutputFile(o.out, {}, (out) => exportCdrs(ctx, filterOf(o), out));
      rt.stderr.write(`exported ${n} CDRs to ${o.out}\n`);
    });

  const report = program.command('report').description('reports');
  filters(report.command('costs').description('calls, billed minutes and total cost per card or series'))
    .requiredOption('--by <what>', 'card|series|destination|carrier|destination-carrier')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const rows = await costReport(await rt.admin(), { by: o.by, ...filterOf(o) } as Parameters<typeof costReport>[1]);
      if (o.json) return rt.json(rows.map(costReportJson));
      rt.table(
        [o.by, 'currency', 'calls', 'billed minutes', 'total cost', 'buy cost', 'margin'],
        rows.map((r) => [r.key, r.currency, r.calls, r.billedMinutes, formatAmount(r.totalCost), r.buyCost === null ? '' : formatAmount(r.buyCost), r.margin === null ? '' : formatAmount(r.margin)]),
      );
    });
}
