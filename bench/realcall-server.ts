/**
 * Child process of bench/realcall.ts: ccard itself (startService: ESL, flow, POST /cdr, PostgreSQL, Redis), as
 * `ccard serve` runs it, in a process of its own that the benchmark pins to one core. It seeds the cards the
 * simulator dials with, then answers the parent's questions over IPC: what its event loop, heap and collector did
 * between two marks.
 */
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { loadConfig } from '../src/config/env.ts';
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
  CCARD_DATA_DIR: env.BENCH_DATA_DIR!,
  LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'info',
  ...(env.CCARD_LOG_FLUSH_MS !== undefined && { CCARD_LOG_FLUSH_MS: env.CCARD_LOG_FLUSH_MS }),
});
// Production's logger (src/app/logger.ts) at info to stdout; here stdout is /dev/null (or BENCH_CCARD_LOG), so the
// cost of formatting and writing stays in.
const logger = createLogger({ level: config.LOG_LEVEL, flushMs: config.CCARD_LOG_FLUSH_MS });
const service = await startService({ config, logger, eslPort: 0, httpPort: 0, scheduler: false });

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
    await applyBalanceChange(c, { cardId: String(r.rows[0]!.id), amount: 25_000_000n, reason: 'initial', ref: 'initial', onFloor: 'reject' });
  });
}
await service.rates.reload();

// What the collector did, by kind (perf_hooks gc entries: detail.kind is one of NODE_PERFORMANCE_GC_*).
const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
let gc: Record<string, { count: number; ms: number }> = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
    const k = GC_KINDS[e.detail?.kind ?? 0] ?? `kind${e.detail?.kind}`;
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
    if (inspector) {
      const { profile } = await inspector.post('Profiler.stop');
      writeFileSync(path.join(profDir!, `ccard-realcall-${process.pid}.cpuprofile`), JSON.stringify(profile));
    }
    return {
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
