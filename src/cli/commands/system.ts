import type { Command } from 'commander';
import { createApiKey, listApiKeys, revokeApiKey } from '../../store/admin/api-keys.ts';
import { migrate } from '../../store/migrate.ts';
import type { CliRuntime } from '../runtime.ts';

export function registerSystem(program: Command, rt: CliRuntime): void {
  const apikey = program.command('apikey').description('API keys for the HTTP API');
  apikey
    .command('create <name>')
    .description('create a key (printed once; only its SHA-256 is stored)')
    .option('--reseller <name>', "a reseller's key: it sees and changes only that reseller's series, cards and CDRs")
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const r = await createApiKey(await rt.admin(), name, o.reseller);
      if (o.json) return rt.json(r);
      rt.out(r.key);
      rt.stderr.write(`API key "${r.name}" created: store it now, it is not shown again\n`);
    });
  apikey
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listApiKeys(await rt.admin());
      if (o.json) return rt.json(items);
      rt.table(['name', 'created', 'revoked'], items.map((k) => [k.name, k.createdAt, k.revokedAt]));
    });
  apikey
    .command('revoke <name>')
    .action(async (name: string) => {
      await revokeApiKey(await rt.admin(), name);
      rt.out(`revoked API key "${name}"`);
    });

  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async () => {
      const applied = await migrate(await rt.pool());
      rt.out(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
    });

  // The service and the demo are the lead's modules; loaded on demand so the operator commands never depend on them.
  // Compiled (dist/*.js) or run from the sources through tsx (src/*.ts).
  const ext = import.meta.url.endsWith('.js') ? '.js' : '.ts';
  const appModule = (name: string) => new URL(`../../app/${name}${ext}`, import.meta.url).href;

  program
    .command('serve')
    .description('run the service (FreeSWITCH event socket + HTTP API)')
    .action(async () => {
      const mod = (await import(appModule('service'))) as { runServe: (cfg: unknown) => Promise<unknown> };
      await mod.runServe(rt.getConfig());
    });

  program
    .command('demo')
    .description('run a self-contained demo (simulated FreeSWITCH)')
    .option('--serve', 'then keep serving the web console (a demo operator is printed) until Ctrl-C')
    .action(async (o: { serve?: boolean }) => {
      const mod = (await import(appModule('demo'))) as { runDemo: (opts: { serve?: boolean }) => Promise<unknown> };
      await mod.runDemo({ serve: o.serve === true });
    });
}
