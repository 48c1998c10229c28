import type { Command } from 'commander';
import { addOperator, editOperator, listOperators, removeOperator } from '../../store/admin/operators.ts';
import { listAudit } from '../../store/admin/audit.ts';
import { invalid } from '../../store/admin/errors.ts';
import type { CliRuntime } from '../runtime.ts';

/** The first line of stdin (a password piped in: `printf '%s\n' "$PW" | ccard operator add alice --password-stdin`). */
async function readPassword(rt: CliRuntime): Promise<string> {
  let text = '';
  for await (const chunk of rt.stdin) {
    text += chunk.toString();
    if (text.includes('\n') || text.length > 1000) break;
  }
  const pw = text.split(/\r?\n/)[0] ?? '';
  if (!pw) throw invalid('no password on stdin');
  return pw;
}

export function registerOperators(program: Command, rt: CliRuntime): void {
  const op = program.command('operator').description('operator accounts of the web console');
  op.command('add <login>')
    .description('add an operator; prints a one-time password unless --password-stdin')
    .option('--role <role>', 'admin, operator or viewer', 'operator')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--json', 'print JSON')
    .action(async (login: string, o) => {
      const password = o.passwordStdin ? await readPassword(rt) : undefined;
      const r = await addOperator(await rt.admin(), { login, role: o.role, ...(password && { password }) });
      if (o.json) return rt.json(r);
      if (r.password) {
        rt.out(r.password);
        rt.stderr.write(`operator "${r.operator.login}" (${r.operator.role}) added: give them this password, it is not shown again\n`);
      } else {
        rt.out(`operator "${r.operator.login}" (${r.operator.role}) added`);
      }
    });
  op.command('list')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listOperators(await rt.admin());
      if (o.json) return rt.json(items);
      rt.table(['login', 'role', 'sessions', 'locked until', 'created'], items.map((x) => [x.login, x.role, x.activeSessions, x.lockedUntil, x.createdAt]));
    });
  op.command('remove <login>')
    .description('remove an operator (its sessions end)')
    .action(async (login: string) => {
      await removeOperator(await rt.admin(), login);
      rt.out(`removed operator "${login}"`);
    });
  op.command('set-role <login> <role>')
    .description('change the role (admin, operator, viewer); a lower role ends its sessions')
    .action(async (login: string, role: string) => {
      const r = await editOperator(await rt.admin(), login, { role: role as never });
      rt.out(`operator "${r.login}" is now ${r.role}`);
    });
  op.command('passwd <login>')
    .description('set a new password (generated and printed, or --password-stdin); its sessions end')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .action(async (login: string, o) => {
      const { generatePassword } = await import('../../store/admin/passwords.ts');
      const password = o.passwordStdin ? await readPassword(rt) : generatePassword();
      await editOperator(await rt.admin(), login, { password });
      if (o.passwordStdin) rt.out(`password of "${login}" changed`);
      else {
        rt.out(password);
        rt.stderr.write(`password of "${login}" changed: give them this password, it is not shown again\n`);
      }
    });

  const audit = program.command('audit').description('the audit log: changes made through the API and the console, device changes, provisioning and voucher redemptions');
  audit
    .command('list')
    .option('--actor <actor>', 'operator:<login>, apikey:<name>, or just the name')
    .option('--object <object>', 'e.g. card:300-000000001, or a kind: card, series, did, operator...')
    .option('--from <date>', 'ISO 8601, inclusive')
    .option('--to <date>', 'ISO 8601, exclusive')
    .option('--limit <n>', 'at most this many (newest first)', '50')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await listAudit(await rt.admin(), { actor: o.actor, object: o.object, from: o.from, to: o.to, limit: o.limit, offset: o.offset });
      if (o.json) return rt.json(r.items);
      const brief = (v: unknown) => (v === null || v === undefined ? '' : JSON.stringify(v).slice(0, 80));
      rt.table(['at', 'actor', 'action', 'object', 'status', 'before', 'after'], r.items.map((x) => [x.at, x.actor, x.action, x.object, x.status, brief(x.before), brief(x.after)]));
      if (r.hasMore) rt.stderr.write('more entries: use --offset\n');
    });
}
