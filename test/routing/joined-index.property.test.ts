import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RateEntry } from '../../src/billing/prefix-index.ts';
import { JoinedIndexes, JoinBuilder, sourcesOf } from '../../src/billing/joined-index.ts';
import { RoutingIndex, type Carrier, type RouteDecision, type RoutingEntry } from '../../src/billing/routing.ts';
import { RateIndex, type RateTableInfo, type RoutedNumber } from '../../src/store/rates.ts';
import { rng } from '../../bench/rating.ts';

/*
 * The joined index must decide exactly as one walk per table does: same sell rate, same carriers in the same order
 * with the same buy rates, same skip() calls and random() draws, for any tables, plans, dates and numbers; and a
 * joined index built from other tries (a reload) must never be served.
 */

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
/** Few digits and short prefixes: tables overlap and nest a lot. */
const digitsArb = (min: number, max: number) => fc.array(fc.constantFrom('0', '1', '2', '3'), { minLength: min, maxLength: max }).map((a) => a.join(''));
const windowArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant<[number | null, number | null]>([null, null]) },
  { weight: 1, arbitrary: fc.tuple(fc.option(fc.integer({ min: -3, max: 3 }), { nil: null }), fc.option(fc.integer({ min: -3, max: 3 }), { nil: null })) },
);
/** Short prefixes, and long ones on a few shared stems (tables then overlap deep down too). */
const prefixArb = fc.oneof(
  digitsArb(1, 5),
  fc.tuple(fc.constantFrom('01230', '3210', '222222'), digitsArb(0, 4)).map(([a, b]) => a + b),
);
const rateArb = fc.record({
  prefix: prefixArb,
  perMin: fc.integer({ min: 0, max: 40 }),
  fee: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }) }),
  ini: fc.constantFrom(1, 30, 60, 90),
  window: windowArb,
});
const tableArb = fc.array(rateArb, { maxLength: 25 });
const entryArb = fc.record({
  prefix: fc.oneof({ weight: 1, arbitrary: fc.constant('') }, { weight: 4, arbitrary: digitsArb(1, 4) }),
  mode: fc.constantFrom('lcr' as const, 'lcr' as const, 'ordered' as const, 'block' as const),
  carriers: fc.array(fc.record({ carrierId: fc.constantFrom('1', '2', '3', '4', '5', '9'), position: fc.integer({ min: 0, max: 2 }), weight: fc.integer({ min: 1, max: 3 }) }), {
    maxLength: 4,
  }),
});
const worldArb = fc.record({
  sell: tableArb,
  buys: fc.tuple(tableArb, tableArb, tableArb),
  entries: fc.array(entryArb, { maxLength: 8 }),
  disabled: fc.constantFrom('', '1', '3'),
  numbers: fc.array(fc.oneof({ weight: 6, arbitrary: digitsArb(0, 9) }, { weight: 4, arbitrary: prefixArb.chain((p) => digitsArb(0, 4).map((x) => p + x)) }, { weight: 1, arbitrary: fc.constantFrom('12a', '', '3x4') }), { minLength: 20, maxLength: 40 }),
  at: fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 3, maxLength: 3 }),
  skipSet: fc.subarray(['1', '2', '3', '4', '5']),
  seed: fc.integer({ min: 1, max: 2_000_000_000 }),
  reload: tableArb,
});

type RateSpec = { prefix: string; perMin: number; fee: number; ini: number; window: [number | null, number | null] };
let ids = 0;
function rates(tableId: string, list: RateSpec[]): RateEntry[] {
  return list.map((r) => ({
    id: String(++ids),
    rateTableId: tableId,
    prefix: r.prefix,
    destination: '',
    ratePerMin: BigInt(r.perMin * 1000),
    connectFee: BigInt(r.fee * 1000),
    initialIncrement: r.ini,
    subsequentIncrement: r.ini,
    effectiveFrom: r.window[0] === null ? null : new Date(T0 + r.window[0] * DAY),
    effectiveTo: r.window[1] === null ? null : new Date(T0 + r.window[1] * DAY),
  }));
}

const table = (id: string): RateTableInfo => ({ id, name: `t${id}`, currency: 'USD', decimals: 2, rounding: 'up', minBillableSeconds: 0 });

function carriers(disabled: string): Carrier[] {
  // 1..3 each with a buy table; 4 shares table b1 with 1; 5's table does not exist.
  const tableOf: Record<string, string> = { '1': 'b1', '2': 'b2', '3': 'b3', '4': 'b1', '5': 'b5' };
  return ['1', '2', '3', '4', '5'].map((id) => ({
    id,
    name: `c${id}`,
    gateway: `gw${id}`,
    rateTableId: tableOf[id]!,
    maxCalls: null,
    prefixStrip: id === '2' ? 1 : 0,
    prefixAdd: id === '2' ? '00' : '',
    enabled: id !== disabled,
  }));
}


/** A decision as plain data (carrier ids, buy rate ids, dial numbers), with the skip() calls and random() draws it made. */
function run(f: (opts: { skip: (id: string) => boolean; random: () => number }) => RoutedNumber | RouteDecision | undefined, skipSet: string[], seed: number) {
  const skips: string[] = [];
  let draws = 0;
  const rnd = rng(seed);
  const out = f({
    skip: (id) => {
      skips.push(id);
      return skipSet.includes(id);
    },
    random: () => {
      draws++;
      return rnd();
    },
  });
  const decision = out && 'decision' in out ? out.decision : out;
  const plain =
    decision?.kind === 'route'
      ? { kind: 'route', candidates: decision.candidates.map((c) => [c.carrier.id, c.buy.id, c.dialNumber]) }
      : decision;
  const sell = out && 'sell' in out ? { rate: out.sell.rate.id, rule: out.sell.rule } : undefined;
  return { plain, sell, skips, draws };
}

function world(w: { sell: RateSpec[]; buys: RateSpec[][]; entries: Array<Omit<RoutingEntry, 'id' | 'planId'>>; disabled: string }) {
  const routing = new RoutingIndex(
    carriers(w.disabled),
    [{ id: 'p', name: 'plan', lossPrompt: 'destination_unprofitable' }],
    // One default entry at most ('' twice would be two defaults).
    w.entries
      .filter((e, i) => e.prefix !== '' || w.entries.findIndex((x) => x.prefix === '') === i)
      .map((e) => ({ ...e, id: String(++ids), planId: 'p' })),
  );
  const all = [...rates('s', w.sell), ...rates('b1', w.buys[0]!), ...rates('b2', w.buys[1]!), ...rates('b3', w.buys[2]!)];
  const joins = new JoinedIndexes({ budgetBytes: 1 << 30, schedule: () => {} });
  const index = new RateIndex([table('s'), table('b1'), table('b2'), table('b3')], all, new Date(T0), routing, joins);
  return { index, joins, routing };
}

describe('joined index (sell table × routing plan)', () => {
  it('decides exactly as one walk per table, dates, blocks, missing prefixes and tables included', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { index, joins } = world(w);
        const joined = joins.buildNow(index, 's', 'p');
        expect(joined).toBeDefined();
        expect(joins.get(index, 's', 'p')).toBe(joined);
        for (const number of w.numbers) {
          for (const d of w.at) {
            const at = T0 + d * DAY + (d % 2) * 1; // on and just past the window boundaries
            const byTables = run((o) => index.routeByTables('s', 'p', number, 50_000, at, o), w.skipSet, w.seed);
            const viaIndex = run((o) => index.route('s', 'p', number, 50_000, at, o), w.skipSet, w.seed);
            const direct = run((o) => joined!.route(number, at, o), w.skipSet, w.seed);
            expect(viaIndex).toEqual(byTables);
            expect(direct.plain).toEqual(byTables.plain);
            expect(direct.skips).toEqual(byTables.skips);
            expect(direct.draws).toEqual(byTables.draws);
            expect(joined!.lastSell?.id).toEqual(byTables.sell?.rate);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a reload (a buy table, or the plans) is never served the joined index of the old tries', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { index, joins, routing } = world(w);
        const old = joins.buildNow(index, 's', 'p')!;
        // b1 replaced, everything else shared (RateCache's partial reload): stale if the plan buys from b1.
        const b1Reloaded = index.withTables(['b1'], [table('b1')], rates('b1', w.reload));
        expect(b1Reloaded.joins).toBe(joins);
        expect(old.matches(b1Reloaded)).toBe(!old.sources.buyIds.includes('b1'));
        // The sell table replaced: always stale.
        const reloaded = b1Reloaded.withTables(['s'], [table('s')], rates('s', w.reload));
        expect(old.matches(reloaded)).toBe(false);
        expect(joins.get(reloaded, 's', 'p')).toBeUndefined();
        // ...while the old snapshot (a call still deciding on it) keeps a correct answer, and so does the new one.
        for (const number of w.numbers.slice(0, 10)) {
          const at = T0 + w.at[0]! * DAY;
          expect(run((o) => reloaded.route('s', 'p', number, 0, at, o), w.skipSet, w.seed)).toEqual(
            run((o) => reloaded.routeByTables('s', 'p', number, 0, at, o), w.skipSet, w.seed),
          );
        }
        const fresh = joins.buildNow(reloaded, 's', 'p')!;
        expect(joins.get(reloaded, 's', 'p')).toBe(fresh);
        expect(joins.get(index, 's', 'p')).toBeUndefined(); // the slot now holds the new one: the old snapshot walks per table
        for (const number of w.numbers) {
          const at = T0 + w.at[1]! * DAY;
          expect(run((o) => reloaded.route('s', 'p', number, 0, at, o), w.skipSet, w.seed)).toEqual(
            run((o) => reloaded.routeByTables('s', 'p', number, 0, at, o), w.skipSet, w.seed),
          );
        }
        // New routing (plans or carriers changed: a full reload) with the very same rate tries: not served either.
        const rerouted = new RateIndex([], [], new Date(T0), new RoutingIndex(routing.allCarriers(), [{ id: 'p', name: 'plan', lossPrompt: 'x' }], []), joins);
        expect(fresh.matches(rerouted)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('a build in progress when the tries change is dropped, and prune() frees what the current snapshot no longer has', () => {
    const w = fc.sample(worldArb, { numRuns: 1, seed: 7 })[0]!;
    const runs: Array<() => void> = [];
    const { index, routing } = world(w);
    const joins = new JoinedIndexes({ budgetBytes: 1 << 30, schedule: (r) => runs.push(r) });
    const a = new RateIndex([table('s'), table('b1'), table('b2'), table('b3')], rates('s', w.sell), new Date(T0), routing, joins);
    expect(joins.get(a, 's', 'p')).toBeUndefined(); // requested: a build is queued
    const b = a.withTables(['s'], [table('s')], rates('s', w.reload));
    joins.prune(b); // the reload: a's build is stale
    while (runs.length > 0) runs.shift()!();
    expect(joins.get(a, 's', 'p')).toBeUndefined();
    expect(joins.bytes).toBe(0);
    // b's own build, driven by the scheduler in slices.
    expect(joins.get(b, 's', 'p')).toBeUndefined();
    while (runs.length > 0) runs.shift()!();
    expect(joins.get(b, 's', 'p')).toBeDefined();
    expect(joins.bytes).toBeGreaterThan(0);
    joins.prune(index);
    expect(joins.bytes).toBe(0);
  });

  it('stays within its byte budget: the least recently used pair goes, a pair too big is not built', () => {
    const w = fc.sample(worldArb, { numRuns: 1, seed: 11 })[0]!;
    const sell: RateSpec[] = [...w.sell, { prefix: '1', perMin: 1, fee: 0, ini: 60, window: [null, null] }];
    const { index } = world(w);
    const tables = [table('s'), table('s2'), table('b1'), table('b2'), table('b3')];
    const make = (joins: JoinedIndexes) => new RateIndex(tables, [...rates('s', sell), ...rates('s2', sell)], new Date(T0), index.routing, joins);
    const size = new JoinBuilder(sourcesOf(make(new JoinedIndexes()), 's', 'p')!).buildNow()!.bytes;
    expect(size).toBeGreaterThan(0);
    const joins = new JoinedIndexes({ budgetBytes: size * 2 - 1, schedule: () => {} }); // room for one such pair, not two
    const both = make(joins);
    const first = joins.buildNow(both, 's', 'p');
    const second = joins.buildNow(both, 's2', 'p');
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(joins.bytes).toBeLessThanOrEqual(size * 2 - 1);
    expect(joins.get(both, 's2', 'p')).toBe(second);
    expect(joins.get(both, 's', 'p')).toBeUndefined(); // dropped (least recently used): served per table again
    const tiny = new JoinedIndexes({ budgetBytes: 16, schedule: () => {} });
    const small = make(tiny);
    expect(tiny.buildNow(small, 's', 'p')).toBeUndefined();
    expect(tiny.get(small, 's', 'p')).toBeUndefined();
    expect(tiny.bytes).toBe(0);
  });
});
