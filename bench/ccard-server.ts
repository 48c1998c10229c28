/**
 * Child process of bench/realcall.ts and bench/spine.ts: ccard itself (startService: ESL, flow, POST /cdr,
 * PostgreSQL, Redis), as `ccard serve` runs it, in a process of its own that the benchmark pins to one core. It runs
 * compiled (bench/ccard-child.ts transpiles this file and points its `../src/` imports at dist/). It seeds the cards
 * the simulator dials with, then answers the parent's questions over IPC: what its event loop, heap and collector
 * did between two marks, and (BENCH_TIME_DECISIONS=1) each decision's time as ccard sees it.
 *
 * Environment: BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_REDIS_PREFIX, BENCH_DATA_DIR; BENCH_CARDS (how many cards),
 * BENCH_CARD_MICROS (each one's balance), BENCH_LOG_LEVEL (default info, to stdout), BENCH_CCARD_CPU_PROF,
 * BENCH_CCARD_HEAP_SNAPSHOT.
 */
import { monitorEventLoopDelay, performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { loadConfig } from '../src/config/env.ts';
import type { Call } from '../src/flow/call.ts';
import { applyBalanceChange } from '../src/billing/ledger.ts';
import { seedDemo } from '../src/app/seed.ts';
import { startService } from '../src/app/service.ts';
import { createLogger } from '../src/app/logger.ts';
import { withTransaction } from '../src/store/db.ts';
import { encryptPin, hashPin } from '../src/store/pin.ts';

const env = process.env;
const config = loadConfig({
  DATABASE_URL: env.BENCH_DATABASE_URL!,
  REDIS_URL: env.BENCH_REDIS_URL!,
  CCARD_REDIS_PREFIX: env.BENCH_REDIS_PREFIX!,
  CCARD_SECRET: 'bench-secret-0123456789',
  ...(env.BENCH_DATA_DIR ? { CCARD_DATA_DIR: env.BENCH_DATA_DIR } : {}),
  LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'info',
  ...(env.CCARD_LOG_FLUSH_MS !== undefined && { CCARD_LOG_FLUSH_MS: env.CCARD_LOG_FLUSH_MS }),
});
// Production's logger (src/app/logger.ts) at info to stdout; here stdout is /dev/null (or BENCH_CCARD_LOG), so the
// cost of formatting and writing stays in.
const logger = createLogger({ level: config.LOG_LEVEL, flushMs: config.CCARD_LOG_FLUSH_MS });

// BENCH_TIME_DECISIONS=1: the decision as ccard times it, from the destination digits coming back from FreeSWITCH to
// the bridge command handed to the socket (rating, the Redis reservation, the calls row's durable commit). Two
// methods of the call replaced in place: a Proxy would cost a trap and a bind on every command.
// BENCH_TRACE_DECISIONS=1 also times, for each decision, its calls-row INSERT (pool wait + query + commit) and its
// Redis reservation, and keeps the collector's pauses, to tell what makes the slow ones slow (measureOff's trace).
interface Decision {
  uuid: string;
  a: number;
  b: number;
  /** BENCH_TRACE_DECISIONS: the main thread's time on a CPU and waiting for one (run queue), ms, over the decision. */
  onCpu?: number;
  runQueue?: number;
}
/** The main thread's /proc schedstat: ns on a CPU, ns runnable but waiting for one (Linux). */
const schedstat = (): [number, number] => {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return [Number(run) / 1e6, Number(wait) / 1e6];
  } catch {
    return [NaN, NaN];
  }
};
const decisions: Decision[] = [];
let measuring = false;
const wrapCall = (call: Call): Call => {
  let digitsAt = 0;
  let sched: [number, number] = [0, 0];
  const collect = call.playAndGetDigits.bind(call);
  const bridge = call.bridge.bind(call);
  call.playAndGetDigits = async (req, signal) => {
    const r = await collect(req, signal);
    if (req.variable === 'ivr_destination') {
      if (tracing) sched = schedstat();
      digitsAt = performance.now();
    }
    return r;
  };
  call.bridge = (req, signal) => {
    if (measuring && digitsAt) {
      const d: Decision = { uuid: call.info.uuid, a: digitsAt, b: performance.now() };
      if (tracing) {
        const [run, wait] = schedstat();
        d.onCpu = run - sched[0];
        d.runQueue = wait - sched[1];
      }
      decisions.push(d);
    }
    return bridge(req, signal);
  };
  return call;
};
const tracing = Boolean(env.BENCH_TRACE_DECISIONS);
const ops: Array<{ kind: 'insert' | 'insert-query' | 'redis'; a: number; b: number; uuid?: string; name?: string }> = [];
const gcs: Array<{ a: number; b: number; kind: string }> = [];
if (tracing) {
  const pg = (await import('pg')).default;
  const { Redis } = await import('ioredis');
  // Pool.query: waiting for a free connection + the statement (autocommit: its durable commit included).
  // Client.query under it: the statement alone, on its connection.
  for (const [proto, kind] of [
    [pg.Pool.prototype, 'insert'],
    [pg.Client.prototype, 'insert-query'],
  ] as const) {
    const orig = proto.query as (...args: unknown[]) => unknown;
    (proto as { query: unknown }).query = function (this: unknown, ...args: unknown[]) {
      const q = args[0] as { text?: string; values?: unknown[] } | string;
      const text = typeof q === 'string' ? q : q?.text;
      if (!measuring || !text?.startsWith('INSERT INTO calls')) return orig.apply(this, args);
      const values = (typeof q === 'string' ? args[1] : q.values) as unknown[] | undefined;
      const op = { kind, a: performance.now(), b: NaN, uuid: String(values?.[2]) };
      ops.push(op);
      const last = args.length - 1;
      if (typeof args[last] === 'function') {
        const cb = args[last] as (...r: unknown[]) => void;
        args[last] = (...r: unknown[]) => ((op.b = performance.now()), cb(...r));
        return orig.apply(this, args);
      }
      const r = orig.apply(this, args) as Promise<unknown>;
      r?.then?.(() => (op.b = performance.now()), () => (op.b = performance.now()));
      return r;
    };
  }
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: InstanceType<typeof Redis>, command: Parameters<typeof send>[0], ...rest: unknown[]) {
    const r = (send as (...a: unknown[]) => unknown).call(this, command, ...rest) as ReturnType<typeof send>;
    if (measuring) {
      const op = { kind: 'redis' as const, a: performance.now(), b: NaN, name: command?.name };
      ops.push(op);
      (command as unknown as { promise: Promise<unknown> }).promise?.then(() => (op.b = performance.now()), () => (op.b = performance.now()));
    }
    return r;
  };
}

/** The slowest decisions (p99 and above) and the median ones, each taken apart: see BENCH_TRACE_DECISIONS. */
function traceOf(all: Decision[]) {
  const byUuid = new Map<string, Array<(typeof ops)[number]>>();
  for (const o of ops) if (o.uuid) byUuid.set(o.uuid, [...(byUuid.get(o.uuid) ?? []), o]);
  const redis = ops.filter((o) => o.kind === 'redis');
  const sorted = [...all].sort((x, y) => x.b - x.a - (y.b - y.a));
  const explain = (d: Decision) => {
    const ins = byUuid.get(d.uuid)?.find((o) => o.kind === 'insert');
    const q = byUuid.get(d.uuid)?.find((o) => o.kind === 'insert-query');
    // The reservation: the Redis command issued closest to (just after) the INSERT, as reserveCall sends them together.
    const rd = ins && redis.filter((o) => o.a >= ins.a - 0.05 && o.a <= d.b).sort((x, y) => x.a - y.a)[0];
    const gc = gcs.filter((g) => g.b > d.a && g.a < d.b);
    const inFlight = all.filter((o) => o !== d && o.b > d.a && o.a < d.b).length;
    const r = (x: number) => Number(x.toFixed(2));
    return {
      ms: r(d.b - d.a),
      onCpu: r(d.onCpu ?? NaN),
      runQueue: r(d.runQueue ?? NaN),
      beforeInsert: ins ? r(ins.a - d.a) : null,
      insert: ins ? r(ins.b - ins.a) : null,
      insertPoolWait: ins && q ? r(q.a - ins.a) : null,
      redis: rd ? r(rd.b - rd.a) : null,
      afterIo: ins ? r(d.b - Math.max(ins.b, rd ? rd.b : 0)) : null,
      gcMs: r(gc.reduce((t, g) => t + Math.min(g.b, d.b) - Math.max(g.a, d.a), 0)),
      gcKinds: gc.map((g) => g.kind).join(' '),
      inFlight,
    };
  };
  const n = sorted.length;
  const sum = (xs: Decision[], f: (d: Decision) => number) => Number(xs.reduce((t, d) => t + f(d), 0).toFixed(1));
  return {
    decisions: n,
    totalMs: sum(all, (d) => d.b - d.a),
    onCpuMs: sum(all, (d) => d.onCpu ?? 0),
    runQueueMs: sum(all, (d) => d.runQueue ?? 0),
    slowest: sorted.slice(Math.floor(n * 0.99)).map(explain),
    median: sorted.slice(Math.floor(n * 0.49), Math.floor(n * 0.51) + 1).map(explain),
    gcCount: gcs.length,
    gcMs: gcs.reduce((t, g) => t + g.b - g.a, 0),
  };
}
const service = await startService({
  config,
  logger,
  eslPort: 0,
  httpPort: 0,
  scheduler: false,
  ...(env.BENCH_TIME_DECISIONS ? { wrapCall } : {}),
});

const data = await seedDemo(service.pool, service.pinKeys);
await service.pool.query(`UPDATE series SET max_concurrent_calls = 100`);
const pins: string[] = [];
for (let i = 0; i < Number(env.BENCH_CARDS ?? 100); i++) {
  const pin = String(5_000_000_000 + i);
  pins.push(pin);
  await withTransaction(service.pool, async (c) => {
    const r = await c.query<{ id: bigint }>(
      `INSERT INTO cards (series_id, serial, pin_hash, pin_cipher, status) SELECT id, $1, $2, $3, 'active' FROM series LIMIT 1 RETURNING id`,
      [`100-${String(100 + i).padStart(9, '0')}`, hashPin(service.pinKeys, pin), encryptPin(service.pinKeys, pin)],
    );
    await applyBalanceChange(c, { cardId: String(r.rows[0]!.id), amount: BigInt(env.BENCH_CARD_MICROS ?? 25_000_000), reason: 'initial', ref: 'initial', onFloor: 'reject' });
  });
}
await service.rates.reload();

// What the collector did, by kind (perf_hooks gc entries: detail.kind is one of NODE_PERFORMANCE_GC_*).
const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
let gc: Record<string, { count: number; ms: number }> = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
    const k = GC_KINDS[e.detail?.kind ?? 0] ?? `kind${e.detail?.kind}`;
    if (tracing && measuring) gcs.push({ a: e.startTime, b: e.startTime + e.duration, kind: k });
    const g = (gc[k] ??= { count: 0, ms: 0 });
    g.count++;
    g.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();

/** rchar/wchar/syscr/syscw of this process (Linux; zeros elsewhere). */
function io(): Record<string, number> {
  try {
    return Object.fromEntries(readFileSync('/proc/self/io', 'utf8').trim().split('\n').map((l) => [l.split(':')[0]!, Number(l.split(':')[1])]));
  } catch {
    return {};
  }
}

// BENCH_CCARD_CPU_PROF=<dir>: a CPU profile of the measured window only (mark -> report), not start-up or seeding.
const profDir = env.BENCH_CCARD_CPU_PROF;
const inspector = profDir ? new Session() : undefined;
inspector?.connect();

let marked = { io: io(), cpu: process.cpuUsage() };
let elu = performance.eventLoopUtilization();
const answers: Record<string, () => Promise<unknown> | unknown> = {
  mark: async () => {
    if (inspector) {
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
      await inspector.post('Profiler.start');
    }
    gc = {};
    eld.reset();
    marked = { io: io(), cpu: process.cpuUsage() };
    return true;
  },
  report: async () => {
    const now = io();
    const cpu = process.cpuUsage(marked.cpu);
    let profile: string | undefined;
    if (inspector) {
      const stopped = await inspector.post('Profiler.stop');
      profile = path.resolve(profDir!, `ccard-realcall-${process.pid}.cpuprofile`);
      writeFileSync(profile, JSON.stringify(stopped.profile));
    }
    return {
      profile,
      eldP50: eld.percentile(50) / 1e6,
      eldP99: eld.percentile(99) / 1e6,
      eldMax: eld.max / 1e6,
      gc,
      cpuMs: (cpu.user + cpu.system) / 1000,
      io: Object.fromEntries(Object.keys(now).map((k) => [k, now[k]! - (marked.io[k] ?? 0)])),
    };
  },
  heap: () => {
    global.gc?.();
    return { heapUsed: process.memoryUsage().heapUsed, active: service.esl.server.activeSessions };
  },
  active: () => service.esl.server.activeSessions,
  reserved: async () =>
    Number((await service.pool.query<{ n: bigint }>(`SELECT count(*) AS n FROM calls WHERE status = 'reserved'`)).rows[0]!.n),
  measureOn: () => {
    decisions.length = 0;
    ops.length = 0;
    gcs.length = 0;
    elu = performance.eventLoopUtilization();
    measuring = true;
    return true;
  },
  measureOff: async () => {
    measuring = false;
    await new Promise((r) => setTimeout(r, 50)); // the last operations' ends
    return {
      latencies: decisions.map((d) => d.b - d.a),
      eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
      trace: tracing ? traceOf(decisions) : undefined,
    };
  },
  // BENCH_CCARD_HEAP_SNAPSHOT=<dir>: a heap snapshot while the calls are held (what a live call keeps).
  snapshot: async () => {
    if (!env.BENCH_CCARD_HEAP_SNAPSHOT) return undefined;
    const { writeHeapSnapshot } = await import('node:v8');
    return writeHeapSnapshot(path.join(env.BENCH_CCARD_HEAP_SNAPSHOT, `ccard-held-${process.pid}.heapsnapshot`));
  },
  ledger: async () => {
    const bad = await service.pool.query<{ n: bigint }>(
      `SELECT count(*) AS n FROM cards c WHERE c.balance_micros <> (SELECT coalesce(sum(amount_micros), 0) FROM ledger l WHERE l.card_id = c.id)`,
    );
    const calls = await service.pool.query<{ status: string; n: bigint }>(`SELECT status, count(*) AS n FROM calls GROUP BY status ORDER BY status`);
    return { bad: Number(bad.rows[0]!.n), calls: calls.rows.map((r) => `${r.status} ${r.n}`).join(', ') };
  },
  exit: async () => {
    await service.stop(2000);
    process.exit(0);
  },
};

process.on('message', (m: { id: number; ask: string }) => {
  Promise.resolve(answers[m.ask]!()).then(
    (result) => process.send!({ id: m.id, ok: true, result }),
    (err: Error) => process.send!({ id: m.id, ok: false, error: err.stack ?? String(err) }),
  );
});
process.send!({ id: 0, ok: true, result: { eslPort: service.esl.port, httpPort: service.http.port, did: data.did, pins } });
