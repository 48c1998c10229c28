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

export type IndexedEntry = RoutingEntry & PrefixKeyed;
export type ResolvedCarrier = EntryCarrier & { carrier: Carrier };

/** Carriers, plans and each plan's entries in a prefix trie (the one the rates use), immutable once built. */
export class RoutingIndex {
  private readonly carriers = new Map<string, Carrier>();
  private readonly plans = new Map<string, { plan: RoutingPlan; index: PrefixIndex<IndexedEntry>; fallback?: RoutingEntry }>();

  constructor(carriers: Iterable<Carrier>, plans: Iterable<RoutingPlan>, entries: Iterable<RoutingEntry>) {
    for (const c of carriers) this.carriers.set(c.id, c);
    this.everyCarrier = [...this.carriers.values()].map((carrier) => ({ carrierId: carrier.id, carrier, position: 0, weight: 1 }));
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

  /** Every carrier as the list of an 'lcr' entry that names none (built once). */
  readonly everyCarrier: readonly ResolvedCarrier[];
  private readonly resolved = new WeakMap<RoutingEntry, ResolvedCarrier[]>();

  /** The entry's carriers with their Carrier objects (unknown ids dropped), resolved once per index. */
  carriersOf(entry: RoutingEntry): readonly ResolvedCarrier[] {
    if (entry.mode === 'lcr' && entry.carriers.length === 0) return this.everyCarrier;
    let r = this.resolved.get(entry);
    if (!r) {
      r = [];
      for (const ec of entry.carriers) {
        const carrier = this.carriers.get(ec.carrierId);
        if (carrier) r.push({ ...ec, carrier });
      }
      this.resolved.set(entry, r);
    }
    return r;
  }

  plan(id: string): RoutingPlan | undefined {
    return this.plans.get(id)?.plan;
  }

  /** The plan, its entries' trie and its default entry: what the joined index (joined-index.ts) merges. */
  planParts(id: string): { plan: RoutingPlan; index: PrefixIndex<IndexedEntry>; fallback?: RoutingEntry } | undefined {
    return this.plans.get(id);
  }

  /** Ids of the rate tables whose buy rates the plan can consult: its enabled carriers' tables, each once. */
  buyTablesOf(planId: string): string[] {
    const p = this.plans.get(planId);
    if (!p) return [];
    const ids = new Set<string>();
    const add = (entry: RoutingEntry) => {
      if (entry.mode === 'block') return;
      for (const { carrier } of this.carriersOf(entry)) if (carrier.enabled) ids.add(carrier.rateTableId);
    };
    for (const e of p.index.rates()) add(e);
    if (p.fallback) add(p.fallback);
    return [...ids];
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
  readonly carrier: Carrier;
  readonly buy: RateEntry;
  /** The number as the carrier wants it (prefix strip / add). */
  readonly dialNumber: string;
}

/** Where a buy rate is when it was not read yet: version `v` of a table's trie (the joined index reads no more). */
interface VersionSource {
  version(v: number): RateEntry;
}

/**
 * A candidate whose buy rate is read from its table only when asked for: a call uses one carrier's (the one it
 * reserves on), so the others' rate objects are never fetched from memory.
 */
class Candidate implements RouteCandidate {
  private rate: RateEntry | undefined;
  constructor(
    readonly carrier: Carrier,
    readonly dialNumber: string,
    rate: RateEntry | undefined,
    private readonly source: VersionSource | undefined,
    private readonly v: number,
  ) {
    this.rate = rate;
  }

  get buy(): RateEntry {
    return (this.rate ??= this.source!.version(this.v));
  }

  toJSON(): object {
    return { carrier: this.carrier, buy: this.buy, dialNumber: this.dialNumber };
  }
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

type MinuteRate = { ratePerMin: bigint; connectFee: bigint; initialIncrement: number; subsequentIncrement: number };

/**
 * What a one-minute call costs under a rate, before tax and rounding, in micros × 60 (exact): the measure that
 * compares a carrier's buy rate with the card's sell rate, whatever their connect fees and increments.
 */
export function minuteCost60(r: MinuteRate): bigint {
  return r.connectFee * 60n + r.ratePerMin * BigInt(billableMinute(r.initialIncrement, r.subsequentIncrement));
}

/** Below this, micros × 60 × seconds stays an exact double (< 2^53): the hot path compares plain numbers. */
const SAFE_RATE = 1_000_000_000_000n;
const MINUTE = Symbol('minuteCost60');
type Stamped = MinuteRate & { [MINUTE]?: number };

function minuteNumber(r: MinuteRate): number {
  return r.ratePerMin < SAFE_RATE && r.connectFee < SAFE_RATE ? Number(minuteCost60(r)) : Number.MAX_SAFE_INTEGER;
}

/**
 * Stores a rate's minuteCost60 on it, as a number (exact for any realistic rate): RateIndex stamps every rate when
 * it builds, so routing compares a carrier's cost with one property read per carrier and call.
 */
export function stampMinute(r: MinuteRate): void {
  (r as Stamped)[MINUTE] = minuteNumber(r);
}

/** A rate's minuteCost60 as a number: the stamp RateIndex put on it, else computed. */
export function minuteOf(r: MinuteRate): number {
  return (r as Stamped)[MINUTE] ?? minuteNumber(r);
}

/** The number sent to a carrier: `prefixStrip` leading digits removed, `prefixAdd` put in front. */
export function carrierNumber(c: Pick<Carrier, 'prefixStrip' | 'prefixAdd'>, number: string): string {
  if (c.prefixStrip === 0 && c.prefixAdd === '') return number;
  return c.prefixAdd + number.slice(Math.min(c.prefixStrip, number.length));
}

/*
 * The carriers of the decision being made, before they are ordered: preallocated, reused by every decision (a
 * decision is synchronous and never re-entered: skip() and random() must not route), so ordering allocates nothing
 * but the answer. Both paths fill it - planRoute (one trie per table) and the joined index (joined-index.ts) - and
 * finishRoute orders it, so they cannot differ in how carriers are chosen.
 */
let pricedCount = 0;
const pricedCarrier: Carrier[] = [];
const pricedBuy: (RateEntry | undefined)[] = [];
const pricedSource: (VersionSource | undefined)[] = [];
let pricedVersion = new Int32Array(16);
let pricedKey = new Float64Array(16);
let pricedWeight = new Float64Array(16);
let pricedDraw = new Float64Array(16);
let pricedOrder = new Int32Array(16);

/** Starts a decision's carrier list. @internal */
export function pricedReset(): void {
  pricedCount = 0;
}

/**
 * Adds a carrier that may carry the call: `key` is its place ('ordered') or one-minute buy cost ('lcr'); its buy rate
 * is `buy`, or (undefined) version `v` of `source`, read if asked for. @internal
 */
export function pricedPush(carrier: Carrier, buy: RateEntry | undefined, key: number, weight: number, source?: VersionSource, v = -1): void {
  const i = pricedCount;
  if (i === pricedKey.length) {
    const grow = <A extends Float64Array | Int32Array>(a: A): A => {
      const b = new (a.constructor as new (n: number) => A)(a.length * 2);
      b.set(a);
      return b;
    };
    pricedKey = grow(pricedKey);
    pricedWeight = grow(pricedWeight);
    pricedDraw = grow(pricedDraw);
    pricedOrder = grow(pricedOrder);
    pricedVersion = grow(pricedVersion);
  }
  pricedCarrier[i] = carrier;
  pricedBuy[i] = buy;
  pricedSource[i] = source;
  pricedVersion[i] = v;
  pricedKey[i] = key;
  pricedWeight[i] = weight;
  pricedDraw[i] = 0;
  pricedOrder[i] = i;
  pricedCount = i + 1;
}

/** Orders by key, then ties by draw (descending), stable: insertion sort, the lists are a handful of carriers. */
function sortPriced(n: number): void {
  const order = pricedOrder;
  const key = pricedKey;
  const draw = pricedDraw;
  for (let i = 1; i < n; i++) {
    const x = order[i]!;
    const kx = key[x]!;
    const dx = draw[x]!;
    let j = i - 1;
    while (j >= 0) {
      const y = order[j]!;
      if (!(key[y]! > kx || (key[y] === kx && draw[y]! < dx))) break;
      order[j + 1] = y;
      j--;
    }
    order[j + 1] = x;
  }
}

const DEFAULT: RouteDecision = Object.freeze({ kind: 'default' });
const BLOCKED: RouteDecision = Object.freeze({ kind: 'blocked' });
const UNAVAILABLE: RouteDecision = Object.freeze({ kind: 'unavailable' });
/** @internal */
export const DECISION_DEFAULT = DEFAULT;
/** @internal */
export const DECISION_BLOCKED = BLOCKED;

/**
 * The decision from the carriers pushed since pricedReset. `anyPriced`: some enabled carrier had a buy rate;
 * `anyAffordable`: one of them cost no more than the card pays (it may have been skipped). @internal
 */
export function finishRoute(number: string, anyPriced: boolean, anyAffordable: boolean, lossPrompt: string, random: () => number): RouteDecision {
  const n = pricedCount;
  if (n === 0) {
    if (!anyPriced) return UNAVAILABLE;
    // Everything priced was left out: at a loss, unless a carrier that would be fine is only tried or cooling.
    return anyAffordable ? UNAVAILABLE : { kind: 'loss', prompt: lossPrompt };
  }
  const order = pricedOrder;
  if (n > 1) {
    sortPriced(n);
    // Ties only (same place, same cost): a weighted draw orders them.
    let ties = false;
    for (let i = 1; i < n; i++) if (pricedKey[order[i]!] === pricedKey[order[i - 1]!]) ties = true;
    if (ties) {
      for (let i = 0; i < n; i++) {
        const j = order[i]!;
        pricedDraw[j] = Math.pow(Math.max(random(), Number.MIN_VALUE), 1 / pricedWeight[j]!);
      }
      sortPriced(n);
    }
  }
  const candidates: RouteCandidate[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i]!;
    const carrier = pricedCarrier[j]!;
    candidates[i] = new Candidate(carrier, carrierNumber(carrier, number), pricedBuy[j], pricedSource[j], pricedVersion[j]!);
  }
  return { kind: 'route', candidates };
}

/**
 * Chooses the carriers for a call to `number` (E.164 digits) under plan `planId`, in the order to try them.
 * Never at a loss: a carrier whose one-minute cost (minuteCost60) exceeds the card's sell rate is left out, and when
 * that leaves no carrier the answer is 'loss'. A carrier without a buy rate for the number is left out too (its cost
 * is unknown). Carriers with the same place ('ordered') or the same cost ('lcr') are shuffled by weight, so traffic
 * is shared in proportion. `sell` is the card's rule for the number (its tax is not revenue and is ignored).
 */
export function planRoute(
  routing: RoutingIndex,
  buyRate: BuyRateLookup,
  planId: string | null | undefined,
  number: string,
  sell: MinuteRate,
  now: Date | number,
  opts: RouteOptions = {},
): RouteDecision {
  if (!planId) return DEFAULT;
  const plan = routing.plan(planId);
  const entry = plan ? routing.entryFor(planId, number) : undefined;
  if (!plan || !entry) return DEFAULT;
  if (entry.mode === 'block') return BLOCKED;
  const skip = opts.skip;
  const listed = routing.carriersOf(entry);
  const sellMinute = minuteOf(sell);
  const lcr = entry.mode === 'lcr';
  pricedReset();
  let anyPriced = false;
  let anyAffordable = false;
  for (let k = 0; k < listed.length; k++) {
    const ec = listed[k]!;
    const carrier = ec.carrier;
    if (!carrier.enabled) continue;
    const buy = buyRate(carrier.rateTableId, number, now);
    if (!buy) continue;
    anyPriced = true;
    const minute = minuteOf(buy);
    if (minute > sellMinute) continue;
    anyAffordable = true;
    if (skip?.(carrier.id)) continue;
    pricedPush(carrier, buy, lcr ? minute : ec.position, ec.weight);
  }
  return finishRoute(number, anyPriced, anyAffordable, plan.lossPrompt, opts.random ?? Math.random);
}
