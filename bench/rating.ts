import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { JoinedIndexes } from '../src/billing/joined-index.ts';
import { pathToFileURL } from 'node:url';
import { PrefixIndex, type RateEntry } from '../src/billing/prefix-index.ts';
import { cost, maxSeconds, type RateRule } from '../src/billing/rating.ts';
import { planRoute, RoutingIndex, type Carrier } from '../src/billing/routing.ts';
import { RateIndex, type RateTableInfo } from '../src/store/rates.ts';

/** Deterministic PRNG (mulberry32) so runs are comparable; the joined-index property test draws from it too. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function digits(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(48 + Math.floor(rand() * 10));
  return s;
}

/**
 * Runs fn in batches until at least `ms` of wall time have passed. Returns calls per wall second and per CPU
 * second of this process (the latter is what the code can do on one core when other processes share the machine).
 */
function measure(fn: (i: number) => unknown, ms: number): { wall: number; cpu: number } {
  const batch = 10_000;
  let sink = 0;
  for (let i = 0; i < 5 * batch; i++) if (fn(i) !== undefined) sink++; // warm-up: let the JIT optimise
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let calls = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < batch; i++) if (fn(calls + i) !== undefined) sink++;
    calls += batch;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  const cpu = process.cpuUsage(cpu0);
  if (sink < 0) console.log(sink);
  const cpuMicros = Math.max(1, cpu.user + cpu.system);
  return { wall: Math.round((calls * 1e9) / Number(elapsed)), cpu: Math.round((calls * 1e6) / cpuMicros) };
}

export interface BenchRatingOptions {
  prefixes?: number;
  /** Minimum timing per measurement. */
  ms?: number;
  /** Carriers of the sell + route measurement, each with a buy-rate table of `prefixes` prefixes (default 3; 0 skips it). */
  carriers?: number;
}

function randomTable(rand: () => number, tableId: string, count: number, firstId: number): RateEntry[] {
  const seen = new Set<string>();
  const out: RateEntry[] = [];
  while (seen.size < count) {
    const prefix = digits(rand, 1 + Math.floor(rand() * 10));
    if (seen.has(prefix)) continue;
    seen.add(prefix);
    out.push({
      id: String(firstId + out.length),
      rateTableId: tableId,
      prefix,
      destination: '',
      ratePerMin: BigInt(Math.floor(rand() * 500_000)),
      connectFee: 0n,
      initialIncrement: 60,
      subsequentIncrement: 60,
      effectiveFrom: null,
      effectiveTo: null,
    });
  }
  return out;
}

/**
 * Sell + route: per number, the sell rate (the card's table) and the routing decision of a least-cost plan over
 * `carriers` carriers (the plan's entry, then each carrier's buy rate, all in the same RateIndex; loss filter and
 * ordering included): what a routed reservation does before it touches Redis or PostgreSQL.
 */
async function benchRoute(sellRates: RateEntry[], numbers: string[], count: number, carriers: number, ms: number, seed: number) {
  const rand = rng(seed);
  const tables: RateTableInfo[] = [{ id: '1', name: 'sell', currency: 'USD', decimals: 2, rounding: 'up', minBillableSeconds: 0 }];
  const carrierList: Carrier[] = [];
  const all: RateEntry[][] = [sellRates];
  for (let k = 0; k < carriers; k++) {
    const id = String(k + 2);
    tables.push({ id, name: `buy-${id}`, currency: 'USD', decimals: 2, rounding: 'up', minBillableSeconds: 0 });
    carrierList.push({ id, name: `c${id}`, gateway: `gw${id}`, rateTableId: id, maxCalls: null, prefixStrip: 0, prefixAdd: '', enabled: true });
    all.push(randomTable(rand, id, count, 10_000_000 * (k + 1)));
  }
  const routing = new RoutingIndex(carrierList, [{ id: 'p', name: 'lcr', lossPrompt: 'destination_unprofitable' }], [
    { id: '1', planId: 'p', prefix: '', mode: 'lcr', carriers: [] },
  ]);
  const t0 = process.hrtime.bigint();
  const joins = new JoinedIndexes({ budgetBytes: 2 ** 31 });
  const index = new RateIndex(tables, all.flat(), new Date(), routing, joins);
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const now = Date.now();
  const n = numbers.length;

  // Per table (what is served until the pair's joined index is built): the sell walk, then planRoute.
  let routed = 0;
  for (let i = 0; i < 20_000; i++) {
    const r = index.routeByTables('1', 'p', numbers[i % n]!, 0, now);
    if (r?.decision.kind === 'route') routed++;
  }
  const byTables = measure((i) => index.routeByTables('1', 'p', numbers[i % n]!, 0, now), ms);

  // The joined index, built the way the service builds it: requested by the first decision, then in slices
  // between other work. The event loop's longest delay meanwhile is what a call could have waited.
  const heap0 = process.memoryUsage().heapUsed;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let stats: NonNullable<ReturnType<typeof joins.get>>['stats'] | undefined;
  const b0 = process.hrtime.bigint();
  index.route('1', 'p', numbers[0]!, 0, now); // requests the build
  await joins.idle();
  const joinWallMs = Number(process.hrtime.bigint() - b0) / 1e6;
  delay.disable();
  const joined = joins.get(index, '1', 'p');
  if (!joined) throw new Error('joined index not built');
  stats = joined.stats;
  const heapDelta = process.memoryUsage().heapUsed - heap0;
  // Same decisions both ways (the property test proves it in general; this checks the bench's data).
  for (let i = 0; i < 20_000; i++) {
    const a = index.routeByTables('1', 'p', numbers[i % n]!, 0, now);
    const b = index.route('1', 'p', numbers[i % n]!, 0, now);
    const key = (r: typeof a) =>
      r ? `${r.sell.rate.id}:${r.decision.kind === 'route' ? r.decision.candidates.map((c) => c.buy.id).join(',') : r.decision.kind}` : '-';
    if (key(a) !== key(b)) throw new Error(`joined and per-table decisions differ for ${numbers[i % n]}: ${key(a)} / ${key(b)}`);
  }
  const r = measure((i) => index.route('1', 'p', numbers[i % n]!, 0, now), ms);
  return {
    carriers,
    rates: index.rateCount,
    buildMs: Math.round(buildMs),
    routedRatio: Math.round((routed / 20_000) * 1000) / 1000,
    byTables,
    ...r,
    join: {
      wallMs: Math.round(joinWallMs),
      cpuMs: Math.round(stats.buildCpuMs),
      slices: stats.slices,
      maxSliceMs: Math.round(stats.maxSliceMs * 10) / 10,
      maxLoopDelayMs: Math.round((delay.max / 1e6) * 10) / 10,
      nodes: stats.nodes,
      blocks: stats.blocks,
      MB: Math.round(stats.bytes / 1e5) / 10,
      heapDeltaMB: Math.round(heapDelta / 1e5) / 10,
    },
  };
}

/**
 * 1,000,000 distinct random prefixes (1..10 digits, uniform length; ~10% with a second, dated version), looked up
 * with 11..14-digit numbers: half random, half extending a real prefix. Also cost() and maxSeconds() per second.
 */
export async function benchRating(opts: BenchRatingOptions = {}): Promise<Record<string, number | string>> {
  // BENCH_PREFIXES / BENCH_MS / BENCH_CARRIERS: a small run (e.g. 100000 / 300) proves it works on a loaded machine.
  const env = process.env;
  const count = opts.prefixes ?? (Number(env.BENCH_PREFIXES) || 1_000_000);
  const ms = opts.ms ?? (Number(env.BENCH_MS) || 1_000);
  const carriers = opts.carriers ?? (env.BENCH_CARRIERS !== undefined ? Number(env.BENCH_CARRIERS) : 3);
  const rand = rng(42);
  const seen = new Set<string>();
  const rates: RateEntry[] = [];
  const t2025 = new Date('2025-01-01T00:00:00Z');
  while (seen.size < count) {
    const prefix = digits(rand, 1 + Math.floor(rand() * 10));
    if (seen.has(prefix)) continue;
    seen.add(prefix);
    const base: RateEntry = {
      id: String(rates.length + 1),
      rateTableId: '1',
      prefix,
      destination: '',
      ratePerMin: BigInt(Math.floor(rand() * 500_000)),
      connectFee: 0n,
      initialIncrement: 60,
      subsequentIncrement: 60,
      effectiveFrom: null,
      effectiveTo: null,
    };
    if (rand() < 0.1) {
      rates.push({ ...base, effectiveTo: t2025 });
      rates.push({ ...base, id: String(rates.length + 1), effectiveFrom: t2025, ratePerMin: base.ratePerMin + 1n });
    } else {
      rates.push(base);
    }
  }
  const prefixList = [...seen];
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const index = PrefixIndex.build(rates);
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const buildCpu = process.cpuUsage(c0);
  const heapAfter = process.memoryUsage().heapUsed;

  const numbers: string[] = [];
  for (let i = 0; i < 200_000; i++) {
    if (i % 2 === 0) numbers.push(digits(rand, 11 + Math.floor(rand() * 4)));
    else {
      const p = prefixList[Math.floor(rand() * prefixList.length)]!;
      numbers.push(p + digits(rand, Math.max(1, 12 - p.length)));
    }
  }
  const now = Date.now();
  const n = numbers.length;
  let hits = 0;
  for (const num of numbers) if (index.lookup(num, now)) hits++;
  const lookups = measure((i) => index.lookup(numbers[i % n]!, now), ms);

  const rules: RateRule[] = [];
  for (let i = 0; i < 1024; i++) {
    rules.push({
      ratePerMin: BigInt(Math.floor(rand() * 2_000_000)),
      connectFee: BigInt(Math.floor(rand() * 100_000)),
      initialIncrement: 1 + Math.floor(rand() * 60),
      subsequentIncrement: 1 + Math.floor(rand() * 60),
      decimals: Math.floor(rand() * 7),
      rounding: (['up', 'half_up', 'down'] as const)[i % 3]!,
      minBillableSeconds: Math.floor(rand() * 5),
      taxPpm: Math.floor(rand() * 250_000),
    });
  }
  const balances = rules.map(() => BigInt(Math.floor(rand() * 50_000_000)));
  const costs = measure((i) => cost(rules[i & 1023]!, i % 7200), ms);
  const maxes = measure((i) => maxSeconds(rules[i & 1023]!, balances[i & 1023]!, 14_400), ms);
  const route = carriers > 0 ? await benchRoute(rates, numbers, count, carriers, ms, 7) : undefined;

  return {
    prefixes: index.prefixCount,
    rates: index.size,
    buildMs: Math.round(buildMs),
    buildCpuMs: Math.round((buildCpu.user + buildCpu.system) / 1000),
    trieMB: Math.round(index.trieBytes / 1e5) / 10,
    heapDeltaMB: Math.round((heapAfter - heapBefore) / 1e5) / 10,
    hitRatio: Math.round((hits / n) * 1000) / 1000,
    lookupsPerSec: lookups.wall,
    lookupsPerCpuSec: lookups.cpu,
    costPerSec: costs.wall,
    costPerCpuSec: costs.cpu,
    maxSecondsPerSec: maxes.wall,
    maxSecondsPerCpuSec: maxes.cpu,
    ...(route && {
      routeCarriers: route.carriers,
      routeTablesRates: route.rates,
      routeBuildMs: route.buildMs,
      routeRoutedRatio: route.routedRatio,
      // One decision: the sell rate, the plan's entry and one buy rate per carrier, then the carriers ordered.
      // Per table: 2 + carriers trie walks. Joined: one walk of the pair's joined index (what calls use once built).
      sellPlusRouteByTablesPerSec: route.byTables.wall,
      sellPlusRouteByTablesPerCpuSec: route.byTables.cpu,
      sellPlusRoutePerSec: route.wall,
      sellPlusRoutePerCpuSec: route.cpu,
      joinBuildWallMs: route.join.wallMs,
      joinBuildCpuMs: route.join.cpuMs,
      joinBuildSlices: route.join.slices,
      joinMaxSliceMs: route.join.maxSliceMs,
      joinMaxEventLoopDelayMs: route.join.maxLoopDelayMs,
      joinNodes: route.join.nodes,
      joinBlocks: route.join.blocks,
      joinMB: route.join.MB,
      joinHeapDeltaMB: route.join.heapDeltaMB,
    }),
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
    maxSecondsCap: 14_400,
    node: process.version,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchRating(), null, 2));
}
