import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { createSeries, editSeries, getSeries, listSeries, type Series } from '../../store/admin/series.ts';
import { amountJson, formatAmount, isoOrNull } from '../../store/admin/format.ts';
import type { GenerationPhase } from '../../store/admin/card-gen.ts';
import { INITIAL_CARD_STATUSES } from '../../store/cards.ts';
import { defined } from '../../store/admin/input.ts';
import type { CliRuntime } from '../runtime.ts';

export function seriesJson(s: Series) {
  return {
    ...s,
    initialBalance: amountJson(s.initialBalance),
    activationFee: amountJson(s.activationFee),
    maintenanceFee: amountJson(s.maintenanceFee),
    expiryDate: isoOrNull(s.expiryDate),
    createdAt: s.createdAt.toISOString(),
  };
}

const PHASES: Record<GenerationPhase, string> = {
  generate: 'generating',
  check: 'checking PINs',
  insert: 'inserting cards',
  ledger: 'writing ledger',
};

export function registerSeries(program: Command, rt: CliRuntime): void {
  const series = program.command('series').description('card series: create, list, show, edit');

  series
    .command('create')
    .description('create a series and all of its cards in one transaction')
    .requiredOption('--name <name>', 'series name')
    .requiredOption('--number <digits>', 'series number (1-9 digits, the serial prefix)')
    .requiredOption('--count <n>', 'number of cards')
    .requiredOption('--rate-table <name>', 'rate table (must exist)')
    .option('--balance <amount>', 'initial balance of each card', '0')
    .option('--currency <ISO>', "currency (default: the rate table's)")
    .option('--pin-length <n>', 'PIN digits, 8..20', '10')
    .option('--status <status>', `initial card status: ${INITIAL_CARD_STATUSES.join('|')}`, 'pending')
    .option('--tax-profile <name>', 'tax profile')
    .option('--activation-fee <amount>', 'charged at first use')
    .option('--maintenance-fee <amount>', 'charged every --maintenance-hours')
    .option('--maintenance-hours <n>', 'maintenance period in hours')
    .option('--expiry-date <date>', 'cards expire at this date (ISO 8601)')
    .option('--expiry-days <n>', 'cards expire this many days after first use')
    .option('--max-calls <n>', 'simultaneous calls per card', '1')
    .option('--selfcare', 'allow cardholder self-care logins')
    .option('--no-selfcare', 'no cardholder self-care (default)')
    .option('--notes <text>', 'free text')
    .option('--reseller <name>', "a reseller's series: count x balance is drawn from its wholesale balance")
    .option('--json', 'print JSON')
    .action(async (o) => {
      const ctx = await rt.admin();
      const bar =
        rt.stderr.isTTY === true
          ? new cliProgress.SingleBar(
              { stream: rt.stderr, format: '{phase} [{bar}] {percentage}% | {value}/{total}', hideCursor: true },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
      let started = false;
      const t0 = Date.now();
      try {
        const r = await createSeries(
          ctx,
          defined({
            name: o.name, number: o.number, count: o.count, rateTable: o.rateTable, balance: o.balance,
            currency: o.currency, pinLength: o.pinLength, status: o.status, taxProfile: o.taxProfile,
            activationFee: o.activationFee, maintenanceFee: o.maintenanceFee, maintenanceHours: o.maintenanceHours,
            expiryDate: o.expiryDate, expiryDays: o.expiryDays, maxCalls: o.maxCalls, selfcare: o.selfcare, notes: o.notes,
            reseller: o.reseller,
          }) as Parameters<typeof createSeries>[1],
          (phase, done, total) => {
            if (!bar) return;
            if (!started) bar.start(total, 0, { phase: PHASES[phase] });
            started = true;
            bar.update(done, { phase: PHASES[phase] });
          },
        );
        bar?.stop();
        if (o.json) rt.json({ ...r, seconds: (Date.now() - t0) / 1000 });
        else rt.out(`created series ${r.number} (id ${r.seriesId}) with ${r.count} cards`);
      } finally {
        bar?.stop();
      }
    });

  series
    .command('list')
    .description('list series')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listSeries(await rt.admin());
      if (o.json) return rt.json(items.map(seriesJson));
      rt.table(
        ['number', 'name', 'cards', 'status', 'currency', 'balance', 'rate table', 'selfcare', 'created'],
        items.map((s) => [s.number, s.name, s.count, s.status, s.currency, formatAmount(s.initialBalance), s.rateTable, s.selfcare ? 'yes' : 'no', s.createdAt.toISOString()]),
      );
    });

  series
    .command('show <number>')
    .description('show one series with card counts')
    .option('--json', 'print JSON')
    .action(async (number: string, o) => {
      const s = await getSeries(await rt.admin(), number);
      if (o.json) return rt.json({ ...seriesJson(s), totalBalance: amountJson(s.totalBalance) });
      rt.details([
        ['number', s.number], ['id', s.id], ['name', s.name], ['status', s.status], ['cards', s.count],
        ['cards by status', Object.entries(s.cardsByStatus).map(([k, v]) => `${k}: ${v}`).join(', ')],
        ['total balance', `${formatAmount(s.totalBalance)} ${s.currency}`],
        ['initial balance', `${formatAmount(s.initialBalance)} ${s.currency}`], ['initial status', s.initialStatus],
        ['PIN length', s.pinLength], ['rate table', s.rateTable], ['tax profile', s.taxProfile],
        ['activation fee', formatAmount(s.activationFee)], ['maintenance fee', formatAmount(s.maintenanceFee)],
        ['maintenance hours', s.maintenanceHours], ['expiry date', isoOrNull(s.expiryDate)], ['expiry days', s.expiryDays],
        ['max calls', s.maxCalls], ['selfcare', s.selfcare ? 'yes' : 'no'], ['notes', s.notes], ['created', s.createdAt.toISOString()],
        ['reseller', s.reseller ?? '(operator)'], ['routing plan', s.routingPlan ?? '(access number gateway)'],
      ]);
    });

  series
    .command('edit <number>')
    .description('change a series (the card count never changes)')
    .option('--name <name>')
    .option('--status <status>', 'active|stopped|deleted')
    .option('--notes <text>')
    .option('--activation-fee <amount>')
    .option('--maintenance-fee <amount>')
    .option('--maintenance-hours <n>')
    .option('--expiry-date <date>')
    .option('--expiry-days <n>')
    .option('--max-calls <n>')
    .option('--selfcare', 'allow self-care')
    .option('--no-selfcare', 'forbid self-care')
    .option('--count <n>', 'refused: a series keeps the cards it was created with')
    .option('--json', 'print JSON')
    .action(async (number: string, o) => {
      const { json, ...rest } = o;
      const s = await editSeries(await rt.admin(), number, defined(rest));
      if (json) return rt.json(seriesJson(s));
      rt.out(`updated series ${s.number}`);
    });
}
