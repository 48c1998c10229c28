import { ALWAYS, CHILD_MASK, COUNT_SHIFT, POPCOUNT, type PrefixIndex, type RateEntry } from './prefix-index.ts';
import {
  DECISION_BLOCKED,
  DECISION_DEFAULT,
  finishRoute,
  minuteOf,
  pricedPush,
  pricedReset,
  type IndexedEntry,
  type ResolvedCarrier,
  type RouteDecision,
  type RouteOptions,
  type RoutingEntry,
  type RoutingIndex,
  type RoutingPlan,
} from './routing.ts';

/*
 * The joined index of one (sell table, routing plan) pair: the sell table's trie, the plan's entry trie and the buy
 * tables of the plan's carriers merged into ONE trie, so a routing decision is one walk instead of one per table.
 *
 * It is built by merging the packed tries (PrefixIndex) themselves, not by inserting prefixes: a depth-first
 * simultaneous traversal that carries, per merged node, the node of each source trie at the same digits (or -1).
 * Linear in the nodes produced, no string touched. Two things keep it small:
 * - Delegation: below a point where only ONE source still has nodes, nothing is copied; the merged node says
 *   "continue in source c at its node n" and the walk carries on in that source's own trie. Random or unrelated
 *   tables overlap only near the root, so most of the merged trie is a few levels of shared top.
 * - Values by block: a merged node where some source has a prefix ends carries a block, one int per source, of the
 *   deepest value of each source on the path so far (inherited from above). A walk keeps the last block it passed,
 *   and, past a delegation, the deepest node of the delegated source that has a prefix.
 * A value is the source's version index when that prefix has a single rate with no date window (ALWAYS), -2 when
 * its rate depends on the date (the answer then comes from that source's own lookup(number, at): exactly the
 * per-table answer, just slower), -1 when the source has no prefix of the number.
 *
 * Merged node layout, 2 ints [meta, link]: meta = 10-bit child mask | HAS_BLOCK | DELEGATE | column << COL_SHIFT.
 * link: the first child (children contiguous, digit d at link + popcount(mask below d)); for a leaf with a block, the
 * block; for a node with children and a block, the block is in the spare slot just before its children
 * (nodes[2 * (link - 1)]); for a delegate, the source node to continue from.
 */

const HAS_BLOCK = 1 << 10;
const DELEGATE = 1 << 11;
const COL_SHIFT = 12;
const NONE = -1;
const DATED = -2;
/** Source tries are at most 20 deep (MAX_PREFIX_LENGTH): the DFS stack holds at most 10 frames per level. */
const MAX_FRAMES = 21 * 10 + 2;

/** What a joined index is built from; it is valid for a snapshot only while every one of these is identical. */
export interface JoinSources {
  tableId: string;
  planId: string;
  sell: PrefixIndex<RateEntry>;
  routing: RoutingIndex;
  /** The plan's buy tables (RoutingIndex.buyTablesOf) as the snapshot had them (undefined: no such table). */
  buyIds: readonly string[];
  buy: readonly (PrefixIndex<RateEntry> | undefined)[];
}

/** The part of a rate snapshot (RateIndex) that a joined index reads. */
export interface JoinSnapshot {
  readonly routing: RoutingIndex;
  tableIndex(tableId: string): PrefixIndex<RateEntry> | undefined;
}

/** The sources of pair (tableId, planId) in `snap`, or undefined when the table or the plan does not exist. */
export function sourcesOf(snap: JoinSnapshot, tableId: string, planId: string): JoinSources | undefined {
  const sell = snap.tableIndex(tableId);
  if (!sell || !snap.routing.planParts(planId)) return undefined;
  const buyIds = snap.routing.buyTablesOf(planId);
  return { tableId, planId, sell, routing: snap.routing, buyIds, buy: buyIds.map((id) => snap.tableIndex(id)) };
}

function sameSources(s: JoinSources, snap: JoinSnapshot): boolean {
  if (snap.routing !== s.routing || snap.tableIndex(s.tableId) !== s.sell) return false;
  for (let i = 0; i < s.buyIds.length; i++) if (snap.tableIndex(s.buyIds[i]!) !== s.buy[i]) return false;
  return true;
}

/** One-minute costs of a table's versions (minuteOf), computed once per trie and shared by every pair using it. */
const minutesOf = new WeakMap<PrefixIndex<RateEntry>, Float64Array>();

/**
 * A block: k int32 values (ceil(k / 2) doubles), then k doubles: each column's one-minute cost (minuteOf) when its
 * value is a version, so the carriers are priced and ordered from the block alone, one or two cache lines.
 */
interface BlockLayout {
  /** Doubles per block. */
  stride: number;
  /** Doubles before the minutes. */
  half: number;
}
function blockLayout(k: number): BlockLayout {
  const half = Math.ceil(k / 2);
  return { stride: half + k, half };
}

export interface JoinStats {
  nodes: number;
  blocks: number;
  bytes: number;
  /** Wall time from the first slice to the last, and CPU time spent in slices. */
  buildMs: number;
  buildCpuMs: number;
  slices: number;
  /** The longest slice (what the build took from the event loop at once). */
  maxSliceMs: number;
}

export class JoinedIndex {
  /** Sell, plan, then each distinct buy trie. */
  private readonly colNodes: Int32Array[];
  private readonly cols: PrefixIndex<RateEntry | IndexedEntry>[];
  private readonly minutes: (Float64Array | undefined)[];
  private readonly k: number;
  /** The blocks (BlockLayout): values as int32, minutes as doubles, over one buffer. */
  private readonly bi: Int32Array;
  private readonly bf: Float64Array;
  private readonly stride: number;
  private readonly half: number;
  private readonly plan: RoutingPlan;
  private readonly planIndex: PrefixIndex<IndexedEntry>;
  private readonly fallback: RoutingEntry | undefined;
  /** Per plan version (and the default entry): its carriers, and each one's column (-1: disabled or no table). */
  private readonly entryListed: (readonly ResolvedCarrier[])[];
  private readonly entryCols: Int32Array[];
  private readonly fallbackListed: readonly ResolvedCarrier[];
  private readonly fallbackCols: Int32Array;
  private readonly entryVersion = new Map<RoutingEntry, number>();
  /**
   * The sell rate of the last route(), read at once by the caller (route() is synchronous): version lastSellVersion
   * of the sell table (sellTable), or lastSellRate when it was looked up by date; neither: none.
   */
  lastSellVersion = -1;
  lastSellRate: RateEntry | undefined;

  /** The sell table's trie (column 0). */
  get sellTable(): PrefixIndex<RateEntry> {
    return this.cols[0] as PrefixIndex<RateEntry>;
  }

  /** The sell rate of the last route() (read from memory now). */
  get lastSell(): RateEntry | undefined {
    return this.lastSellRate ?? (this.lastSellVersion >= 0 ? this.sellTable.version(this.lastSellVersion) : undefined);
  }

  constructor(
    readonly sources: JoinSources,
    private readonly nodes: Int32Array,
    blockBuf: ArrayBuffer,
    columns: PrefixIndex<RateEntry | IndexedEntry>[],
    buyCol: Map<PrefixIndex<RateEntry>, number>,
    minutes: (Float64Array | undefined)[],
    readonly stats: JoinStats,
  ) {
    this.cols = columns;
    this.colNodes = columns.map((c) => c.packedNodes);
    this.k = columns.length;
    this.minutes = minutes;
    this.bi = new Int32Array(blockBuf);
    this.bf = new Float64Array(blockBuf);
    const layout = blockLayout(this.k);
    this.stride = layout.stride;
    this.half = layout.half;
    const parts = sources.routing.planParts(sources.planId)!;
    this.plan = parts.plan;
    this.planIndex = parts.index;
    this.fallback = parts.fallback;
    const tableCol = new Map<string, number>();
    sources.buyIds.forEach((id, i) => {
      const t = sources.buy[i];
      if (t) tableCol.set(id, buyCol.get(t)!);
    });
    const colsOf = (listed: readonly ResolvedCarrier[]) =>
      Int32Array.from(listed, ({ carrier }) => (carrier.enabled ? (tableCol.get(carrier.rateTableId) ?? -1) : -1));
    this.entryListed = [];
    this.entryCols = [];
    for (let v = 0; v < this.planIndex.size; v++) {
      const e = this.planIndex.version(v);
      const listed = sources.routing.carriersOf(e);
      this.entryListed.push(listed);
      this.entryCols.push(colsOf(listed));
      this.entryVersion.set(e, v);
    }
    this.fallbackListed = this.fallback ? sources.routing.carriersOf(this.fallback) : [];
    this.fallbackCols = colsOf(this.fallbackListed);
  }

  /** True when this index was built from exactly what `snap` holds for its pair (else it must not be used). */
  matches(snap: JoinSnapshot): boolean {
    return sameSources(this.sources, snap);
  }

  get bytes(): number {
    return this.stats.bytes;
  }

  /**
   * The sell rate (lastSellVersion / lastSellRate) and the routing decision for `number` at `at`, exactly as
   * RateIndex.lookup(sell) + planRoute would give them. undefined: no sell rate (or not a number).
   */
  route(number: string, at: Date | number, opts: RouteOptions = {}): RouteDecision | undefined {
    this.lastSellVersion = -1;
    this.lastSellRate = undefined;
    const len = number.length;
    if (len === 0 || len > 32) return undefined;
    for (let i = 0; i < len; i++) {
      const c = number.charCodeAt(i);
      if (c < 48 || c > 57) return undefined;
    }
    // One walk: the merged trie, then (past a delegation) the one source left.
    const mn = this.nodes;
    let node = 0;
    let meta = mn[0]!;
    let blkNode = -1;
    let delCol = -1;
    let delNode = -1;
    for (let i = 0; i < len; i++) {
      const d = number.charCodeAt(i) - 48;
      if (((meta >> d) & 1) === 0) break;
      node = mn[2 * node + 1]! + POPCOUNT[meta & ((1 << d) - 1)]!;
      meta = mn[2 * node]!;
      if ((meta & DELEGATE) !== 0) {
        delCol = meta >>> COL_SHIFT;
        const sn = this.colNodes[delCol]!;
        let s = mn[2 * node + 1]!;
        let sm = sn[3 * s]!;
        if (sm >>> COUNT_SHIFT !== 0) delNode = s;
        for (i++; i < len; i++) {
          const e = number.charCodeAt(i) - 48;
          if (((sm >> e) & 1) === 0) break;
          s = sn[3 * s + 1]! + POPCOUNT[sm & ((1 << e) - 1)]!;
          sm = sn[3 * s]!;
          if (sm >>> COUNT_SHIFT !== 0) delNode = s;
        }
        break;
      }
      if ((meta & HAS_BLOCK) !== 0) blkNode = node;
    }
    // The block of values: ib (int32 index of its values), fb (double index of its minutes); -1: none.
    let ib = -1;
    let fb = -1;
    if (blkNode >= 0) {
      const m = mn[2 * blkNode]!;
      const b = (m & CHILD_MASK) !== 0 ? mn[2 * (mn[2 * blkNode + 1]! - 1)]! : mn[2 * blkNode + 1]!;
      ib = b * 2 * this.stride;
      fb = b * this.stride + this.half;
    }
    let delValue = NONE;
    if (delNode >= 0) {
      const sn = this.colNodes[delCol]!;
      delValue = (sn[3 * delNode]! & ALWAYS) !== 0 ? sn[3 * delNode + 2]! : DATED;
    } else delCol = -1;
    const bi = this.bi;
    const bf = this.bf;

    // Sell: column 0.
    let v = delCol === 0 ? delValue : ib >= 0 ? bi[ib]! : NONE;
    const sellIndex = this.cols[0] as PrefixIndex<RateEntry>;
    let sellMinute: number;
    if (v >= 0) {
      this.lastSellVersion = v;
      sellMinute = delCol === 0 ? this.minutes[0]![v]! : bf[fb]!;
    } else {
      const sell = v === DATED ? sellIndex.lookup(number, at) : undefined;
      if (!sell) return undefined;
      this.lastSellRate = sell;
      sellMinute = minuteOf(sell);
    }

    // The plan's entry: column 1 (entries have no dates; RoutingIndex.entryFor looks them up at 0).
    v = delCol === 1 ? delValue : ib >= 0 ? bi[ib + 1]! : NONE;
    let listed: readonly ResolvedCarrier[];
    let cols: Int32Array;
    let entry: RoutingEntry | undefined;
    if (v >= 0) {
      entry = this.planIndex.version(v);
      listed = this.entryListed[v]!;
      cols = this.entryCols[v]!;
    } else {
      const e = v === DATED ? this.planIndex.lookup(number, 0) : undefined;
      if (e) {
        const ev = this.entryVersion.get(e)!;
        entry = e;
        listed = this.entryListed[ev]!;
        cols = this.entryCols[ev]!;
      } else {
        entry = this.fallback;
        listed = this.fallbackListed;
        cols = this.fallbackCols;
      }
    }
    if (!entry) return DECISION_DEFAULT;
    if (entry.mode === 'block') return DECISION_BLOCKED;

    // Each carrier's buy rate and its cost from the block (a date-dependent one from its own table).
    const skip = opts.skip;
    const lcr = entry.mode === 'lcr';
    pricedReset();
    let anyPriced = false;
    let anyAffordable = false;
    for (let k = 0; k < listed.length; k++) {
      const c = cols[k]!;
      if (c < 0) continue; // disabled, or its table does not exist: no buy rate
      const bv = delCol === c ? delValue : ib >= 0 ? bi[ib + c]! : NONE;
      let buy: RateEntry | undefined;
      let minute: number;
      if (bv >= 0) {
        minute = delCol === c ? this.minutes[c]![bv]! : bf[fb + c]!;
      } else if (bv === DATED) {
        buy = (this.cols[c] as PrefixIndex<RateEntry>).lookup(number, at);
        if (!buy) continue;
        minute = minuteOf(buy);
      } else continue;
      anyPriced = true;
      if (minute > sellMinute) continue;
      anyAffordable = true;
      const ec = listed[k]!;
      if (skip?.(ec.carrier.id)) continue;
      pricedPush(ec.carrier, buy, lcr ? minute : ec.position, ec.weight, this.cols[c] as PrefixIndex<RateEntry>, bv);
    }
    return finishRoute(number, anyPriced, anyAffordable, this.plan.lossPrompt, opts.random ?? Math.random);
  }
}

/** Merged nodes down to this depth are laid out breadth-first (compact, so they stay in cache); deeper, depth-first. */
const TOP_DEPTH = 5;

/**
 * Builds one joined index in slices: step(ms) works for about `ms` and returns true when done. Everything it needs
 * is read from the sources (immutable tries); the caller decides when to run the next slice (setImmediate), so a
 * build never holds the event loop for more than a slice.
 */
export class JoinBuilder {
  private readonly columns: PrefixIndex<RateEntry | IndexedEntry>[];
  private readonly colNodes: Int32Array[];
  private readonly buyCol = new Map<PrefixIndex<RateEntry>, number>();
  private readonly minutes: (Float64Array | undefined)[];
  private readonly k: number;
  private readonly layout: BlockLayout;
  /** Minute arrays still to fill: [column, next version]. */
  private minuteCol = 0;
  private minuteNext = 0;
  private nodes: Int32Array;
  private count = 1;
  private blockBuf: ArrayBuffer;
  private bi: Int32Array;
  private bf: Float64Array;
  private blockCount = 0;
  /** Frames [merged node, depth, source node per column, inherited value per column]: a FIFO for the top levels... */
  private queue: Int32Array;
  private qHead = 0;
  private qTail = 0;
  /** ...and a stack below them. */
  private readonly stack: Int32Array;
  private sp = 0;
  private readonly frame: number;
  private readonly src: Int32Array;
  private readonly inh: Int32Array;
  private started = 0;
  private cpu = 0;
  private slices = 0;
  private maxSlice = 0;
  private result: JoinedIndex | undefined;
  /** Bytes the build may use; past it the build stops (tooBig). */
  tooBig = false;

  constructor(
    readonly sources: JoinSources,
    private readonly maxBytes = Infinity,
  ) {
    const cols: PrefixIndex<RateEntry | IndexedEntry>[] = [sources.sell, sources.routing.planParts(sources.planId)!.index];
    for (const t of sources.buy) {
      if (!t || this.buyCol.has(t)) continue;
      this.buyCol.set(t, cols.length);
      cols.push(t);
    }
    this.columns = cols;
    this.colNodes = cols.map((c) => c.packedNodes);
    this.k = cols.length;
    this.layout = blockLayout(this.k);
    this.minutes = cols.map((c, i) => (i !== 1 ? minutesOf.get(c as PrefixIndex<RateEntry>) : undefined));
    this.frame = 2 + 2 * this.k;
    this.stack = new Int32Array(MAX_FRAMES * this.frame);
    this.queue = new Int32Array(1024 * this.frame);
    this.src = new Int32Array(this.k);
    this.inh = new Int32Array(this.k);
    let estimate = 1024;
    for (const n of this.colNodes) estimate = Math.max(estimate, n.length / 3);
    this.nodes = new Int32Array(2 * Math.min(estimate, 1 << 22));
    this.blockBuf = new ArrayBuffer(4096 * this.layout.stride * 8);
    this.bi = new Int32Array(this.blockBuf);
    this.bf = new Float64Array(this.blockBuf);
    // The root frame: every source at its root, nothing inherited.
    this.queue[0] = 0;
    this.queue[1] = 0;
    for (let c = 0; c < this.k; c++) {
      this.queue[2 + c] = 0;
      this.queue[2 + this.k + c] = NONE;
    }
    this.qTail = 1;
  }

  get done(): JoinedIndex | undefined {
    return this.result;
  }

  private bytesNow(): number {
    let b = this.nodes.byteLength + this.blockBuf.byteLength + this.queue.byteLength;
    for (let c = 0; c < this.k; c++) if (c !== 1) b += this.columns[c]!.size * 8;
    return b;
  }

  /**
   * Copies still to do before the build goes on: growing the node or block array, and the final trims. Done a
   * megabyte at a time between deadline checks, so that no copy of a large array holds a slice.
   */
  private copies: Array<{ src: Uint8Array; dst: Uint8Array; at: number; done: () => void }> = [];
  private trimmed = false;

  private copy(src: ArrayBuffer, bytes: number, dst: ArrayBuffer, done: () => void): void {
    this.copies.push({ src: new Uint8Array(src, 0, bytes), dst: new Uint8Array(dst), at: 0, done });
  }

  private copyStep(deadline: number): boolean {
    while (this.copies.length > 0) {
      const c = this.copies[0]!;
      while (c.at < c.src.length) {
        const end = Math.min(c.src.length, c.at + (1 << 20));
        c.dst.set(c.src.subarray(c.at, end), c.at);
        c.at = end;
        if (performance.now() > deadline) return false;
      }
      this.copies.shift();
      c.done();
    }
    return true;
  }

  /** Works for about `ms`; true when the index is built (or the build gave up: tooBig). */
  step(ms: number): boolean {
    if (this.result || this.tooBig) return true;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    if (this.started === 0) this.started = t0;
    const deadline = t0 + ms;
    let finished = false;
    for (;;) {
      if (!this.copyStep(deadline) || !this.minutesStep(deadline)) break;
      if (this.trimmed) {
        // The trims are copied: built.
        finished = true;
        break;
      }
      const r = this.mergeStep(deadline);
      if (r === 'deadline') break;
      if (r === 'grow') continue;
      if (this.tooBig) {
        finished = true;
        break;
      }
      {
        // Exact-size arrays, copied in pieces like the growths.
        this.trimmed = true;
        const nodes = new ArrayBuffer(this.count * 8);
        const blocks = new ArrayBuffer(this.blockCount * this.layout.stride * 8);
        this.copy(this.nodes.buffer as ArrayBuffer, nodes.byteLength, nodes, () => (this.nodes = new Int32Array(nodes)));
        this.copy(this.blockBuf, blocks.byteLength, blocks, () => (this.blockBuf = blocks));
        this.queue = new Int32Array(0);
        continue;
      }
    }
    const t1 = performance.now();
    const c1 = process.cpuUsage(c0);
    this.cpu += (c1.user + c1.system) / 1000;
    this.slices++;
    this.maxSlice = Math.max(this.maxSlice, t1 - t0);
    if (!finished || this.tooBig) return finished;
    let bytes = this.nodes.byteLength + this.blockBuf.byteLength;
    for (let c = 0; c < this.k; c++) if (c !== 1) bytes += this.minutes[c]!.byteLength;
    this.result = new JoinedIndex(this.sources, this.nodes, this.blockBuf, this.columns, this.buyCol, this.minutes, {
      nodes: this.count,
      blocks: this.blockCount,
      bytes,
      buildMs: performance.now() - this.started,
      buildCpuMs: this.cpu,
      slices: this.slices,
      maxSliceMs: this.maxSlice,
    });
    return true;
  }

  /** Runs every slice now (tests; a caller that does not mind blocking). */
  buildNow(): JoinedIndex | undefined {
    while (!this.step(1e9));
    return this.result;
  }

  private minutesStep(deadline: number): boolean {
    while (this.minuteCol < this.k) {
      const c = this.minuteCol;
      let m = this.minutes[c];
      if (c === 1 || (m && this.minuteNext === 0)) {
        this.minuteCol++;
        continue;
      }
      const table = this.columns[c] as PrefixIndex<RateEntry>;
      if (!m) m = this.minutes[c] = new Float64Array(table.size);
      const n = table.size;
      let v = this.minuteNext;
      while (v < n) {
        const end = Math.min(n, v + 8192);
        for (; v < end; v++) m[v] = minuteOf(table.version(v));
        if (performance.now() > deadline) break;
      }
      this.minuteNext = v;
      if (v < n) return false;
      minutesOf.set(table, m);
      this.minuteNext = 0;
      this.minuteCol++;
    }
    return true;
  }

  /** 'done', 'deadline' (out of time), or 'grow' (a copy to a larger array was queued: run it first). */
  private mergeStep(deadline: number): 'done' | 'deadline' | 'grow' {
    const k = this.k;
    const F = this.frame;
    const colNodes = this.colNodes;
    const minutes = this.minutes;
    const src = this.src;
    const inh = this.inh;
    const { stride, half } = this.layout;
    let work = 0;
    for (;;) {
      if (++work === 2048) {
        work = 0;
        if (performance.now() > deadline) return 'deadline';
        if (this.bytesNow() > this.maxBytes) {
          this.tooBig = true;
          return 'done';
        }
      }
      // Room for this frame's node, spare slot and 10 children, and its block; else grow first (copied in pieces).
      if (2 * (this.count + 12) > this.nodes.length) {
        const grown = new ArrayBuffer(this.nodes.byteLength * 2);
        this.copy(this.nodes.buffer as ArrayBuffer, this.count * 8, grown, () => (this.nodes = new Int32Array(grown)));
        return 'grow';
      }
      if ((this.blockCount + 1) * stride * 8 > this.blockBuf.byteLength) {
        const grown = new ArrayBuffer(this.blockBuf.byteLength * 2);
        this.copy(this.blockBuf, this.blockCount * stride * 8, grown, () => {
          this.blockBuf = grown;
          this.bi = new Int32Array(grown);
          this.bf = new Float64Array(grown);
        });
        return 'grow';
      }
      // The next frame: the stack first (a subtree under way), else the queue (the top levels, in order).
      let frames: Int32Array;
      let base: number;
      if (this.sp > 0) {
        frames = this.stack;
        base = --this.sp * F;
      } else if (this.qHead < this.qTail) {
        frames = this.queue;
        base = this.qHead++ * F;
        if (frames[base + 1]! >= TOP_DEPTH) {
          // Below the top: this subtree depth-first, from the stack.
          this.stack.set(frames.subarray(base, base + F), 0);
          this.sp = 1;
          continue;
        }
      } else return 'done';
      const m = frames[base]!;
      const depth = frames[base + 1]!;
      let active = 0;
      let lastC = -1;
      let mask = 0;
      let hasValue = false;
      for (let c = 0; c < k; c++) {
        const s = frames[base + 2 + c]!;
        src[c] = s;
        inh[c] = frames[base + 2 + k + c]!;
        if (s < 0) continue;
        active++;
        lastC = c;
        const sm = colNodes[c]![3 * s]!;
        mask |= sm & CHILD_MASK;
        if (sm >>> COUNT_SHIFT !== 0) hasValue = true;
      }
      if (m !== 0 && active === 1) {
        this.nodes[2 * m] = DELEGATE | (lastC << COL_SHIFT);
        this.nodes[2 * m + 1] = src[lastC]!;
        continue;
      }
      let b = -1;
      if (hasValue) {
        for (let c = 0; c < k; c++) {
          const s = src[c]!;
          if (s < 0) continue;
          const sn = colNodes[c]!;
          const sm = sn[3 * s]!;
          if (sm >>> COUNT_SHIFT !== 0) inh[c] = (sm & ALWAYS) !== 0 ? sn[3 * s + 2]! : DATED;
        }
        b = this.blockCount++;
        const ib = b * 2 * stride;
        const fb = b * stride + half;
        for (let c = 0; c < k; c++) {
          const v = inh[c]!;
          this.bi[ib + c] = v;
          this.bf[fb + c] = v >= 0 && c !== 1 ? minutes[c]![v]! : 0;
        }
      }
      let link = hasValue ? b : 0;
      if (mask !== 0) {
        if (hasValue) {
          const spare = this.count++;
          this.nodes[2 * spare] = b;
          this.nodes[2 * spare + 1] = 0;
        }
        const first = this.count;
        this.count += POPCOUNT[mask]!;
        link = first;
        const toQueue = frames === this.queue;
        if (toQueue && (this.qTail + 10) * F > this.queue.length) {
          // Consumed frames are dropped while growing.
          const live = this.queue.subarray(this.qHead * F, this.qTail * F);
          const grown = new Int32Array(Math.max(this.queue.length, live.length * 2 + 10 * F));
          grown.set(live);
          this.qTail -= this.qHead;
          base -= this.qHead * F; // (not read again)
          this.qHead = 0;
          this.queue = grown;
        }
        // Top levels: children queued in digit order. Below: pushed last digit first, so expanded in digit order.
        for (let i = 0; i < 10; i++) {
          const d = toQueue ? i : 9 - i;
          if (((mask >> d) & 1) === 0) continue;
          const below = (1 << d) - 1;
          const out = toQueue ? this.queue : this.stack;
          const cb = toQueue ? this.qTail++ * F : this.sp++ * F;
          out[cb] = first + POPCOUNT[mask & below]!;
          out[cb + 1] = depth + 1;
          for (let c = 0; c < k; c++) {
            const s = src[c]!;
            let child = -1;
            if (s >= 0) {
              const sn = colNodes[c]!;
              const sm = sn[3 * s]!;
              if (((sm >> d) & 1) !== 0) child = sn[3 * s + 1]! + POPCOUNT[sm & below]!;
            }
            out[cb + 2 + c] = child;
            out[cb + 2 + k + c] = inh[c]!;
          }
        }
      }
      this.nodes[2 * m] = mask | (hasValue ? HAS_BLOCK : 0);
      this.nodes[2 * m + 1] = link;
    }
  }
}

export interface JoinedIndexesOptions {
  /** Bytes all joined indexes together may hold (0: none is built, every decision walks one trie per table). */
  budgetBytes: number;
  /** Longest a build slice may hold the event loop. Default 4 ms. */
  sliceMs?: number;
  /** Runs the next slice (default setImmediate: I/O and timers run between two slices). */
  schedule?: (run: () => void) => void;
  /** Told when a pair is built (its size and how the build went) or given up (too big for the budget). */
  onBuilt?: (pair: { tableId: string; planId: string }, stats: JoinStats | 'too_big') => void;
}

interface Slot {
  joined?: JoinedIndex;
  /** The snapshot `joined` was last checked against (checked again only when the snapshot changes). */
  validFor?: JoinSnapshot;
  building?: JoinBuilder;
  /** Too big for the budget when built from these sources: not tried again until they change. */
  tooBig?: JoinSources;
  used: number;
}

/** Default budget: CCARD_ROUTE_INDEX_MB (src/config/env.ts). */
export const DEFAULT_JOIN_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * The joined indexes of the pairs in use, built lazily: the first decision for a pair asks for its build and gets
 * undefined (the caller walks one trie per table, as always); the build runs in slices of `sliceMs` between other
 * work; later decisions use it. One build at a time. Each is tied to the exact tries it was made from: a snapshot
 * whose tables or routing differ gets undefined (and a new build starts) - a stale index is never served. The
 * least recently used pairs are dropped to stay under the byte budget.
 */
export class JoinedIndexes {
  private readonly pairs = new Map<string, Map<string, Slot>>();
  private readonly queue: Array<{ slot: Slot; builder: JoinBuilder }> = [];
  private running = false;
  private tick = 0;
  private readonly budget: number;
  private readonly sliceMs: number;
  private readonly schedule: (run: () => void) => void;
  private waiters: Array<() => void> = [];

  constructor(private readonly opts: JoinedIndexesOptions = { budgetBytes: DEFAULT_JOIN_BUDGET_BYTES }) {
    this.budget = opts.budgetBytes;
    this.sliceMs = opts.sliceMs ?? 4;
    this.schedule = opts.schedule ?? ((run) => setImmediate(run));
  }

  /** Bytes held by the built joined indexes. */
  get bytes(): number {
    let b = 0;
    for (const byPlan of this.pairs.values()) for (const s of byPlan.values()) b += s.joined?.bytes ?? 0;
    return b;
  }

  /** The joined index of (tableId, planId) valid for `snap`, or undefined (then a build is requested). */
  get(snap: JoinSnapshot, tableId: string, planId: string): JoinedIndex | undefined {
    const slot = this.pairs.get(tableId)?.get(planId);
    if (slot) {
      const j = slot.joined;
      if (j) {
        if (slot.validFor === snap || j.matches(snap)) {
          slot.validFor = snap;
          slot.used = ++this.tick;
          return j;
        }
        slot.joined = slot.validFor = undefined; // stale: dropped
      }
      if (slot.building) {
        if (sameSources(slot.building.sources, snap)) return undefined;
        this.abort(slot);
      }
      if (slot.tooBig) {
        if (sameSources(slot.tooBig, snap)) return undefined;
        slot.tooBig = undefined;
      }
    }
    this.request(snap, tableId, planId, slot);
    return undefined;
  }

  /** Drops what `snap` (the new current snapshot) no longer matches: stale indexes, and builds from stale tries. */
  prune(snap: JoinSnapshot): void {
    for (const [tableId, byPlan] of this.pairs) {
      for (const [planId, slot] of byPlan) {
        if (slot.joined && !slot.joined.matches(snap)) slot.joined = slot.validFor = undefined;
        else if (slot.joined) slot.validFor = snap;
        if (slot.building && !sameSources(slot.building.sources, snap)) this.abort(slot);
        if (slot.tooBig && !sameSources(slot.tooBig, snap)) slot.tooBig = undefined;
        if (!slot.joined && !slot.building && !slot.tooBig) byPlan.delete(planId);
      }
      if (byPlan.size === 0) this.pairs.delete(tableId);
    }
  }

  /** Resolves when no build is queued or running (tests, the bench). */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Builds the pair now, blocking (tests, the bench's comparison); undefined when too big or no such pair. */
  buildNow(snap: JoinSnapshot, tableId: string, planId: string): JoinedIndex | undefined {
    const sources = sourcesOf(snap, tableId, planId);
    if (!sources) return undefined;
    const slot = this.slotFor(tableId, planId);
    if (slot.building) this.abort(slot);
    const j = new JoinBuilder(sources, this.budget).buildNow();
    if (j) this.install(slot, j);
    else slot.tooBig = sources;
    if (slot.joined) slot.validFor = snap;
    return slot.joined;
  }

  private slotFor(tableId: string, planId: string): Slot {
    let byPlan = this.pairs.get(tableId);
    if (!byPlan) this.pairs.set(tableId, (byPlan = new Map()));
    let slot = byPlan.get(planId);
    if (!slot) byPlan.set(planId, (slot = { used: 0 }));
    return slot;
  }

  private request(snap: JoinSnapshot, tableId: string, planId: string, existing: Slot | undefined): void {
    if (this.budget <= 0) return;
    const sources = sourcesOf(snap, tableId, planId);
    if (!sources) return;
    const slot = existing ?? this.slotFor(tableId, planId);
    const builder = new JoinBuilder(sources, this.budget);
    slot.building = builder;
    slot.used = ++this.tick;
    this.queue.push({ slot, builder });
    if (!this.running) {
      this.running = true;
      this.schedule(() => this.run());
    }
  }

  private abort(slot: Slot): void {
    const b = slot.building;
    slot.building = undefined;
    const i = this.queue.findIndex((q) => q.builder === b);
    if (i >= 0) this.queue.splice(i, 1);
  }

  private run(): void {
    const head = this.queue[0];
    if (!head) {
      this.running = false;
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
      return;
    }
    if (head.builder.step(this.sliceMs)) {
      this.queue.shift();
      const { slot, builder } = head;
      if (slot.building === builder) {
        slot.building = undefined;
        const j = builder.done;
        const pair = { tableId: builder.sources.tableId, planId: builder.sources.planId };
        if (j) {
          this.install(slot, j);
          this.opts.onBuilt?.(pair, j.stats);
        } else {
          slot.tooBig = builder.sources;
          this.opts.onBuilt?.(pair, 'too_big');
        }
      }
    }
    this.schedule(() => this.run());
  }

  /** Keeps `j` in `slot`, dropping the least recently used other indexes while over the budget. */
  private install(slot: Slot, j: JoinedIndex): void {
    slot.joined = j;
    slot.validFor = undefined;
    slot.used = ++this.tick;
    for (;;) {
      if (this.bytes <= this.budget) return;
      let victim: Slot | undefined;
      for (const byPlan of this.pairs.values()) {
        for (const s of byPlan.values()) if (s !== slot && s.joined && (!victim || s.used < victim.used)) victim = s;
      }
      if (!victim) break;
      victim.joined = victim.validFor = undefined;
    }
    if (this.bytes > this.budget) {
      slot.joined = undefined;
      slot.tooBig = j.sources;
    }
  }
}
