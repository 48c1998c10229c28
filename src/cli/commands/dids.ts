import { Command } from 'commander';
import { addDid, editDid, getDid, listDids, removeDid, type Did, type DidEditInput } from '../../store/admin/dids.ts';
import { addCallerId, listCallerIds, removeCallerId } from '../../store/admin/caller-ids.ts';
import { defined } from '../../store/admin/input.ts';
import type { CliRuntime } from '../runtime.ts';

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];

function didOptions(cmd: Command): Command {
  return cmd
    .option('--language <lang>', 'en|es')
    .option('--auth <mode>', 'pin|cli|cli-then-pin')
    .option('--failover-gateway <name>')
    .option('--min-digits <n>')
    .option('--max-digits <n>')
    .option('--allow-prefix <digits>', 'allowed destination prefix (repeatable)', collect)
    .option('--deny-prefix <digits>', 'denied destination prefix (repeatable)', collect)
    .option('--country-code <digits>')
    .option('--national-prefix <digits>')
    .option('--pin-length <n>')
    .option('--pin-tries <n>')
    .option('--bind-cli', 'bind the caller id to the card after a PIN login')
    .option('--no-bind-cli', 'do not bind caller ids')
    .option('--max-calls-per-session <n>')
    .option('--voucher-recharge', 'offer voucher recharge (key 0) after the balance announcement')
    .option('--no-voucher-recharge', 'do not offer voucher recharge')
    .option('--json', 'print JSON');
}

const fieldsOf = (o: Record<string, unknown>) =>
  defined({
    language: o.language, auth: o.auth, gateway: o.gateway, failoverGateway: o.failoverGateway, minDigits: o.minDigits,
    maxDigits: o.maxDigits, allowPrefix: o.allowPrefix, denyPrefix: o.denyPrefix, countryCode: o.countryCode,
    nationalPrefix: o.nationalPrefix, pinLength: o.pinLength, pinTries: o.pinTries, bindCli: o.bindCli,
    maxCallsPerSession: o.maxCallsPerSession, voucherRecharge: o.voucherRecharge, enabled: o.enabled,
  });

function printDids(rt: CliRuntime, dids: Did[]): void {
  rt.table(
    ['DID', 'lang', 'auth', 'gateway', 'failover', 'digits', 'allow', 'deny', 'cc', 'PIN len/tries', 'bind CLI', 'calls/session', 'enabled'],
    dids.map((d) => [
      d.did, d.language, d.auth, d.gateway, d.failoverGateway, `${d.minDigits}-${d.maxDigits}`, d.allowPrefix.join(','),
      d.denyPrefix.join(','), d.countryCode, `${d.pinLength}/${d.pinTries}`, d.bindCli ? 'yes' : 'no', d.maxCallsPerSession,
      d.enabled ? 'yes' : 'no',
    ]),
  );
}

export function registerDids(program: Command, rt: CliRuntime): void {
  const did = program.command('did').description('access numbers (DIDs)');

  didOptions(did.command('add <number>').description('add an access number').requiredOption('--gateway <name>', 'FreeSWITCH gateway for outbound calls'))
    .action(async (number: string, o) => {
      const d = await addDid(await rt.admin(), { did: number, ...fieldsOf(o) } as Parameters<typeof addDid>[1]);
      if (o.json) return rt.json(d);
      rt.out(`added access number ${d.did}`);
    });

  did
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listDids(await rt.admin());
      if (o.json) return rt.json(items);
      printDids(rt, items);
    });

  did
    .command('show <number>')
    .option('--json', 'print JSON')
    .action(async (number: string, o) => {
      const d = await getDid(await rt.admin(), number);
      if (o.json) return rt.json(d);
      printDids(rt, [d]);
    });

  didOptions(did.command('edit <number>').description('change an access number').option('--gateway <name>'))
    .option('--enable', 'accept calls')
    .option('--disable', 'refuse calls')
    .action(async (number: string, o) => {
      const enabled = o.enable ? true : o.disable ? false : undefined;
      const d = await editDid(await rt.admin(), number, fieldsOf({ ...o, enabled }) as DidEditInput);
      if (o.json) return rt.json(d);
      rt.out(`updated access number ${d.did}`);
    });

  did
    .command('remove <number>')
    .action(async (number: string) => {
      await removeDid(await rt.admin(), number);
      rt.out(`removed access number ${number}`);
    });

  const cli = program.command('cli').description('caller ids bound to cards (for cli / cli-then-pin access numbers)');
  cli
    .command('add <caller-id> <serial>')
    .option('--json', 'print JSON')
    .action(async (callerId: string, serial: string, o) => {
      const r = await addCallerId(await rt.admin(), callerId, serial);
      if (o.json) return rt.json(r);
      rt.out(`caller id ${r.callerId} now reaches card ${r.serial}`);
    });
  cli
    .command('list')
    .option('--serial <serial>', 'only this card')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listCallerIds(await rt.admin(), o.serial);
      if (o.json) return rt.json(items);
      rt.table(['caller id', 'serial', 'since'], items.map((c) => [c.callerId, c.serial, c.createdAt]));
    });
  cli
    .command('remove <caller-id>')
    .action(async (callerId: string) => {
      await removeCallerId(await rt.admin(), callerId);
      rt.out(`removed caller id ${callerId}`);
    });
}
