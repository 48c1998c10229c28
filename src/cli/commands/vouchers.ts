import { Command } from 'commander';
import { invalid } from '../../store/admin/errors.ts';
import { defined } from '../../store/admin/input.ts';
import { formatAmount } from '../../store/admin/format.ts';
import {
  createVouchers,
  exportVouchers,
  listVoucherBatches,
  redeemVoucher,
  voucherBatchJson,
  voucherRechargeJson,
  voucherRedeemSchema,
  type VoucherBatch,
} from '../../store/admin/vouchers.ts';
import { parseInput } from '../../store/admin/input.ts';
import type { CliRuntime } from '../runtime.ts';
import { writeOutputFile } from '../files.ts';
import { recordAudit } from '../../store/admin/audit.ts';

function printBatches(rt: CliRuntime, items: VoucherBatch[]): void {
  rt.table(
    ['batch', 'value', 'currency', 'count', 'used', 'expires', 'created'],
    items.map((b) => [b.batch, formatAmount(b.value), b.currency, b.count, b.used, b.expiresAt?.toISOString(), b.createdAt.toISOString()]),
  );
}

/** `ccard voucher …`: recharge vouchers (README "Recharge vouchers"). */
export function registerVouchers(program: Command, rt: CliRuntime): void {
  const voucher = program.command('voucher').description('recharge vouchers');

  voucher
    .command('create')
    .description('generate a batch of vouchers (numbers with a check digit, stored hashed; export them to print)')
    .requiredOption('--count <n>')
    .requiredOption('--value <amount>', 'e.g. 10.00')
    .requiredOption('--currency <code>', 'e.g. USD: only cards of this currency take them')
    .option('--expires <date>', 'ISO 8601 date after which the vouchers are refused')
    .option('--batch <name>', 'batch name (default: generated)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const b = await createVouchers(await rt.admin(), defined({ count: o.count, value: o.value, currency: o.currency, expires: o.expires, batch: o.batch }) as never);
      if (o.json) return rt.json(voucherBatchJson(b));
      rt.out(`created ${b.count} vouchers of ${formatAmount(b.value)} ${b.currency} in batch ${b.batch}`);
      rt.out(`export the numbers with: ccard voucher export ${b.batch} --out vouchers.csv --with-numbers`);
    });

  voucher
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listVoucherBatches(await rt.admin());
      if (o.json) return rt.json(items.map(voucherBatchJson));
      printBatches(rt, items);
    });

  voucher
    .command('export <batch>')
    .description('export a batch as CSV or XLSX (streaming)')
    .requiredOption('--out <file>', 'output file')
    .option('--format <format>', 'csv|xlsx', 'csv')
    .option('--with-numbers', 'include the voucher numbers (decrypted): handle the file with care')
    .action(async (batch: string, o) => {
      if (o.format !== 'csv' && o.format !== 'xlsx') throw invalid(`--format must be csv or xlsx, not "${o.format}"`);
      const ctx = await rt.admin();
      // Checked before the file is created, so an unknown batch leaves nothing behind.
      if (!(await listVoucherBatches(ctx, batch)).length) throw invalid(`unknown voucher batch ${batch}`);
      const withNumbers = o.withNumbers === true;
      // Like `cards export --with-pins`: with numbers the file is created new, 0600, never through a symlink.
      const n = await writeOutputFile(o.out, { secret: withNumbers }, (out) => exportVouchers(ctx, batch, out, { format: o.format, withNumbers }));
      if (withNumbers) {
        await recordAudit(ctx, { actor: 'cli:local', action: 'ccard voucher export --with-numbers', object: `voucher-batch:${batch}`, status: 200, request: { format: o.format, rows: n } });
      }
      rt.stderr.write(`exported ${n} vouchers to ${o.out}\n`);
    });

  voucher
    .command('redeem <number> <serial>')
    .description('recharge a card with a voucher (operator)')
    .option('--json', 'print JSON')
    .action(async (number: string, serial: string, o) => {
      const i = parseInput(voucherRedeemSchema, { number, serial });
      const r = await redeemVoucher(await rt.admin(), i, undefined, { actor: 'cli:local', action: 'ccard voucher redeem' });
      if (o.json) return rt.json(voucherRechargeJson(r));
      rt.out(`card ${r.serial} recharged with ${formatAmount(r.amount)} ${r.currency}: balance ${formatAmount(r.balance)} (${r.ref})`);
    });
}
