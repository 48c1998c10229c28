/**
 * `npm run bench -- realcall`: what a call costs ccard in production. ccard (bench/ccard-server.ts: startService
 * as `ccard serve` runs it, logging at info to /dev/null) runs compiled from dist/ (built first if stale; plain node,
 * no tsx: bench/ccard-child.ts) in its own process pinned to core 0 with `taskset`; the
 * FreeSWITCH simulator pinned to core 1. PostgreSQL and Redis are already running and cannot be moved here: the
 * kernel schedules them on either core (so they steal from ccard's core sometimes; ccard's CPU time from /proc is
 * its own whatever the contention, wall-clock figures are not).
 *
 * Calls arrive open loop at BENCH_REALCALL_RATE per second (default 3) for BENCH_REALCALL_SECONDS (default 30), each
 * played at real pacing (src/sim realPacing): answer, the PIN prompt and 10 digits + # at the recorded 520 ms
 * spacing, the destination prompt and 11 digits + #, 3 s of talk, the another-call prompt left unanswered, goodbye;
 * ~22-30 s of IVR, so ~rate x 25 calls are live at once. Then both legs' json_cdr POSTs (carrier leg and IVR leg,
 * 9-10 KB each) as mod_json_cdr sends them.
 *
 * Reports ccard's CPU per call (/proc utime+stime over the whole run, all its threads; PostgreSQL's and Redis's
 * sampled through the run by CpuTracker, so backends that exit meanwhile still count), the calls/s one core could
 * carry (1000 / CPU ms per call), bytes and read/write system calls per call (/proc/<pid>/io), event-loop delay,
 * GC by kind (perf_hooks), and heap per concurrent call with BENCH_REALCALL_HOLD calls (default 1000) held bridged
 * by the fast-paced simulator (0 skips that phase). BENCH_CCARD_CPU_PROF=<dir> writes a CPU profile of ccard
 * over the real-paced run there (inspector, 200 µs sampling; not start-up, seeding or the heap phase) and prints
 * where the time goes: ms per call by layer (bench/profile-layers.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCcard } from './ccard-child.ts';
import { layerTable, type CpuProfile } from './profile-layers.ts';
import { benchCores, cpuTimes, CpuTracker, percentile, pinToCores, scratchDb, type PhaseCpu } from './scratch-db.ts';
import { driver } from './spine.ts';

interface Report {
  eldP50: number;
  eldP99: number;
  eldMax: number;
  gc: Record<string, { count: number; ms: number }>;
  cpuMs: number;
  io: Record<string, number>;
  profile?: string;
}

export async function benchRealcall(): Promise<Record<string, number | string>> {
  const rate = Number(process.env.BENCH_REALCALL_RATE ?? 3);
  const seconds = Number(process.env.BENCH_REALCALL_SECONDS ?? 30);
  const hold = Number(process.env.BENCH_REALCALL_HOLD ?? 1000);
  const db = await scratchDb('realcall');
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ccard-realcall-'));
  const server = startCcard({
    BENCH_DATABASE_URL: db.url,
    BENCH_REDIS_URL: db.redisUrl,
    BENCH_REDIS_PREFIX: db.prefix,
    BENCH_DATA_DIR: dataDir,
    BENCH_CARDS: String(Math.max(hold, Math.ceil(rate * seconds)) + 10),
  });
  const sim = driver();
  try {
    const info = await server.ready;
    const cores = benchCores();
    const pinned = pinToCores(server.pid, cores.ccard) && pinToCores(sim.pid, cores.simulator);
    const job = { port: info.eslPort, did: info.did, pins: info.pins };
    const cdrUrl = `http://127.0.0.1:${info.httpPort}/cdr`;

    // Warm-up (JIT, pools, prepared statements) with fast calls, then the real-paced run.
    await sim.run({ ...job, kind: 'throughput', calls: 100, concurrency: 10 });
    // What ccard costs doing nothing (its timers, pools, this benchmark's event-loop monitor): part of every figure.
    const idleStart = cpuTimes(sim.pid, [server.pid]).server;
    await new Promise((r) => setTimeout(r, 5000));
    const idleMsPerS = (cpuTimes(sim.pid, [server.pid]).server - idleStart) / 5;
    await server.ask('mark');
    const tracker = new CpuTracker({ server: [server.pid], simulator: sim.pid, database: db.name });
    const t0 = Date.now();
    const real = await sim.run<{ calls: number; bridged: number; cdrPosted: number; seconds: number; meanCallMs: number; decisionsMs: number[] }>({
      ...job,
      kind: 'real',
      perSecond: rate,
      seconds,
      cdrUrl,
    });
    const used = tracker.stop();
    const windowS = (Date.now() - t0) / 1000;
    const rep = await server.ask<Report>('report');
    const cpuPerCall = used.server / real.calls;
    const per = (k: keyof PhaseCpu) => (used[k] / real.calls).toFixed(1);
    const seen = real.decisionsMs.sort((a, b) => a - b);
    // BENCH_CCARD_CPU_PROF: where the time goes, by layer (bench/profile-layers.ts), ms per call of the main thread.
    const layers = rep.profile
      ? ['(profile: ' + rep.profile + ')', ...layerTable(JSON.parse(readFileSync(rep.profile, 'utf8')) as CpuProfile, real.calls)]
      : undefined;

    // Heap per concurrent call: `hold` calls bridged at once (fast-paced IVR, then a long talk), against idle.
    // BENCH_REALCALL_HOLD=0 skips it.
    let heap: { held: number | string; bridged: number | string; kib: number | string } = { held: 'skipped', bridged: 'skipped', kib: 'skipped' };
    if (hold > 0) {
      const idle = await server.ask<{ heapUsed: number }>('heap');
      const holding = sim.run<{ calls: number; bridged: number }>({ ...job, kind: 'hold', calls: hold, holdMs: 20_000 });
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && (await server.ask<number>('active')) < hold) await new Promise((r) => setTimeout(r, 250));
      const busy = await server.ask<{ heapUsed: number; active: number }>('heap');
      await server.ask('snapshot');
      const held = await holding;
      heap = { held: busy.active, bridged: held.bridged, kib: Number(((busy.heapUsed - idle.heapUsed) / Math.max(1, busy.active) / 1024).toFixed(1)) };
    }
    const ledger = await server.ask<{ bad: number; calls: string }>('ledger');

    const gc = Object.entries(rep.gc)
      .map(([k, g]) => `${k} ${g.count} (${g.ms.toFixed(0)} ms)`)
      .join(', ');
    return {
      ccard_runs: server.how,
      pinned: pinned ? `ccard on core ${cores.ccard}, simulator on core ${cores.simulator}, PostgreSQL and Redis wherever the kernel puts them` : 'no (taskset failed)',
      calls: real.calls,
      calls_bridged: real.bridged,
      carrier_leg_cdrs_posted: real.cdrPosted,
      arrival_rate_per_s: rate,
      mean_call_s: Number((real.meanCallMs / 1000).toFixed(1)),
      mean_concurrent_calls: Math.round((real.calls * real.meanCallMs) / 1000 / real.seconds),
      ...(rep.profile ? { cpu_note: 'BENCH_CCARD_CPU_PROF is on: the /proc CPU figures include the sampling profiler (not comparable)' } : {}),
      cpu_ms_per_call_ccard: Number(cpuPerCall.toFixed(2)),
      calls_per_s_one_ccard_core: Math.round(1000 / cpuPerCall),
      ccard_idle_cpu_ms_per_s: Number(idleMsPerS.toFixed(1)),
      cpu_ms_per_call_ccard_less_idle: Number((cpuPerCall - (idleMsPerS * windowS) / real.calls).toFixed(2)),
      cpu_ms_per_call_others: `simulator ${per('simulator')}, postgres ${per('postgres')} (this database's backends; + ${per('postgresShared')} in PostgreSQL's shared processes, machine-wide), redis ${per('redis')} (machine-wide)`,
      postgres_backends_started_exited: `${used.backendsStarted} / ${used.backendsExited}`,
      bytes_per_call_read_written: `${Math.round(rep.io.rchar! / real.calls)} / ${Math.round(rep.io.wchar! / real.calls)}`,
      syscalls_per_call_read_write: `${(rep.io.syscr! / real.calls).toFixed(0)} / ${(rep.io.syscw! / real.calls).toFixed(0)}`,
      event_loop_delay_p50_p99_max_ms: `${rep.eldP50.toFixed(1)} / ${rep.eldP99.toFixed(1)} / ${rep.eldMax.toFixed(1)}`,
      gc_during_run: gc,
      gc_per_call: Object.entries(rep.gc).map(([k, g]) => `${k} ${(g.count / real.calls).toFixed(2)}`).join(', '),
      decision_seen_by_freeswitch_p50_p99_ms: `${percentile(seen, 50).toFixed(1)} / ${percentile(seen, 99).toFixed(1)}`,
      concurrent_calls_held: heap.held,
      calls_held_bridged: heap.bridged,
      heap_per_concurrent_call_kib: heap.kib,
      ...(layers ? { where_the_time_goes: `\n${layers.map((l) => `      ${l}`).join('\n')}` } : {}),
      calls_by_status: ledger.calls,
      cards_where_balance_differs_from_ledger: ledger.bad,
    };
  } finally {
    sim.kill();
    await server.stop();
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchRealcall().then(
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
