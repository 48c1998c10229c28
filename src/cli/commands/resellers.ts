import type { Command } from 'commander';
import {
  addReseller,
  getReseller,
  listResellers,
  resellerJson,
  resellerLedger,
  resellerReport,
  resellerReportJson,
  topUpReseller,
  type Reseller,
} from '../../store/admin/resellers.ts';
import { formatAmount } from '../../store/admin/format.ts';
import { minutesOf } from '../../store/admin/cdrs.ts';
import { defined } from '../../store/admin/input.ts';
import type { CliRuntime } from '../runtime.ts';

const show = (rt: CliRuntime, r: Reseller) =>
  rt.details([
    ['name', r.name],
    ['currency', r.currency],
    ['wholesale balance', formatAmount(r.balance)],
    ['credit limit', formatAmount(r.creditLimit)],
    ['discount %', r.discountPpm / 10_000],
    ['series', r.series.join(', ')],
  ]);

export function registerResellers(program: Command, rt: CliRuntime): void {
  const reseller = program.command('reseller').description('resellers: own series, pay for their cards from a wholesale balance');

  reseller
    .command('add <name>')
    .description('add a reseller (then `ccard apikey create <key> --reseller <name>`)')
    .option('--currency <ISO>', 'currency of the wholesale balance', 'USD')
    .option('--credit-limit <amount>', 'how far the wholesale balance may go below zero', '0')
    .option('--discount <percent>', 'percent off face value the reseller pays for its cards (e.g. 20)', '0')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const r = await addReseller(await rt.admin(), { name, currency: o.currency, creditLimit: o.creditLimit, discount: o.discount });
      if (o.json) return rt.json(resellerJson(r));
      rt.out(`added reseller "${r.name}"`);
    });

  reseller
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listResellers(await rt.admin());
      if (o.json) return rt.json(items.map(resellerJson));
      rt.table(
        ['name', 'currency', 'balance', 'credit limit', 'discount %', 'series'],
        items.map((r) => [r.name, r.currency, formatAmount(r.balance), formatAmount(r.creditLimit), r.discountPpm / 10_000, r.series.length]),
      );
    });

  reseller
    .command('show <name>')
    .option('--ledger', 'also the latest wholesale ledger entries')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const ctx = await rt.admin();
      const r = await getReseller(ctx, name);
      const ledger = o.ledger ? await resellerLedger(ctx, name) : undefined;
      if (o.json) return rt.json({ ...resellerJson(r), ...(ledger && { ledger }) });
      show(rt, r);
      if (ledger) {
        rt.table(
          ['when', 'reason', 'amount', 'balance after', 'ref'],
          ledger.map((l) => [l.createdAt.toISOString(), l.reason, formatAmount(l.amount), formatAmount(l.balanceAfter), l.ref]),
        );
      }
    });

  reseller
    .command('topup <name> <amount>')
    .description('credit the wholesale balance (what the reseller paid; negative: a correction)')
    .option('--ref <ref>', 'idempotency reference (the same ref is applied once)')
    .option('--note <text>', 'free text')
    .option('--json', 'print JSON')
    .action(async (name: string, amount: string, o) => {
      const r = await topUpReseller(await rt.admin(), name, { amount, ...defined({ ref: o.ref, note: o.note }) });
      if (o.json) return rt.json(resellerJson(r));
      rt.out(`reseller "${r.name}": wholesale balance ${formatAmount(r.balance)}`);
    });

  reseller
    .command('report [name]')
    .description('per reseller: cards, cards sold, calls, minutes, revenue, face value, wholesale paid, balance, owed')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o) => {
      const rows = await resellerReport(await rt.admin(), name);
      if (o.json) return rt.json(rows.map(resellerReportJson));
      rt.table(
        ['reseller', 'cards', 'sold', 'calls', 'minutes', 'revenue', 'face value', 'wholesale', 'balance', 'owed'],
        rows.map((r) => [
          r.reseller, r.cards, r.cardsSold, r.calls, minutesOf(r.billedSeconds), formatAmount(r.revenue), formatAmount(r.faceValue),
          formatAmount(r.wholesale), formatAmount(r.balance), formatAmount(r.owed),
        ]),
      );
    });
}
