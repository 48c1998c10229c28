import { Command } from 'commander';
import { addDevice, editDevice, getDevice, listDevices, removeDevice, resetDevicePassword, type Device, type DeviceWithPassword } from '../../store/admin/devices.ts';
import { defined } from '../../store/admin/input.ts';
import { createProvisionCode, getBrand, setBrand, type Brand } from '../../store/admin/provision.ts';
import type { CliRuntime } from '../runtime.ts';

function printDevices(rt: CliRuntime, items: Device[]): void {
  rt.table(
    ['user', 'name', 'card', 'domain', 'lines', 'enabled', 'password set', 'created'],
    items.map((d) => [d.username, d.name, d.serial, d.realm, d.lines, d.enabled ? 'yes' : 'no', d.passwordSetAt, d.createdAt]),
  );
}

function printCredentials(rt: CliRuntime, d: DeviceWithPassword, what: string): void {
  rt.out(what);
  rt.details([
    ['user', d.username],
    ['password', d.password],
    ['domain', d.realm],
    ['card', d.serial],
    ['name', d.name],
  ]);
  rt.out('The password is shown only this once (ccard keeps only its digest hash).');
}

/** `ccard device …`: cards as SIP accounts (README "SIP devices"). */
export function registerDevices(program: Command, rt: CliRuntime): void {
  const device = program.command('device').description('SIP accounts (softphones, diallers) of cards');
  const realm = () => rt.getConfig().CCARD_SIP_DOMAIN;

  device
    .command('add <serial>')
    .description('add a SIP account to a card; prints its user and password once')
    .option('--name <name>', 'a label, unique per card (default device-N)')
    .option('--lines <n>', 'simultaneous calls from this device (default 1; the card\'s own limit still applies)')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) => {
      const d = await addDevice(await rt.admin(), defined({ serial, name: o.name, lines: o.lines }) as { serial: string }, realm(), 'cli');
      if (o.json) return rt.json(d);
      printCredentials(rt, d, `added device ${d.username} to card ${d.serial}`);
    });

  device
    .command('list')
    .option('--serial <serial>', 'only this card\'s devices')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listDevices(await rt.admin(), o.serial);
      if (o.json) return rt.json(items);
      printDevices(rt, items);
    });

  device
    .command('show <user>')
    .option('--json', 'print JSON')
    .action(async (user: string, o) => {
      const d = await getDevice(await rt.admin(), user);
      if (o.json) return rt.json(d);
      printDevices(rt, [d]);
    });

  device
    .command('edit <user>')
    .option('--name <name>')
    .option('--lines <n>')
    .option('--enable', 'allow registrations and calls')
    .option('--disable', 'refuse registrations and calls')
    .option('--json', 'print JSON')
    .action(async (user: string, o) => {
      const enabled = o.enable ? true : o.disable ? false : undefined;
      const d = await editDevice(await rt.admin(), user, defined({ name: o.name, lines: o.lines, enabled }), 'cli');
      if (o.json) return rt.json(d);
      rt.out(`updated device ${d.username}`);
    });

  device
    .command('disable <user>')
    .description('refuse the device\'s registrations and calls (ccard\'s directory answers "not found")')
    .action(async (user: string) => {
      const d = await editDevice(await rt.admin(), user, { enabled: false }, 'cli');
      rt.out(`disabled device ${d.username}`);
    });

  device
    .command('remove <user>')
    .action(async (user: string) => {
      await removeDevice(await rt.admin(), user, 'cli');
      rt.out(`removed device ${user}`);
    });

  device
    .command('reset-password <user>')
    .description('set a fresh password; prints it once')
    .option('--json', 'print JSON')
    .action(async (user: string, o) => {
      const d = await resetDevicePassword(await rt.admin(), user, realm(), { actor: 'cli' });
      if (o.json) return rt.json(d);
      printCredentials(rt, d, `new password for device ${d.username}`);
    });

  const provision = program.command('provision').description('provisioning codes: a dialler types one to get branding and SIP credentials');
  provision
    .command('create <serial>')
    .description('issue a code for a card\'s device (created when the card has no device of that name)')
    .option('--device <name>', 'the device the code sets up (default: a new device)')
    .option('--expires <duration>', 'lifetime: 30m, 12h, 7d (default 7d)')
    .option('--uses <n>', 'redemptions allowed (default 1)')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) => {
      const p = await createProvisionCode(await rt.admin(), defined({ serial, device: o.device, expires: o.expires, uses: o.uses }) as { serial: string }, realm(), 'cli');
      if (o.json) return rt.json(p);
      rt.out(`provisioning code ${p.code} for device ${p.device.username} (${p.device.name}) of card ${p.serial}`);
      rt.out(`valid until ${p.expiresAt}, ${p.uses} use${p.uses === 1 ? '' : 's'}; each redemption sets a fresh password`);
    });

  const brand = program.command('brand').description('the branding diallers get with their credentials');
  const showBrand = (b: Brand) =>
    rt.details([
      ['name', b.name], ['logo URL', b.logoUrl], ['primary colour', b.primaryColor], ['secondary colour', b.secondaryColor],
      ['support number', b.supportNumber], ['top-up URL', b.topupUrl], ['SIP proxy', b.sipProxy], ['SIP transport', b.sipTransport],
    ]);
  brand
    .command('set')
    .option('--name <name>')
    .option('--logo-url <url>')
    .option('--primary-color <#rrggbb>')
    .option('--secondary-color <#rrggbb>')
    .option('--support-number <number>')
    .option('--topup-url <url>')
    .option('--sip-proxy <host[:port]>', 'outbound proxy diallers use (default: the SIP domain)')
    .option('--sip-transport <udp|tcp|tls>')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const b = await setBrand(
        await rt.admin(),
        defined({
          name: o.name, logoUrl: o.logoUrl, primaryColor: o.primaryColor, secondaryColor: o.secondaryColor, supportNumber: o.supportNumber,
          topupUrl: o.topupUrl, sipProxy: o.sipProxy, sipTransport: o.sipTransport,
        }),
      );
      if (o.json) return rt.json(b);
      showBrand(b);
    });
  brand
    .command('show')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const b = await getBrand(await rt.admin());
      if (o.json) return rt.json(b);
      showBrand(b);
    });
}
