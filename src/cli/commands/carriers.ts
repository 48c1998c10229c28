import type { Command } from 'commander';
import {
  addCarrier,
  addPlan,
  assignPlan,
  carrierJson,
  editCarrier,
  editPlan,
  getCarrier,
  getPlan,
  listCarriers,
  listPlans,
  parseCarrierList,
  planJson,
  removeCarrier,
  removeEntry,
  removePlan,
  setEntry,
  type CarrierView,
  type PlanView,
} from '../../store/admin/routing.ts';
import { defined } from '../../store/admin/input.ts';
import { invalid } from '../../store/admin/errors.ts';
import type { CliRuntime } from '../runtime.ts';

function showCarrier(rt: CliRuntime, c: CarrierView): void {
  rt.details([
    ['name', c.name],
    ['gateway', c.gateway],
    ['buy rates', `${c.buyRates} (${c.buyRateCount} rates)`],
    ['max calls', c.maxCalls ?? 'unlimited'],
    ['prefix strip', c.prefixStrip],
    ['prefix add', c.prefixAdd],
    ['enabled', c.enabled],
    ['plans', c.plans.join(', ')],
  ]);
}

const carrierText = (e: PlanView['entries'][number]): string => {
  const places = new Map<number, string[]>();
  for (const c of e.carriers) places.set(c.position, [...(places.get(c.position) ?? []), c.weight === 1 ? c.carrier : `${c.carrier}*${c.weight}`]);
  const list = [...places.entries()].sort((a, b) => a[0] - b[0]).map(([, names]) => names.join('|')).join(',');
  return e.mode === 'lcr' && !list ? '(every carrier)' : list;
};

function showPlan(rt: CliRuntime, p: PlanView): void {
  rt.details([
    ['name', p.name],
    ['loss prompt', p.lossPrompt],
    ['series', p.series.join(', ')],
    ['cards (own plan)', p.cardCount],
  ]);
  rt.table(
    ['prefix', 'mode', 'carriers'],
    p.entries.map((e) => [e.prefix === '' ? 'default' : e.prefix, e.mode === 'lcr' ? 'least cost' : e.mode, carrierText(e)]),
  );
}

export function registerCarriers(program: Command, rt: CliRuntime): void {
  const carrier = program.command('carrier').description('carriers: a FreeSWITCH gateway with a buy-rate table');

  carrier
    .command('add <name>')
    .description('add a carrier (its buy rates: `ccard rates import <buy-rates table> file.csv`)')
    .requiredOption('--gateway <gateway>', 'FreeSWITCH gateway (sofia/gateway/<gateway>/<number>)')
    .option('--buy-rates <table>', 'buy-rate table (created empty when missing; default buy-<name>)')
    .option('--max-calls <n>', 'simultaneous calls through this carrier (default unlimited)')
    .option('--prefix-strip <n>', 'leading digits removed from the number sent to the carrier', '0')
    .option('--prefix-add <digits>', 'digits put in front of the number sent to the carrier', '')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const c = await addCarrier(await rt.admin(), {
        name,
        gateway: o.gateway,
        ...defined({ buyRates: o.buyRates, maxCalls: o.maxCalls }),
        prefixStrip: o.prefixStrip,
        prefixAdd: o.prefixAdd,
      });
      if (o.json) return rt.json(carrierJson(c));
      rt.out(`added carrier "${c.name}" (gateway ${c.gateway}, buy rates "${c.buyRates}")`);
    });

  carrier
    .command('list')
    .description('list carriers')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listCarriers(await rt.admin());
      if (o.json) return rt.json(items.map(carrierJson));
      rt.table(
        ['name', 'gateway', 'buy rates', 'rates', 'max calls', 'enabled', 'plans'],
        items.map((c) => [c.name, c.gateway, c.buyRates, c.buyRateCount, c.maxCalls ?? '', c.enabled, c.plans.join(', ')]),
      );
    });

  carrier
    .command('show <name>')
    .description('show a carrier')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const c = await getCarrier(await rt.admin(), name);
      if (o.json) return rt.json(carrierJson(c));
      showCarrier(rt, c);
    });

  carrier
    .command('edit <name>')
    .description('change a carrier')
    .option('--gateway <gateway>', 'FreeSWITCH gateway')
    .option('--buy-rates <table>', 'buy-rate table')
    .option('--max-calls <n>', 'simultaneous calls ("none": unlimited)')
    .option('--prefix-strip <n>', 'leading digits removed')
    .option('--prefix-add <digits>', 'digits put in front ("" for none)')
    .option('--enabled <yes|no>', 'a disabled carrier is never chosen')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const c = await editCarrier(
        await rt.admin(),
        name,
        defined({
          gateway: o.gateway,
          buyRates: o.buyRates,
          maxCalls: o.maxCalls === 'none' ? null : o.maxCalls,
          prefixStrip: o.prefixStrip,
          prefixAdd: o.prefixAdd,
          enabled: o.enabled,
        }),
      );
      if (o.json) return rt.json(carrierJson(c));
      showCarrier(rt, c);
    });

  carrier
    .command('remove <name>')
    .description('remove a carrier no plan names and no call used')
    .action(async (name: string) => {
      await removeCarrier(await rt.admin(), name);
      rt.out(`removed carrier "${name.trim()}"`);
    });

  const route = program.command('route').description('routing plans: which carriers carry each destination');
  const plan = route.command('plan').description('routing plans');

  plan
    .command('add <name>')
    .description('add a routing plan')
    .option('--loss-prompt <prompt>', 'prompt when the cheapest carrier costs more than the card pays', 'destination_unprofitable')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const p = await addPlan(await rt.admin(), { name, lossPrompt: o.lossPrompt });
      if (o.json) return rt.json(planJson(p));
      rt.out(`added routing plan "${p.name}"`);
    });

  plan
    .command('edit <name>')
    .description('change a routing plan')
    .option('--loss-prompt <prompt>', 'prompt when the cheapest carrier costs more than the card pays')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const p = await editPlan(await rt.admin(), name, defined({ lossPrompt: o.lossPrompt }));
      if (o.json) return rt.json(planJson(p));
      showPlan(rt, p);
    });

  plan
    .command('list')
    .description('list routing plans')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const items = await listPlans(await rt.admin());
      if (o.json) return rt.json(items);
      rt.table(['name', 'entries', 'series', 'loss prompt'], items.map((p) => [p.name, p.entries, p.series, p.lossPrompt]));
    });

  plan
    .command('show <name>')
    .description('show a plan and its entries')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const p = await getPlan(await rt.admin(), name);
      if (o.json) return rt.json(planJson(p));
      showPlan(rt, p);
    });

  plan
    .command('remove <name>')
    .description('remove a plan no series or card uses')
    .action(async (name: string) => {
      await removePlan(await rt.admin(), name);
      rt.out(`removed routing plan "${name.trim()}"`);
    });

  plan
    .command('entry <plan> <prefix>')
    .description('set the entry for a destination prefix ("default": every number without a longer entry)')
    .option('--carriers <list>', 'carriers in order: "a,b"; "a|b" share a place; "a*3" weight 3 within its place')
    .option('--least-cost', 'cheapest buy rate first (among --carriers, or every carrier)')
    .option('--block', 'refuse calls to this prefix')
    .option('--json', 'print JSON')
    .action(async (planName: string, prefix: string, o) => {
      if (o.leastCost && o.block) throw invalid('choose --least-cost or --block, not both');
      const mode = o.block ? 'block' : o.leastCost ? 'lcr' : 'ordered';
      const p = await setEntry(await rt.admin(), planName, { prefix, mode, carriers: o.carriers ? parseCarrierList(o.carriers) : [] });
      if (o.json) return rt.json(planJson(p));
      showPlan(rt, p);
    });

  plan
    .command('entry-remove <plan> <prefix>')
    .description('remove the entry for a prefix')
    .action(async (planName: string, prefix: string) => {
      await removeEntry(await rt.admin(), planName, prefix);
      rt.out(`removed entry ${prefix} of routing plan "${planName.trim()}"`);
    });

  route
    .command('assign <plan>')
    .description('name the routing plan of a series or of one card ("none": no plan; a card: back to its series\' plan)')
    .option('--series <number>', 'series number')
    .option('--card <serial>', 'card serial')
    .action(async (planName: string, o) => {
      const r = await assignPlan(await rt.admin(), { plan: planName, ...defined({ series: o.series, card: o.card }) });
      const what = r.series ? `series ${r.series}` : `card ${r.card}`;
      rt.out(r.plan ? `${what} routes by plan "${r.plan}"` : `${what} has no own routing plan`);
    });
}
