import type { Command } from 'commander';
import { foreignObject, runScoped } from '../store/admin/scope.ts';
import { notFound } from '../store/admin/errors.ts';
import { resellerIdByName } from '../store/admin/resellers.ts';
import type { CliRuntime } from './runtime.ts';

/** What a reseller may run: the CLI twin of the API's route allow-list (src/api/principal.ts). */
const RESELLER_COMMANDS = new Set([
  'series list',
  'series show',
  'series create',
  'series edit',
  'cards list',
  'cards search',
  'cards export',
  'cards show',
  'cards set-status',
  'cards topup',
  'cards history',
  'cdr list',
  'cdr export',
  'report costs',
  'reseller report',
]);

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Runs the command line, as the reseller named by CCARD_RESELLER when it is set (a reseller's staff with a CLI, or
 * an operator checking what a reseller sees): the same scope as a reseller API key, the same allow-list, and a card
 * or series of anyone else is "unknown", exactly as a missing one.
 */
export async function parseScoped(program: Command, rt: CliRuntime, argv: readonly string[]): Promise<void> {
  const name = rt.env.CCARD_RESELLER?.trim();
  if (!name) {
    await program.parseAsync([...argv], { from: 'node' });
    return;
  }
  const ctx = await rt.admin();
  const resellerId = await resellerIdByName(ctx.pool, name);
  program.hook('preAction', async (_root, action) => {
    const path = pathOf(action);
    if (!RESELLER_COMMANDS.has(path)) throw notFound(`unknown command "${path}"`);
    const serials: string[] = [];
    const series: string[] = [];
    action.registeredArguments.forEach((a, i) => {
      const v = action.args[i];
      if (typeof v !== 'string') return;
      if (a.name() === 'serial') serials.push(v);
      if (a.name() === 'number' && path !== 'series create') series.push(v);
    });
    const o = action.opts() as { card?: unknown; series?: unknown };
    if (typeof o.card === 'string') serials.push(o.card);
    if (typeof o.series === 'string') series.push(o.series);
    const denied = await foreignObject(ctx.pool, resellerId, serials, series);
    if (denied) throw notFound(denied);
  });
  await runScoped({ resellerId }, () => program.parseAsync([...argv], { from: 'node' }));
}
