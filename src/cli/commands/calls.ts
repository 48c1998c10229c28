import type { Command } from 'commander';
import { formatAmount } from '../../store/admin/format.ts';
import { invalid } from '../../store/admin/errors.ts';
import { isUuid } from '../../store/calls.ts';
import { listUnbilled, reconcile, reconciliationJson, releaseUnbilled, unbilledJson } from '../../store/reconcile.ts';
import type { CliRuntime } from '../runtime.ts';

/** An ISO 8601 date or time ("2026-12-01" is midnight UTC). */
function dateOption(name: string, v: string): Date {
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) throw invalid(`${name}: invalid date "${v}": expected ISO 8601, e.g. 2026-12-31`);
  return d;
}

function countOption(name: string, v: string, max: number): number {
  if (!/^\d{1,9}$/.test(v) || Number(v) > max) throw invalid(`${name}: must be a whole number from 0 to ${max}`);
  return Number(v);
}

export function registerCalls(program: Command, rt: CliRuntime): void {
  const calls = program.command('calls').description('calls: unbilled calls and reconciliation');

  calls
    .command('unbilled')
    .description('calls whose hold ran out with no CDR (may have been talked while ccard was down); billed if the CDR comes')
    .option('--limit <n>', 'at most this many (max 1000)', '100')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const rows = await listUnbilled(await rt.pool(), { limit: countOption('--limit', o.limit, 1000), offset: countOption('--offset', o.offset, 1e9) });
      if (o.json) {
        return rt.json(rows.map(unbilledJson));
      }
      if (rows.length === 0) return rt.out('no unbilled calls');
      rt.table(
        ['call id', 'serial', 'destination', 'caller id', 'held', 'max s', 'started', 'hold ended'],
        rows.map((r) => [r.callId, r.serial, r.destination, r.callerId, formatAmount(r.reserved), r.maxSeconds, r.createdAt.toISOString(), r.holdUntil.toISOString()]),
      );
    });

  calls
    .command('release <call-ids...>')
    .description('close unbilled calls known never to have been talked (a CDR arriving later still bills them)')
    .action(async (ids: string[]) => {
      const bad = ids.find((id) => !isUuid(id));
      if (bad) throw invalid(`"${bad}" is not a call id (a uuid)`);
      const done = new Set(await releaseUnbilled(await rt.pool(), ids));
      for (const id of ids) if (done.has(id.toLowerCase())) rt.out(`${id}: released`);
      const left = ids.filter((id) => !done.has(id.toLowerCase()));
      if (left.length) throw invalid(`not an unbilled call: ${left.join(', ')}`);
    });

  calls
    .command('reconcile')
    .description('compare calls started in [--from, --to), their CDRs and the ledger; print every difference')
    .requiredOption('--from <date>', 'calls started at or after (ISO 8601)')
    .requiredOption('--to <date>', 'calls started before (ISO 8601)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const from = dateOption('--from', o.from);
      const to = dateOption('--to', o.to);
      if (to <= from) throw invalid('--to must be after --from');
      const r = await reconcile(await rt.pool(), from, to);
      if (o.json) return rt.json(reconciliationJson(r));
      rt.out(`calls ${r.calls}, CDRs ${r.cdrs}: cost ${formatAmount(r.cost)}, collected ${formatAmount(r.collected)} (uncollected ${formatAmount(r.uncollected)}), ledger debits ${formatAmount(r.debited)}`);
      if (r.differences.length === 0) return rt.out('no differences');
      rt.out(`${r.differences.length} difference(s):`);
      rt.table(['kind', 'call id', 'serial', 'detail'], r.differences.map((d) => [d.kind, d.callId, d.serial, d.detail]));
    });
}
