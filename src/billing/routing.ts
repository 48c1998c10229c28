import { PrefixIndex, type PrefixKeyed, type RateEntry } from './prefix-index.ts';
import type { RateRule } from './rating.ts';

/** A carrier: a FreeSWITCH gateway and its buy-rate table (an ordinary rate table). Ids are strings (BIGINT). */
export interface Carrier {
  id: string;
  name: string;
  gateway: string;
  rateTableId: string;
  /** Simultaneous calls allowed through it; null: no limit. */
  maxCalls: number | null;
  prefixStrip: number;
  prefixAdd: string;
  enabled: boolean;
}

export type RoutingMode = 'ordered' | 'lcr' | 'block';

export interface EntryCarrier {
  carrierId: string;
  /** Carriers with the same position share it by weight. */
  position: number;
  weight: number;
}

export interface RoutingEntry {
  id: string;
  planId: string;
  /** Digits; '' matches every number (the plan's default entry). */
  prefix: string;
  mode: RoutingMode;
  /** 'ordered': the list, by position. 'lcr': the carriers to choose from (empty: every carrier). */
  carriers: EntryCarrier[];
}

export interface RoutingPlan {
  id: string;
  name: string;
  /** The prompt a caller hears when even the cheapest carrier costs more than the card pays. */
  lossPrompt: string;
}

type IndexedEntry = RoutingEntry & PrefixKeyed;

/** Carriers, plans and each plan's entries in a prefix trie (the one the rates use), immutable once built. */
export class RoutingIndex {
  private readonly carriers = new Map<string, Carrier>();
  private readonly plans = new Map<string, { plan: RoutingPlan; index: PrefixIndex<IndexedEntry>; fallback?: RoutingEntry }>();

  constructor(carriers: Iterable<Carrier>, plans: Iterable<RoutingPlan>, entries: Iterable<RoutingEntry>) {
    for (const c of carriers) this.carriers.set(c.id, c);
    const byPlan = new Map<string, { list: IndexedEntry[]; fallback?: RoutingEntry }>();
    for (const p of plans) byPlan.set(p.id, { list: [] });
    for (const e of entries) {
      const slot = byPlan.get(e.planId);
      if (!slot) throw new RangeError(`routing entry ${e.id} belongs to unknown plan ${e.planId}`);
      if (e.prefix === '') slot.fallback = e;
      else slot.list.push({ ...e, effectiveFrom: null, effectiveTo: null });
    }
    for (const p of plans) {
      const slot = byPlan.get(p.id)!;
      this.plans.set(p.id, { plan: p, index: PrefixIndex.build(slot.list), ...(slot.fallback && { fallback: slot.fallback }) });
    }
  }

  static empty(): RoutingIndex {
    return new RoutingIndex([], [], []);
  }

  carrier(id: string): Carrier | undefined {
    return this.carriers.get(id);
  }

  allCarriers(): Carrier[] {
    return [...this.carriers.values()];
  }

  plan(id: string): RoutingPlan | undefined {
    return this.plans.get(id)?.plan;
  }

  get planCount(): number {
    return this.plans.size;
  }

  /** The plan's entry for `number` by longest prefix, else its default entry (''), else undefined. */
  entryFor(planId: string, number: string): RoutingEntry | undefined {
    const p = this.plans.get(planId);
    if (!p) return undefined;
    return p.index.lookup(number, 0) ?? p.fallback;
  }
}

/** Looks a buy rate up (RateIndex.lookup: the same prefix index as the sell rates). */
export type BuyRateLookup = (rateTableId: string, number: string, now: Date | number) => RateEntry | undefined;

export interface RouteCandidate {
  carrier: Carrier;
  buy: RateEntry;
  /** The number as the carrier wants it (prefix strip / add). */
  dialNumber: string;
}

/**
 * What a plan says about a number. 'default': no plan applies (the access number's gateway). 'blocked': the entry
 * blocks it. 'loss': every carrier with a rate would cost more than the card pays. 'unavailable': carriers would
 * carry it but none can now (all tried, cooling down, disabled or without a buy rate). 'route': in order of use.
 */
export type RouteDecision =
  | { kind: 'default' }
  | { kind: 'blocked' }
  | { kind: 'loss'; prompt: string }
  | { kind: 'unavailable' }
  | { kind: 'route'; candidates: RouteCandidate[] };

export interface RouteOptions {
  /** Carriers already tried for this destination in this call (failover), or cooling down: left out. */
  skip?: (carrierId: string) => boolean;
  /** [0, 1): the weighted shuffle between carriers sharing a place. Default Math.random. */
  random?: () => number;
}

/** Seconds a one-minute call is billed under a rate's increments. */
function billableMinute(initial: number, subsequent: number): number {
  if (60 <= initial) return initial;
  return initial + Math.ceil((60 - initial) / subsequent) * subsequent;
}

/**
 * What a one-minute call costs under a rate, before tax and rounding, in micros × 60 (exact): the measure that
 * compares a carrier's buy rate with the card's sell rate, whatever their connect fees and increments.
 */
export function minuteCost60(r: { ratePerMin: bigint; connectFee: bigint; initialIncrement: number; subsequentIncrement: number }): bigint {
  return r.connectFee * 60n + r.ratePerMin * BigInt(billableMinute(r.initialIncrement, r.subsequentIncrement));
}

/** The number sent to a carrier: `prefixStrip` leading digits removed, `prefixAdd` put in front. */
export function carrierNumber(c: Pick<Carrier, 'prefixStrip' | 'prefixAdd'>, number: string): string {
  return c.prefixAdd + number.slice(Math.min(c.prefixStrip, number.length));
}

/** Weighted shuffle (Efraimidis–Spirakis): a higher weight comes first more often, in proportion. */
function weightedOrder<T extends { weight: number }>(items: T[], random: () => number): T[] {
  if (items.length < 2) return items;
  return items
    .map((it) => ({ it, key: Math.pow(Math.max(random(), Number.MIN_VALUE), 1 / it.weight) }))
    .sort((a, b) => b.key - a.key)
    .map((x) => x.it);
}

/** Groups sorted items by an equal key and shuffles each group by weight. */
function shuffleTies<T extends { weight: number }>(sorted: T[], key: (t: T) => bigint | number, random: () => number): T[] {
  const out: T[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    while (j < sorted.length && key(sorted[j]!) === key(sorted[i]!)) j++;
    out.push(...weightedOrder(sorted.slice(i, j), random));
    i = j;
  }
  return out;
}

/**
 * Chooses the carriers for a call to `number` (E.164 digits) under plan `planId`, in the order to try them.
 * Never at a loss: a carrier whose one-minute cost (minuteCost60) exceeds the card's sell rate is left out, and when
 * that leaves no carrier the answer is 'loss'. A carrier without a buy rate for the number is left out too (its cost
 * is unknown). `sell` is the card's rule for the number (its tax is not revenue and is ignored).
 */
export function planRoute(
  routing: RoutingIndex,
  buyRate: BuyRateLookup,
  planId: string | null | undefined,
  number: string,
  sell: Pick<RateRule, 'ratePerMin' | 'connectFee' | 'initialIncrement' | 'subsequentIncrement'>,
  now: Date | number,
  opts: RouteOptions = {},
): RouteDecision {
  if (!planId) return { kind: 'default' };
  const plan = routing.plan(planId);
  const entry = plan ? routing.entryFor(planId, number) : undefined;
  if (!plan || !entry) return { kind: 'default' };
  if (entry.mode === 'block') return { kind: 'blocked' };
  const random = opts.random ?? Math.random;
  const listed: EntryCarrier[] =
    entry.mode === 'lcr' && entry.carriers.length === 0
      ? routing.allCarriers().map((c) => ({ carrierId: c.id, position: 0, weight: 1 }))
      : entry.carriers;
  const sellMinute = minuteCost60(sell);
  type Priced = EntryCarrier & { carrier: Carrier; buy: RateEntry; minute: bigint };
  const priced: Priced[] = [];
  let anyPriced = false;
  for (const ec of listed) {
    const carrier = routing.carrier(ec.carrierId);
    if (!carrier || !carrier.enabled) continue;
    const buy = buyRate(carrier.rateTableId, number, now);
    if (!buy) continue;
    anyPriced = true;
    const minute = minuteCost60(buy);
    if (minute > sellMinute) continue;
    priced.push({ ...ec, carrier, buy, minute });
  }
  if (priced.length === 0) return anyPriced ? { kind: 'loss', prompt: plan.lossPrompt } : { kind: 'unavailable' };
  const ordered =
    entry.mode === 'lcr'
      ? shuffleTies(
          priced.sort((a, b) => (a.minute < b.minute ? -1 : a.minute > b.minute ? 1 : 0)),
          (p) => p.minute,
          random,
        )
      : shuffleTies(
          priced.sort((a, b) => a.position - b.position),
          (p) => p.position,
          random,
        );
  const candidates = ordered
    .filter((p) => !opts.skip?.(p.carrier.id))
    .map((p) => ({ carrier: p.carrier, buy: p.buy, dialNumber: carrierNumber(p.carrier, number) }));
  return candidates.length ? { kind: 'route', candidates } : { kind: 'unavailable' };
}
