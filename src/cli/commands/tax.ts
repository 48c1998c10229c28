import type { Command } from 'commander';
import { addTaxProfile, formatPercent, listTaxProfiles, removeTaxProfile, taxProfileJson } from '../../store/admin/tax.ts';
import type { CliRuntime } from '../runtime.ts';

export function registerTax(program: Command, rt: CliRuntime): void {
  const tax = program.command('tax').description('tax profiles (a percentage added to the cost of every call of a series)');

  tax
    .command('add <name> <percent>')
    .description('add a tax profile: percent as a decimal, e.g. 20 or 7.25 (at most 4 decimals, 0..100)')
    .option('--json', 'print JSON')
    .action(async (name: string, percent: string, o) => {
      const t = await addTaxProfile(await rt.admin(), { name, percent });
      if (o.json) return rt.json(taxProfileJson(t));
      rt.out(`added tax profile "${t.name}": ${formatPercent(t.ratePpm)}%`);
    });

  tax
    .command('list')
    .description('list tax profiles')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listTaxProfiles(await rt.admin());
      if (o.json) return rt.json(items.map(taxProfileJson));
      rt.table(['name', 'percent', 'series'], items.map((t) => [t.name, formatPercent(t.ratePpm), t.seriesCount]));
    });

  tax
    .command('remove <name>')
    .description('remove a tax profile no series uses')
    .action(async (name: string) => {
      await removeTaxProfile(await rt.admin(), name);
      rt.out(`removed tax profile "${name.trim()}"`);
    });
}
