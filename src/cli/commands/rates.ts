import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { writeOutputFile } from '../files.ts';
import type { Command } from 'commander';
import { exportRateTable, importRateTable, requireRateTable, listRateTablesAdmin, listTableRates } from '../../store/admin/rates.ts';
import { defined } from '../../store/admin/input.ts';
import { invalid } from '../../store/admin/errors.ts';
import type { CliRuntime } from '../runtime.ts';

export function registerRates(program: Command, rt: CliRuntime): void {
  const rates = program.command('rates').description('rate tables: import, export, list');

  rates
    .command('import <table> <file>')
    .description('import a rate CSV (all or nothing; replaces the table unless --merge)')
    .option('--currency <ISO>', 'currency of a new table')
    .option('--decimals <n>', 'decimals of a new table (0..6)')
    .option('--rounding <rule>', 'up|half_up|down')
    .option('--min-billable <seconds>', 'calls shorter than this cost nothing')
    .option('--merge', 'update/add rows instead of replacing the table')
    .option('--json', 'print JSON')
    .action(async (table: string, file: string, o) => {
      await access(file).catch(() => {
        throw invalid(`cannot read ${file}`);
      });
      const r = await importRateTable(
        await rt.admin(),
        table,
        createReadStream(file),
        defined({ currency: o.currency, decimals: o.decimals, rounding: o.rounding, minBillable: o.minBillable, merge: o.merge }),
      );
      if (o.json) return rt.json(r);
      rt.out(`${r.created ? 'created' : 'updated'} rate table ${table}: ${r.rows} rows (${r.inserted} inserted, ${r.updated} updated, ${r.deleted} removed)`);
    });

  rates
    .command('export <table>')
    .description('export a rate table as CSV (stdout unless --out)')
    .option('--out <file>')
    .action(async (table: string, o) => {
      const ctx = await rt.admin();
      if (!o.out) {
        await exportRateTable(ctx, table, rt.stdout);
        return;
      }
      await requireRateTable(ctx, table); // before creating the file, so a bad name leaves nothing behind
      // Never through a symlink, and a write error is one line naming the file (src/cli/files.ts).
      await writeOutputFile(o.out, {}, (out) => exportRateTable(ctx, table, out));
    });

  rates
    .command('list [table]')
    .description('list rate tables, or the rates of one table')
    .option('--prefix <digits>', 'only prefixes starting with these digits')
    .option('--limit <n>', 'at most this many (max 1000)', '100')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (table: string | undefined, o) => {
      const ctx = await rt.admin();
      if (!table) {
        const tables = await listRateTablesAdmin(ctx);
        if (o.json) return rt.json(tables);
        return rt.table(
          ['name', 'currency', 'decimals', 'rounding', 'min billable s', 'rates'],
          tables.map((t) => [t.name, t.currency, t.decimals, t.rounding, t.minBillableSeconds, t.rateCount]),
        );
      }
      const r = await listTableRates(ctx, table, defined({ limit: o.limit, offset: o.offset, prefix: o.prefix }));
      if (o.json) return rt.json(r);
      rt.table(
        ['prefix', 'destination', `rate/min (${r.table.currency})`, 'connect fee', 'increments', 'from', 'to'],
        r.items.map((x) => [x.prefix, x.destination, x.rate, x.connectFee, `${x.initialIncrement}/${x.subsequentIncrement}`, x.effectiveFrom, x.effectiveTo]),
      );
      if (r.hasMore) rt.out('(more: use --offset)');
    });
}
