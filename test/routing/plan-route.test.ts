import { describe, expect, it } from 'vitest';
import { carrierNumber, minuteCost60, planRoute, RoutingIndex, type Carrier, type RoutingEntry } from '../../src/billing/routing.ts';
import { RateIndex, type RateTableInfo } from '../../src/store/rates.ts';
import type { RateEntry } from '../../src/billing/prefix-index.ts';

const table = (id: string): RateTableInfo => ({ id, name: `t${id}`, currency: 'USD', decimals: 2, rounding: 'up', minBillableSeconds: 0 });
let rid = 0;
const rate = (tableId: string, prefix: string, perMin: bigint, fee = 0n, ini = 60, sub = 60): RateEntry => ({
  id: String(++rid),
  rateTableId: tableId,
  prefix,
  destination: '',
  ratePerMin: perMin,
  connectFee: fee,
  initialIncrement: ini,
  subsequentIncrement: sub,
  effectiveFrom: null,
  effectiveTo: null,
});
const carrier = (id: string, extra: Partial<Carrier> = {}): Carrier => ({
  id,
  name: `c${id}`,
  gateway: `gw${id}`,
  rateTableId: `b${id}`,
  maxCalls: null,
  prefixStrip: 0,
  prefixAdd: '',
  enabled: true,
  ...extra,
});
const entry = (prefix: string, mode: RoutingEntry['mode'], carriers: Array<[string, number, number?]> = []): RoutingEntry => ({
  id: String(++rid),
  planId: 'p',
  prefix,
  mode,
  carriers: carriers.map(([carrierId, position, weight]) => ({ carrierId, position, weight: weight ?? 1 })),
});

function setup(entries: RoutingEntry[], carriers: Carrier[] = [carrier('1'), carrier('2'), carrier('3')]) {
  const routing = new RoutingIndex(carriers, [{ id: 'p', name: 'plan', lossPrompt: 'destination_unprofitable' }], entries);
  const rates = [
    rate('b1', '44', 30_000n), // 0.03
    rate('b1', '447', 50_000n), // mobiles dearer on 1
    rate('b2', '44', 20_000n), // 0.02
    rate('b3', '4', 25_000n),
    rate('b3', '447', 10_000n),
  ];
  const index = new RateIndex([table('b1'), table('b2'), table('b3')], rates, new Date(), routing);
  const lookup = (t: string, n: string, at: Date | number) => index.lookup(t, n, at);
  return { index, lookup };
}

const sell = (perMin: bigint, fee = 0n) => ({ ratePerMin: perMin, connectFee: fee, initialIncrement: 60, subsequentIncrement: 60 });
const names = (d: ReturnType<typeof planRoute>) => (d.kind === 'route' ? d.candidates.map((c) => c.carrier.name) : d.kind);

describe('planRoute', () => {
  it('least cost: orders by the buy rate of each carrier for the number (longest prefix per carrier table)', () => {
    const { index, lookup } = setup([entry('', 'lcr')]);
    expect(names(planRoute(index.routing, lookup, 'p', '442071234567', sell(100_000n), 0))).toEqual(['c2', 'c3', 'c1']);
    expect(names(planRoute(index.routing, lookup, 'p', '447700900123', sell(100_000n), 0))).toEqual(['c3', 'c2', 'c1']);
  });

  it('ordered entries keep their order; the longest entry prefix wins; block refuses', () => {
    const { index, lookup } = setup([entry('', 'lcr'), entry('44', 'ordered', [['1', 0], ['3', 1]]), entry('4420', 'block')]);
    expect(names(planRoute(index.routing, lookup, 'p', '447700900123', sell(100_000n), 0))).toEqual(['c1', 'c3']);
    expect(planRoute(index.routing, lookup, 'p', '442071234567', sell(100_000n), 0).kind).toBe('blocked');
  });

  it('never at a loss: dearer carriers are left out, and none left is "loss" with the plan prompt', () => {
    const { index, lookup } = setup([entry('', 'lcr')]);
    // sell 0.026: c2 (0.02) and c3 (0.025) fit, c1 (0.03) does not
    expect(names(planRoute(index.routing, lookup, 'p', '442071234567', sell(26_000n), 0))).toEqual(['c2', 'c3']);
    expect(planRoute(index.routing, lookup, 'p', '442071234567', sell(19_999n), 0)).toEqual({ kind: 'loss', prompt: 'destination_unprofitable' });
    // a connect fee counts: 0.02/min + 0.01 connect on the sell side covers c1's 0.03
    expect(names(planRoute(index.routing, lookup, 'p', '442071234567', sell(20_000n, 10_000n), 0))).toEqual(['c2', 'c3', 'c1']);
  });

  it('skips tried or cooling carriers, then answers "unavailable"; no plan or no entry is the default gateway', () => {
    const { index, lookup } = setup([entry('44', 'lcr')]);
    const skip = new Set(['2']);
    expect(names(planRoute(index.routing, lookup, 'p', '442071234567', sell(100_000n), 0, { skip: (id) => skip.has(id) }))).toEqual(['c3', 'c1']);
    expect(planRoute(index.routing, lookup, 'p', '442071234567', sell(100_000n), 0, { skip: () => true }).kind).toBe('unavailable');
    expect(planRoute(index.routing, lookup, 'p', '15551234567', sell(100_000n), 0).kind).toBe('default');
    expect(planRoute(index.routing, lookup, null, '442071234567', sell(100_000n), 0).kind).toBe('default');
  });

  it('a disabled carrier or one without a buy rate is never chosen', () => {
    const { index, lookup } = setup([entry('', 'lcr')], [carrier('1', { enabled: false }), carrier('2'), carrier('3'), carrier('4')]);
    expect(names(planRoute(index.routing, lookup, 'p', '442071234567', sell(100_000n), 0))).toEqual(['c2', 'c3']);
  });

  it('carriers sharing a place split the traffic by weight', () => {
    const { index, lookup } = setup([entry('', 'ordered', [['1', 0, 3], ['2', 0, 1], ['3', 1]])]);
    let seed = 1;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const firsts = { c1: 0, c2: 0 } as Record<string, number>;
    for (let i = 0; i < 4000; i++) {
      const d = planRoute(index.routing, lookup, 'p', '442071234567', sell(100_000n), 0, { random });
      const n = names(d) as string[];
      expect(n[2]).toBe('c3');
      firsts[n[0]!]!++;
    }
    expect(firsts.c1! / 4000).toBeGreaterThan(0.7);
    expect(firsts.c1! / 4000).toBeLessThan(0.8);
  });

  it('the dial number and the one-minute measure', () => {
    expect(carrierNumber({ prefixStrip: 1, prefixAdd: '00' }, '15551234567')).toBe('005551234567');
    expect(carrierNumber({ prefixStrip: 0, prefixAdd: '' }, '4420')).toBe('4420');
    // 30/6 increments bill a minute as 60 s; 90 s initial bills it as 90 s
    expect(minuteCost60({ ratePerMin: 60n, connectFee: 1n, initialIncrement: 30, subsequentIncrement: 6 })).toBe(60n + 60n * 60n);
    expect(minuteCost60({ ratePerMin: 60n, connectFee: 0n, initialIncrement: 90, subsequentIncrement: 6 })).toBe(60n * 90n);
  });
});
