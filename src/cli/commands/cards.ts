import { writeOutputFile } from '../files.ts';
import type { Command } from 'commander';
import { CARD_STATUSES } from '../../store/cards.ts';
import {
  adjust,
  cardHistory,
  cardJson,
  exportCards,
  getCard,
  ledgerEntryJson,
  searchCards,
  setCardLimits,
  setCardStatus,
  topUp,
  type AdjustInput,
  type Card,
  type CardLimitsInput,
  type CardSearchInput,
  type MoneyMoveResult,
  type TopUpInput,
} from '../../store/admin/cards.ts';
import { formatAmount, isoOrNull } from '../../store/admin/format.ts';
import { defined } from '../../store/admin/input.ts';
import { invalid } from '../../store/admin/errors.ts';
import type { CliRuntime } from '../runtime.ts';

function filterOptions(cmd: Command): Command {
  return cmd
    .option('--series <number>', 'series number')
    .option('--status <status>', CARD_STATUSES.join('|'))
    .option('--serial <serial>', 'serial or its beginning')
    .option('--min-balance <amount>')
    .option('--max-balance <amount>')
    .option('--last-used-before <date>')
    .option('--last-used-after <date>');
}

const filterOf = (o: Record<string, unknown>) =>
  defined({
    series: o.series, status: o.status, serial: o.serial, minBalance: o.minBalance, maxBalance: o.maxBalance,
    lastUsedBefore: o.lastUsedBefore, lastUsedAfter: o.lastUsedAfter,
  }) as Record<string, string>;

export function registerCards(program: Command, rt: CliRuntime): void {
  const cards = program.command('cards').description('cards: search, export, status, limits, top-up, adjust, history');

  const list = async (o: Record<string, unknown>) => {
    const r = await searchCards(await rt.admin(), { ...filterOf(o), ...defined({ limit: o.limit, offset: o.offset }) } as CardSearchInput);
    if (o.json) return rt.json({ items: r.items.map(cardJson), hasMore: r.hasMore });
    printCards(rt, r.items);
    if (r.hasMore) rt.out('(more: use --offset)');
  };
  for (const name of ['list', 'search']) {
    filterOptions(cards.command(name).description(name === 'list' ? 'list cards' : 'search cards (same filters as list)'))
      .option('--limit <n>', 'at most this many (max 1000)', '50')
      .option('--offset <n>', 'skip this many', '0')
      .option('--json', 'print JSON')
      .action(list);
  }

  filterOptions(cards.command('export').description('export cards as CSV or XLSX, streaming (constant memory)'))
    .requiredOption('--out <file>', 'output file')
    .option('--format <format>', 'csv|xlsx', 'csv')
    .option('--with-pins', 'include the PINs (decrypted): handle the file with care')
    .action(async (o) => {
      if (o.format !== 'csv' && o.format !== 'xlsx') throw invalid(`--format must be csv or xlsx, not "${o.format}"`);
      const ctx = await rt.admin();
      // Validate before creating the file, so a bad filter leaves nothing behind.
      await searchCards(ctx, { ...filterOf(o), limit: 1 });
      const withPins = o.withPins === true;
      const n = await writeOutputFile(o.out, { secret: withPins }, (out) => exportCards(ctx, filterOf(o), out, { format: o.format, withPins }));
      rt.stderr.write(`exported ${n} cards to ${o.out}\n`);
    });

  cards
    .command('show <serial>')
    .description('show one card')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) => {
      const card = await getCard(await rt.admin(), serial);
      if (o.json) return rt.json(cardJson(card));
      printCard(rt, card);
    });

  cards
    .command('set-status <serial> <status>')
    .description(`set a card status: ${CARD_STATUSES.join('|')}`)
    .option('--json', 'print JSON')
    .action(async (serial: string, status: string, o) => {
      const c = await setCardStatus(await rt.admin(), serial, status);
      if (o.json) return rt.json(cardJson(c));
      rt.out(`card ${c.serial} is now ${c.status}`);
    });

  cards
    .command('set-limits <serial>')
    .description("per-card settings; 'series' puts a setting back to the series' value")
    .option('--max-calls <n|series>', 'simultaneous calls (1..1000), or series')
    .option('--credit-limit <amount>', 'how far below zero the balance may go (>= 0)')
    .option('--rate-table <name|series>', 'rate table for this card (must exist), or series')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) => {
      const c = await setCardLimits(
        await rt.admin(),
        serial,
        defined({ maxCalls: o.maxCalls, creditLimit: o.creditLimit, rateTable: o.rateTable }) as CardLimitsInput,
      );
      if (o.json) return rt.json(cardJson(c));
      rt.out(
        `card ${c.serial}: max calls ${c.maxCalls}${c.maxCallsOverride === null ? ' (series)' : ''}, ` +
          `credit limit ${formatAmount(c.creditLimit)}, rate table ${c.rateTable}${c.rateTableOverride === null ? ' (series)' : ''}`,
      );
    });

  const printMove = (r: MoneyMoveResult, json: boolean) => {
    if (json) return rt.json({ ...r.response, replayed: r.replayed });
    const x = r.response;
    rt.out(
      r.replayed
        ? `already applied (ref ${x.ref}): ${x.serial} balance ${x.balance.value}`
        : `${x.kind === 'topup' ? 'topped up' : 'adjusted'} ${x.serial} by ${x.amount.value}: balance ${x.balance.value} (ref ${x.ref})`,
    );
  };

  cards
    .command('topup <serial> <amount>')
    .description('credit a card (a positive amount)')
    .option('--reason <text>', 'note stored with the ledger row')
    .option('--idempotency-key <key>', 'a retry with the same key credits once')
    .option('--json', 'print JSON')
    .action(async (serial: string, amount: string, o) => {
      printMove(await topUp(await rt.admin(), defined({ serial, amount, reason: o.reason, idempotencyKey: o.idempotencyKey }) as TopUpInput), o.json);
    });

  cards
    .command('adjust <serial> <amount>')
    .description('correct a balance by a signed amount (e.g. -2.50)')
    .requiredOption('--reason <text>', 'why (stored with the ledger row)')
    .option('--idempotency-key <key>', 'a retry with the same key applies once')
    .option('--json', 'print JSON')
    .action(async (serial: string, amount: string, o) => {
      printMove(await adjust(await rt.admin(), defined({ serial, amount, reason: o.reason, idempotencyKey: o.idempotencyKey }) as AdjustInput), o.json);
    });

  cards
    .command('history <serial>')
    .description("a card's ledger (every balance change)")
    .option('--limit <n>', 'at most this many (max 1000)', '100')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) => {
      const r = await cardHistory(await rt.admin(), serial, { limit: o.limit, offset: o.offset });
      if (o.json) return rt.json({ items: r.items.map(ledgerEntryJson), hasMore: r.hasMore });
      rt.table(
        ['id', 'when', 'reason', 'amount', 'balance after', 'ref', 'note'],
        r.items.map((e) => [e.id, e.createdAt.toISOString(), e.reason, formatAmount(e.amount), formatAmount(e.balanceAfter), e.ref, e.note]),
      );
    });
}

function printCard(rt: CliRuntime, c: Card): void {
  const fromSeries = (own: unknown) => (own === null ? ' (series)' : ' (card)');
  rt.details([
    ['serial', c.serial],
    ['series', c.series],
    ['status', c.status],
    ['balance', `${formatAmount(c.balance)} ${c.currency}`],
    ['credit limit', formatAmount(c.creditLimit)],
    ['max calls', `${c.maxCalls}${fromSeries(c.maxCallsOverride)}`],
    ['rate table', `${c.rateTable}${fromSeries(c.rateTableOverride)}`],
    ['activated', isoOrNull(c.activatedAt)],
    ['expires', isoOrNull(c.expiresAt)],
    ['last used', isoOrNull(c.lastUsedAt)],
    ['created', c.createdAt.toISOString()],
  ]);
}

function printCards(rt: CliRuntime, items: Card[]): void {
  rt.table(
    ['serial', 'series', 'status', 'balance', 'currency', 'expires', 'last used'],
    items.map((c) => [c.serial, c.series, c.status, formatAmount(c.balance), c.currency, isoOrNull(c.expiresAt), isoOrNull(c.lastUsedAt)]),
  );
}
