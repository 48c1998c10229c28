import type { Micros } from '../money/money.ts';

/** The billing fields of one rate, wherever it comes from (the database, a CSV file). */
export interface RateFields {
  /** Digits only, 1..20. */
  prefix: string;
  destination: string;
  ratePerMin: Micros;
  connectFee: Micros;
  initialIncrement: number;
  subsequentIncrement: number;
  /** Half-open window [effectiveFrom, effectiveTo); null is unbounded on that side. */
  effectiveFrom: Date | null;
  effectiveTo: Date | null;
}

/** One row of a rate table, as the index and the billing code see it. Ids are strings (BIGINT in PostgreSQL). */
export interface RateEntry extends RateFields {
  id: string;
  rateTableId: string;
}

/** What the index needs of an entry: rates, and the routing plans' entries (src/billing/routing.ts). */
export interface PrefixKeyed {
  id: string;
  prefix: string;
  effectiveFrom: Date | null;
  effectiveTo: Date | null;
}

export const MAX_PREFIX_LENGTH = 20;

/** popcount of a 10-bit child mask: the rank of a digit among its present siblings. */
export const POPCOUNT = new Uint8Array(1024);
for (let i = 1; i < 1024; i++) POPCOUNT[i] = POPCOUNT[i >> 1]! + (i & 1);

export const CHILD_MASK = 0x3ff;
/** meta flag: the node's prefix has one version, open on both sides (its rate never depends on the date). */
export const ALWAYS = 1 << 10;
export const COUNT_SHIFT = 11;

function isPrefix(p: string): boolean {
  const n = p.length;
  if (n < 1 || n > MAX_PREFIX_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Same start: the later row (higher numeric id) wins, so the choice is deterministic. */
function compareIdsDesc(a: string, b: string): number {
  if (a.length !== b.length) return b.length - a.length;
  return a < b ? 1 : a > b ? -1 : 0;
}

/**
 * Longest-prefix-match over one rate table, honouring each rate's effective window.
 *
 * Layout: a digit trie packed into one Int32Array, 3 ints per node [meta, firstChild, firstVersion], nodes in
 * breadth-first order so that a node's children are contiguous and the child for digit d is
 * firstChild + popcount(childMask below d). meta = 10-bit child mask | ALWAYS flag | version count << 11.
 * 1,000,000 prefixes take ~2.5M nodes = ~30 MB, and a lookup is one node read per digit, pointer-free. (A Map per
 * prefix length - one string slice and hash probe per length - managed ~0.2M lookups/s on the same data.)
 *
 * A prefix may carry several rates with different date windows (its versions, kept in flat arrays sorted by
 * effectiveFrom, latest first). At an instant, the prefix's rate is the one whose window contains it; if windows
 * overlap, the one with the latest effectiveFrom wins (a new rate supersedes the old one without having to close
 * it). If the longest matching prefix has no rate in effect, shorter prefixes are tried. No match returns
 * undefined: callers refuse the call (never free).
 */
export class PrefixIndex<T extends PrefixKeyed = RateEntry> {
  private readonly nodes: Int32Array;
  /** [from, to) in epoch ms per version, interleaved; -Infinity/Infinity when open. */
  private readonly windows: Float64Array;
  private readonly versions: T[];
  private readonly stack: Int32Array;
  /** Number of rates (versions). */
  readonly size: number;
  /** Number of distinct prefixes. */
  readonly prefixCount: number;

  private constructor(nodes: Int32Array, windows: Float64Array, versions: T[], maxDepth: number, prefixCount: number) {
    this.nodes = nodes;
    this.windows = windows;
    this.versions = versions;
    this.stack = new Int32Array(maxDepth + 1);
    this.size = versions.length;
    this.prefixCount = prefixCount;
  }

  static build<E extends PrefixKeyed = RateEntry>(rates: Iterable<E>): PrefixIndex<E> {
    const list = Array.isArray(rates) ? (rates as E[]) : [...rates];
    const total = list.length;
    // Group versions by prefix: first version of each prefix in `head`, the others chained through `next`.
    const groupOf = new Map<string, number>();
    const keys: string[] = [];
    const head: number[] = [];
    const next = new Int32Array(total).fill(-1);
    const from = new Float64Array(total);
    const to = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      const rate = list[i]!;
      const prefix = rate.prefix;
      if (!isPrefix(prefix)) throw new RangeError(`prefix must be 1..20 digits: "${prefix}"`);
      from[i] = rate.effectiveFrom ? rate.effectiveFrom.getTime() : -Infinity;
      to[i] = rate.effectiveTo ? rate.effectiveTo.getTime() : Infinity;
      if (Number.isNaN(from[i]) || Number.isNaN(to[i])) throw new RangeError(`invalid effective date on prefix ${prefix}`);
      const g = groupOf.get(prefix);
      if (g === undefined) {
        groupOf.set(prefix, keys.length);
        keys.push(prefix);
        head.push(i);
      } else {
        next[i] = head[g]!;
        head[g] = i;
      }
    }
    const groupCount = keys.length;
    const sortedGroups = new Int32Array(groupCount);
    {
      const sorted = keys.slice().sort();
      for (let k = 0; k < groupCount; k++) sortedGroups[k] = groupOf.get(sorted[k]!)!;
    }

    // Versions in prefix order, each prefix's versions latest effectiveFrom first (then highest id).
    const versions: E[] = new Array(total);
    const windows = new Float64Array(total * 2);
    const firstVersion = new Int32Array(groupCount);
    const versionCount = new Int32Array(groupCount);
    let v = 0;
    const scratch: number[] = [];
    for (let k = 0; k < groupCount; k++) {
      scratch.length = 0;
      for (let i = head[sortedGroups[k]!]!; i >= 0; i = next[i]!) scratch.push(i);
      if (scratch.length > 1) {
        scratch.sort((a, b) => from[b]! - from[a]! || compareIdsDesc(list[a]!.id, list[b]!.id));
      }
      firstVersion[k] = v;
      versionCount[k] = scratch.length;
      for (const i of scratch) {
        versions[v] = list[i]!;
        windows[2 * v] = from[i]!;
        windows[2 * v + 1] = to[i]!;
        v++;
      }
    }

    // Breadth-first construction, one depth at a time over the sorted prefixes: at depth d a prefix needs a new
    // node when its parent (its node at depth d-1) or its d-th digit differs from the previous prefix that long.
    let capacity = 1024;
    let nodes = new Int32Array(capacity * 3);
    nodes[2] = -1;
    let count = 1;
    const live = new Int32Array(groupCount);
    for (let k = 0; k < groupCount; k++) live[k] = k;
    let liveCount = groupCount;
    const nodeOf = new Int32Array(groupCount);
    let maxDepth = 0;
    for (let depth = 1; liveCount > 0; depth++) {
      maxDepth = depth;
      let lastParent = -1;
      let lastDigit = -1;
      let current = -1;
      let kept = 0;
      for (let j = 0; j < liveCount; j++) {
        const k = live[j]!;
        const key = keys[sortedGroups[k]!]!;
        const parent = nodeOf[k]!;
        const digit = key.charCodeAt(depth - 1) - 48;
        if (parent !== lastParent || digit !== lastDigit) {
          if (count === capacity) {
            capacity *= 2;
            const grown = new Int32Array(capacity * 3);
            grown.set(nodes);
            nodes = grown;
          }
          current = count++;
          nodes[current * 3] = 0;
          nodes[current * 3 + 1] = 0;
          nodes[current * 3 + 2] = -1;
          if ((nodes[parent * 3]! & CHILD_MASK) === 0) nodes[parent * 3 + 1] = current;
          nodes[parent * 3] = nodes[parent * 3]! | (1 << digit);
          lastParent = parent;
          lastDigit = digit;
        }
        nodeOf[k] = current;
        if (key.length === depth) {
          const first = firstVersion[k]!;
          const n = versionCount[k]!;
          const always = n === 1 && windows[2 * first] === -Infinity && windows[2 * first + 1] === Infinity;
          nodes[current * 3] = nodes[current * 3]! | (n << COUNT_SHIFT) | (always ? ALWAYS : 0);
          nodes[current * 3 + 2] = first;
        } else {
          live[kept++] = k;
        }
      }
      liveCount = kept;
    }
    return new PrefixIndex<E>(nodes.slice(0, count * 3), windows, versions, maxDepth, groupCount);
  }

  /** Bytes held by the packed trie and the version windows (not counting the rate objects). */
  get trieBytes(): number {
    return this.nodes.byteLength + this.windows.byteLength;
  }

  /**
   * The rate for `number` (digits only) in effect at `at` (default now), by longest matching prefix.
   * Anything but 1..32 digits returns undefined.
   */
  lookup(number: string, at: Date | number = Date.now()): T | undefined {
    const len = number.length;
    if (len === 0 || len > 32) return undefined;
    const nodes = this.nodes;
    const stack = this.stack;
    let depth = 0;
    let node = 0;
    let meta = nodes[0]!;
    let i = 0;
    for (; i < len; i++) {
      const d = number.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
      if (((meta >> d) & 1) === 0) break;
      node = nodes[node * 3 + 1]! + POPCOUNT[meta & ((1 << d) - 1)]!;
      meta = nodes[node * 3]!;
      if (meta >>> COUNT_SHIFT !== 0) stack[depth++] = node;
    }
    for (i++; i < len; i++) {
      const d = number.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
    }
    if (depth === 0) return undefined;
    const top = stack[depth - 1]!;
    if ((nodes[top * 3]! & ALWAYS) !== 0) return this.versions[nodes[top * 3 + 2]!];
    const t = typeof at === 'number' ? at : at.getTime();
    const windows = this.windows;
    while (depth > 0) {
      const n = stack[--depth]!;
      const first = nodes[n * 3 + 2]!;
      const end = first + (nodes[n * 3]! >>> COUNT_SHIFT);
      for (let v = first; v < end; v++) {
        if (windows[2 * v]! <= t && t < windows[2 * v + 1]!) return this.versions[v];
      }
    }
    return undefined;
  }

  /**
   * The packed trie itself, read-only, for the joined index (src/billing/joined-index.ts), which merges several of
   * these tries and walks them: 3 ints per node [meta, firstChild, firstVersion], as described above.
   */
  get packedNodes(): Int32Array {
    return this.nodes;
  }

  /** Version `v` (nodes[n * 3 + 2] of a node with a prefix is its first version). */
  version(v: number): T {
    return this.versions[v]!;
  }

  /** Every rate in the index, in prefix order (each prefix's versions latest first). */
  rates(): readonly T[] {
    return this.versions;
  }
}
