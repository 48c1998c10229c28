/**
 * Where the time goes: a V8 CPU profile (.cpuprofile, as the inspector's Profiler.stop or `node --cpu-prof` writes it)
 * summed by layer. Each sample is given to one layer: the garbage collector, a native socket write (the leaf is one of
 * the stream handle's write functions, whoever called it: on loopback the write runs the receiver's side of TCP in
 * the sender's system call), or else the first layer met walking its stack from the leaf towards the root, i.e. the
 * innermost library or part of ccard doing the work (a JSON.parse called by the CDR ingest is the ingest's; XState
 * running a flow action that sends a query is the PostgreSQL client's while the query is written). Idle samples are
 * left out, and so is the profiler's own work (stacks through node:inspector: stopping it serialises the profile);
 * "(program)" is V8/libuv work with no JavaScript stack.
 *   node --import tsx bench/profile-layers.ts <file.cpuprofile> [calls]
 */
import { readFileSync } from 'node:fs';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; scriptId?: string | number; lineNumber?: number; columnNumber?: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  /** µs since the previous sample (the first since startTime). */
  timeDeltas: number[];
  startTime?: number;
  endTime?: number;
}

export interface Layer {
  name: string;
  /** Does this frame belong to the layer? (url '' for native functions and V8's pseudo-frames.) */
  frame: (fn: string, url: string) => boolean;
}

const pkg = (...names: string[]) => {
  const re = new RegExp(`/node_modules/(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})/`);
  return (_fn: string, url: string) => re.test(url);
};
const ccard = (dir: string) => {
  const re = new RegExp(`/(src|dist)/${dir}/`);
  return (_fn: string, url: string) => !url.includes('/node_modules/') && re.test(url);
};

/** The layers, in the order the table prints them; a frame belongs to the first whose test it passes. */
export const LAYERS: Layer[] = [
  { name: 'XState', frame: pkg('xstate') },
  { name: 'ESL (src/esl)', frame: ccard('esl') },
  { name: 'call flow (src/flow)', frame: ccard('flow') },
  { name: 'PostgreSQL client (pg)', frame: pkg('pg', 'pg-pool', 'pg-protocol', 'pg-types', 'pg-connection-string', 'postgres-array', 'postgres-bytea', 'postgres-date', 'postgres-interval', 'pgpass') },
  { name: 'Redis client (ioredis)', frame: pkg('ioredis', '@ioredis', 'redis-parser', 'redis-errors', 'denque', 'cluster-key-slot', 'standard-as-callback') },
  {
    name: 'HTTP (node http, fastify)',
    frame: (fn, url) =>
      pkg('fastify', '@fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'secure-json-parse', 'fast-querystring', 'toad-cache', 'abstract-logging')(fn, url) ||
      /^node:_http_|^node:http$/.test(url),
  },
  { name: 'logging (pino)', frame: pkg('pino', 'pino-std-serializers', 'sonic-boom', 'thread-stream', 'fast-redact', '@pinojs', 'quick-format-unescaped', 'atomic-sleep', 'on-exit-leak-free', 'safe-stable-stringify', 'fast-safe-stringify') },
  { name: 'ccard, the rest (billing, store, cdr, app, ...)', frame: (_fn, url) => !url.includes('/node_modules/') && /\/(src|dist)\//.test(url) },
  { name: 'other packages', frame: (_fn, url) => url.includes('/node_modules/') },
];

export const GC = 'GC';
export const SOCKET_WRITES = 'socket writes (native)';
export const STREAMS = 'node streams, sockets and timers (no layer above)';
export const PROGRAM = '(program): V8 and libuv, no JS stack';
export const UNKNOWN = 'other (native or node internals, no layer above)';

/** The stream handle's native write functions (node's stream_wrap / tcp_wrap). */
const NATIVE_WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String']);
const NODE_IO = /^node:(net|internal\/(stream_base_commons|streams\/|timers|net|process\/task_queues))/;

/** µs per layer (idle samples left out) and the idle µs. */
export function layerTimes(
  profile: CpuProfile,
  layers: Layer[] = LAYERS,
): { byLayer: Map<string, number>; idleUs: number; busyUs: number; profilerUs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const perNode = new Map<number, number>();
  profile.samples.forEach((id, i) => perNode.set(id, (perNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const byLayer = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  let profilerUs = 0;
  for (const [id, us] of perNode) {
    const leaf = byId.get(id)!;
    const fn = leaf.callFrame.functionName;
    if (fn === '(idle)') {
      idleUs += us;
      continue;
    }
    let profiler = false;
    for (let n: CpuProfileNode | undefined = leaf; n && !profiler; n = byId.get(parent.get(n.id) ?? -1)) profiler = n.callFrame.url === 'node:inspector';
    if (profiler) {
      profilerUs += us;
      continue;
    }
    busyUs += us;
    let layer: string | undefined;
    if (fn === '(garbage collector)') layer = GC;
    else if (fn === '(program)' || fn === '(root)') layer = PROGRAM;
    else if (!leaf.callFrame.url && NATIVE_WRITES.has(fn)) layer = SOCKET_WRITES;
    let io = false;
    for (let n: CpuProfileNode | undefined = leaf; !layer && n; n = byId.get(parent.get(n.id) ?? -1)) {
      const { functionName, url } = n.callFrame;
      layer = layers.find((l) => l.frame(functionName, url))?.name;
      io ||= NODE_IO.test(url);
    }
    layer ??= io ? STREAMS : UNKNOWN;
    byLayer.set(layer, (byLayer.get(layer) ?? 0) + us);
  }
  return { byLayer, idleUs, busyUs, profilerUs };
}

/** The table: ms per call (per unit of `calls`) and share of the busy time, largest first; a line per layer. */
export function layerTable(profile: CpuProfile, calls: number, layers: Layer[] = LAYERS): string[] {
  const { byLayer, busyUs, idleUs, profilerUs } = layerTimes(profile, layers);
  const rows = [...byLayer].sort((a, b) => b[1] - a[1]);
  const width = Math.max(...rows.map(([k]) => k.length), 10);
  const ms = (us: number) => (us / 1000 / calls).toFixed(2).padStart(7);
  return [
    `${'layer'.padEnd(width)}  ms/call   share`,
    ...rows.map(([k, us]) => `${k.padEnd(width)} ${ms(us)}  ${((100 * us) / Math.max(1, busyUs)).toFixed(1).padStart(5)} %`),
    `${'busy (main thread, sampled)'.padEnd(width)} ${ms(busyUs)}`,
    `${'idle (left out)'.padEnd(width)} ${ms(idleUs)}`,
    `${'the profiler itself (left out)'.padEnd(width)} ${ms(profilerUs)}`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as CpuProfile;
  for (const line of layerTable(profile, Number(process.argv[3] ?? 1))) console.log(line);
}
