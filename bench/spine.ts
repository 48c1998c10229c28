/**
 * The spine benchmark: the real server (ESL, flow, PostgreSQL, Redis) driven by the FreeSWITCH simulator in a
 * child process, with no IVR delays. Prints calls/s sustained, the decision latency (destination digits
 * received -> bridge command written, which covers rating, the Redis reservation and the calls row written
 * meanwhile, a durable PostgreSQL commit) at a fixed arrival rate, and memory per concurrent call. The server runs
 * compiled from dist/ (built first if stale; plain node, no tsx: bench/ccard-child.ts) in a child process pinned to
 * core 0, the simulator in another pinned to core 1 with `taskset` (Linux); PostgreSQL and Redis cannot be moved and
 * share both cores. BENCH_CCARD_NODE_ARGS adds node flags to ccard's process (e.g. --max-semi-space-size=16).
 *   node --import tsx bench/spine.ts
 */
import { fork, spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { ensureDist, startCcard } from './ccard-child.ts';
import { allCores, benchCores, childPids, CpuTracker, percentile, pinToCores, scratchDb, type PhaseCpu } from './scratch-db.ts';

/** Free TCP ports on 127.0.0.1 (asked of the kernel, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve) => { const srv = net.createServer(); srv.listen(0, '127.0.0.1', () => resolve(srv)); })),
  );
  const ports = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

/**
 * `ccard serve` with CCARD_WORKERS=n as a child process (its own supervisor and workers, logging only warnings), on
 * the benchmark's database: what the same simulator load gets from n event loops instead of one.
 */
async function workersThroughput(
  db: { name: string; url: string; redisUrl: string; prefix: string },
  sim: ReturnType<typeof driver>,
  job: { did: string; pins: string[] },
  n: number,
  calls: number,
  concurrency: number,
  rate: { perSecond: number; seconds: number },
): Promise<{ callsPerSecond: number; cpuServer: number; cpuSimulator: number; cpuPostgres: number; cpuRedis: number; seenP50: number; seenP99: number }> {
  const [eslPort, httpPort] = await freePorts(2);
  ensureDist();
  const child = spawn(process.execPath, [fileURLToPath(new URL('../dist/main.js', import.meta.url)), 'serve'], {
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      DATABASE_URL: db.url,
      REDIS_URL: db.redisUrl,
      CCARD_REDIS_PREFIX: db.prefix,
      CCARD_SECRET: 'bench-secret-0123456789',
      CCARD_WORKERS: String(n),
      CCARD_ESL_PORT: String(eslPort),
      CCARD_HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const deadline = Date.now() + 60_000;
    const connectable = () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(eslPort!, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
    while (childPids(child.pid!).length < n || !(await connectable())) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('ccard serve with workers did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    const port = eslPort!;
    // n event loops need n cores: this child inherited the benchmark's pinning to core 0.
    for (const pid of [child.pid!, ...childPids(child.pid!)]) pinToCores(pid, allCores());
    await sim.run({ ...job, port, kind: 'throughput', calls: 300, concurrency });
    const pids = [child.pid!, ...childPids(child.pid!)];
    const tracker = new CpuTracker({ server: pids, simulator: sim.pid, database: db.name });
    const tp = await sim.run<{ calls: number; seconds: number }>({ ...job, port, kind: 'throughput', calls, concurrency });
    const used = tracker.stop();
    const per = (k: keyof PhaseCpu) => Number((used[k] / tp.calls).toFixed(2));
    const rated = await sim.run<RateResult>({ ...job, port, kind: 'rate', perSecond: rate.perSecond, seconds: rate.seconds });
    const seen = rated.decisionsMs.sort((a, b) => a - b);
    return {
      callsPerSecond: Math.round(tp.calls / tp.seconds),
      cpuServer: per('server'),
      cpuSimulator: per('simulator'),
      cpuPostgres: per('postgres'),
      cpuRedis: per('redis'),
      seenP50: percentile(seen, 50),
      seenP99: percentile(seen, 99),
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

interface RateResult {
  calls: number;
  bridged: number;
  seconds: number;
  decisionsMs: number[];
}

export interface SpineOptions {
  calls?: number;
  concurrency?: number;
  ratePerSecond?: number;
  rateSeconds?: number;
  holdCalls?: number;
}

type TraceRow = Record<string, number | string | null>;
interface Trace {
  decisions: number;
  totalMs: number;
  onCpuMs: number;
  runQueueMs: number;
  gcCount: number;
  gcMs: number;
  slowest: TraceRow[];
  median: TraceRow[];
}

/** BENCH_TRACE_DECISIONS: the slowest 1 % of decisions and the median ones taken apart (bench/ccard-server.ts), ms. */
function printTrace(perSecond: number, t: Trace): void {
  const cols = ['ms', 'onCpu', 'runQueue', 'beforeInsert', 'insert', 'insertPoolWait', 'redis', 'afterIo', 'gcMs', 'inFlight', 'gcKinds'];
  const line = (r: TraceRow) => cols.map((c) => String(r[c] ?? '-').padStart(c === 'gcKinds' ? 0 : Math.max(6, c.length))).join(' ');
  process.stderr.write(
    [
      `decision trace at ${perSecond}/s: ${t.decisions} decisions, ${t.totalMs} ms in all, of which the main thread on a CPU ${t.onCpuMs} ms, waiting for one ${t.runQueueMs} ms; ${t.gcCount} GCs, ${t.gcMs.toFixed(0)} ms`,
      `  ${cols.map((c) => c.padStart(c === 'gcKinds' ? 0 : Math.max(6, c.length))).join(' ')}`,
      '  slowest 1 %:',
      ...t.slowest.map((r) => `  ${line(r)}`),
      '  median:',
      ...t.median.slice(0, 5).map((r) => `  ${line(r)}`),
      '',
    ].join('\n'),
  );
}

export function driver() {
  const child = fork(fileURLToPath(new URL('./sim-driver.ts', import.meta.url)), [], {
    // The simulator allocates per frame: a larger young generation halves its GC time (a test double's tuning).
    execArgv: ['--import', 'tsx', '--max-semi-space-size=64', ...(process.env.BENCH_SIM_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_SIM_CPU_PROF] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const run = <T>(job: object) =>
    new Promise<T>((resolve, reject) => {
      child.once('message', (m: { ok: boolean; result?: T; error?: string }) => (m.ok ? resolve(m.result!) : reject(new Error(m.error))));
      child.send(job);
    });
  // Asked to exit rather than killed, so that a --cpu-prof child writes its profile.
  return { run, kill: () => child.send('exit'), pid: child.pid! };
}

export async function benchSpine(opts: SpineOptions = {}): Promise<Record<string, number | string>> {
  const calls = opts.calls ?? 3000;
  const concurrency = opts.concurrency ?? 64;
  const rate = opts.ratePerSecond ?? Number(process.env.BENCH_SPINE_RATE ?? 100);
  const rateSeconds = opts.rateSeconds ?? Number(process.env.BENCH_SPINE_RATE_SECONDS ?? 10);
  const holdCalls = opts.holdCalls ?? 500;
  const db = await scratchDb('spine');
  const server = startCcard(
    {
      BENCH_DATABASE_URL: db.url,
      BENCH_REDIS_URL: db.redisUrl,
      BENCH_REDIS_PREFIX: db.prefix,
      BENCH_LOG_LEVEL: 'silent',
      BENCH_TIME_DECISIONS: '1',
      BENCH_CARDS: String(Math.max(holdCalls, concurrency) + 10),
      BENCH_CARD_MICROS: '1000000000000',
    },
    (process.env.BENCH_CCARD_NODE_ARGS ?? '').split(' ').filter(Boolean),
  );
  const sim = driver();
  try {
    const info = await server.ready;
    // ccard on core 0, the simulator on core 1; PostgreSQL and Redis, already running, wherever the kernel puts them.
    // Decision latency is then ccard's own plus what those two steal from its core.
    const cores = benchCores();
    const pinned = pinToCores(server.pid, cores.ccard) && pinToCores(sim.pid, cores.simulator);
    const job = { port: info.eslPort, did: info.did, pins: info.pins };

    // Decision latency at a fixed arrival rate (the target's 100 calls/s), and at a light load where no call
    // waits behind another, which shows the decision's own cost.
    const atRate = async (perSecond: number, seconds: number) => {
      await server.ask('measureOn');
      const r = await sim.run<RateResult>({ ...job, kind: 'rate', perSecond, seconds });
      const m = await server.ask<{ latencies: number[]; eventLoopUtilization: number; trace?: unknown }>('measureOff');
      const sorted = m.latencies.sort((a, b) => a - b);
      if (m.trace) printTrace(perSecond, m.trace as Trace);
      const seen = r.decisionsMs.sort((a, b) => a - b);
      return {
        ...r,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.at(-1) ?? NaN,
        samples: sorted.length,
        seenP50: percentile(seen, 50),
        seenP99: percentile(seen, 99),
        elu: m.eventLoopUtilization,
      };
    };
    // Warm-up, then sustained throughput with `concurrency` calls in flight.
    await sim.run({ ...job, kind: 'throughput', calls: process.env.BENCH_SPINE_RATE_ONLY ? 1000 : 200, concurrency });
    // BENCH_SPINE_RATE_ONLY=1: only the decision latency at `rate` calls/s (BENCH_SPINE_RATE, default 100, for BENCH_SPINE_RATE_SECONDS, default 10) (to study its tail; with BENCH_TRACE_DECISIONS=1
    // the slowest decisions taken apart on stderr).
    if (process.env.BENCH_SPINE_RATE_ONLY) {
      const rt = await atRate(rate, rateSeconds);
      return {
        ccard_runs: `${server.how}${process.env.BENCH_CCARD_NODE_ARGS ? ` with ${process.env.BENCH_CCARD_NODE_ARGS}` : ''}`,
        pinned: String(pinned),
        [`decision_p50_p99_max_ms_at_${rate}_per_s`]: `${rt.p50.toFixed(2)} / ${rt.p99.toFixed(2)} / ${rt.max.toFixed(2)}`,
        [`decision_seen_by_freeswitch_p50_p99_ms_at_${rate}_per_s`]: `${rt.seenP50.toFixed(2)} / ${rt.seenP99.toFixed(2)}`,
        [`event_loop_utilization_at_${rate}_per_s`]: Number(rt.elu.toFixed(2)),
        [`calls_bridged_at_${rate}_per_s`]: `${rt.bridged} of ${rt.calls}`,
      };
    }
    const tracker = new CpuTracker({ server: [server.pid], simulator: sim.pid, database: db.name });
    const tp = await sim.run<{ calls: number; bridged: number; seconds: number }>({ ...job, kind: 'throughput', calls, concurrency });
    const used = tracker.stop();
    const cpuPerCall = (k: keyof PhaseCpu) => Number((used[k] / tp.calls).toFixed(2));

    const light = await atRate(10, rateSeconds);
    const rt = await atRate(rate, rateSeconds);

    // Memory per concurrent call: hold `holdCalls` calls bridged at once and compare with idle (heap after a forced GC).
    const idle = await server.ask<{ heapUsed: number }>('heap');
    const holding = sim.run<{ calls: number; bridged: number }>({ ...job, kind: 'hold', calls: holdCalls, holdMs: 15_000 });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if ((await server.ask<number>('reserved')) >= holdCalls) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const busy = await server.ask<{ heapUsed: number; active: number }>('heap');
    const activeDuringHold = busy.active;
    await holding;

    // The same throughput with two event loops: `ccard serve` with CCARD_WORKERS=2 as a child process.
    const two = await workersThroughput(db, sim, job, 2, calls, concurrency, { perSecond: rate, seconds: rateSeconds });

    const ledger = await server.ask<{ bad: number }>('ledger');
    return {
      ccard_runs: `${server.how}${process.env.BENCH_CCARD_NODE_ARGS ? ` with ${process.env.BENCH_CCARD_NODE_ARGS}` : ''}`,
      pinned: pinned ? `ccard on core ${cores.ccard}, simulator on core ${cores.simulator} (2 workers: all cores)` : 'no (taskset failed)',
      calls_per_second: Math.round(tp.calls / tp.seconds),
      throughput_calls: tp.calls,
      throughput_bridged: tp.bridged,
      concurrency,
      cpu_ms_per_call_server: cpuPerCall('server'),
      cpu_ms_per_call_simulator: cpuPerCall('simulator'),
      cpu_ms_per_call_postgres: cpuPerCall('postgres'),
      cpu_ms_per_call_postgres_shared_processes: cpuPerCall('postgresShared'),
      cpu_ms_per_call_redis: cpuPerCall('redis'),
      calls_per_second_2_workers: two.callsPerSecond,
      cpu_ms_per_call_2_workers: `ccard ${two.cpuServer}, simulator ${two.cpuSimulator}, postgres ${two.cpuPostgres}, redis ${two.cpuRedis}`,
      [`decision_seen_by_freeswitch_p50_p99_ms_at_${rate}_per_s_2_workers`]: `${two.seenP50.toFixed(2)} / ${two.seenP99.toFixed(2)}`,
      [`decision_p50_ms_at_${rate}_per_s`]: Number(rt.p50.toFixed(2)),
      [`decision_p99_ms_at_${rate}_per_s`]: Number(rt.p99.toFixed(2)),
      [`decision_max_ms_at_${rate}_per_s`]: Number(rt.max.toFixed(2)),
      [`event_loop_utilization_at_${rate}_per_s`]: Number(rt.elu.toFixed(2)),
      [`decision_seen_by_freeswitch_p50_p99_ms_at_${rate}_per_s`]: `${rt.seenP50.toFixed(2)} / ${rt.seenP99.toFixed(2)}`,
      [`calls_bridged_at_${rate}_per_s`]: `${rt.bridged} of ${rt.calls}`,
      decision_p50_ms_at_10_per_s: Number(light.p50.toFixed(2)),
      decision_p99_ms_at_10_per_s: Number(light.p99.toFixed(2)),
      concurrent_calls_held: activeDuringHold,
      // Heap after a forced GC (ccard's process runs with --expose-gc); RSS is too noisy to divide.
      heap_per_call_kib: Math.round((busy.heapUsed - idle.heapUsed) / activeDuringHold / 1024),
      cards_where_balance_differs_from_ledger: ledger.bad,
    };
  } finally {
    sim.kill();
    await server.stop();
    await db.drop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchSpine().then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
