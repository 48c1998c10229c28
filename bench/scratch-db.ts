import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';

/** A throw-away database and Redis prefix for one benchmark run; drop() removes both. */
export async function scratchDb(
  label: string,
  servers: { databaseUrl?: string; redisUrl?: string } = {},
): Promise<{ name: string; url: string; redisUrl: string; prefix: string; drop(): Promise<void> }> {
  const base = new URL(servers.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const redisUrl = servers.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const tag = randomBytes(4).toString('hex');
  const name = `ccard_bench_${label}_${tag}`;
  const admin = new URL(base);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`CREATE DATABASE "${name}"`);
  await client.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const prefix = `ccard_bench:${tag}:`;
  return {
    name,
    url: url.toString(),
    redisUrl,
    prefix,
    async drop() {
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
      const r = new Redis(redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await r.del(...keys);
      } while (cursor !== '0');
      r.disconnect();
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface CpuTimes {
  server: number;
  simulator: number;
  postgres: number;
  redis: number;
}

/** Every process's /proc/<pid>/stat, parsed: its name, and the fields after it (Linux; none elsewhere). */
function procStats(): Array<{ pid: number; name: string; fields: string[] }> {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  const out: Array<{ pid: number; name: string; fields: string[] }> = [];
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const end = stat.lastIndexOf(')');
    out.push({ pid: Number(pid), name: stat.slice(stat.indexOf('(') + 1, end), fields: stat.slice(end + 2).split(' ') });
  }
  return out;
}

/** CPU time (user + system, ms) used so far by the server (this process unless told), the simulator, and every
 * postgres and redis-server process on the machine (Linux /proc; zeros elsewhere). A snapshot: a process that exits
 * between two snapshots takes its time with it, so a difference over a phase in which PostgreSQL backends exit can
 * even be negative; use CpuTracker for PostgreSQL and Redis over a phase. */
export function cpuTimes(simulatorPid: number, serverPids: readonly number[] = [process.pid]): CpuTimes {
  const t: CpuTimes = { server: 0, simulator: 0, postgres: 0, redis: 0 };
  for (const { pid, name, fields } of procStats()) {
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime in clock ticks (USER_HZ = 100)
    if (serverPids.includes(pid)) t.server += ms;
    else if (pid === simulatorPid) t.simulator += ms;
    else if (name === 'postgres') t.postgres += ms;
    else if (name === 'redis-server') t.redis += ms;
  }
  return t;
}

/** /proc/<pid>/cmdline with its NULs as spaces ('' when gone). */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

export interface PhaseCpu extends CpuTimes {
  /** PostgreSQL's own processes (postmaster, WAL writer, checkpointer, background writer, autovacuum...): shared by
   * every database on the machine, so other work's commits land here too. */
  postgresShared: number;
  /** Backends of the benchmark's database that started during the phase (a connection pool's churn). */
  backendsStarted: number;
  /** Of them, or of those alive at the start, how many exited during the phase. */
  backendsExited: number;
}

/**
 * CPU per process group over a phase, right when processes come and go. A PostgreSQL backend that exits takes its
 * CPU time out of /proc (into the postmaster's cutime, mixed with every other database's exited backends), so a
 * difference of two snapshots undercounts it, down to negative figures. The tracker samples /proc every
 * `everyMs` and keeps each process's last value: a backend's CPU is counted up to its last sample before it exits
 * (a pooled connection exits after its idle timeout, idle, so nothing is lost). PostgreSQL is split into the
 * backends of `database` (this benchmark's: connections whose command line names it) and the shared processes;
 * Redis is one process for everyone (its reaped children, BGSAVE forks, included via cutime/cstime).
 */
export class CpuTracker {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, { group: keyof CpuTimes | 'postgresShared'; ms: number }>();
  private readonly timer: NodeJS.Timeout;
  private startedPids = new Set<number>();
  private initial = true;

  constructor(
    private readonly who: { server: readonly number[]; simulator: number; database: string },
    everyMs = 200,
  ) {
    this.sample();
    this.initial = false;
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  private sample(): void {
    for (const { pid, name, fields } of procStats()) {
      let ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime in clock ticks (USER_HZ = 100)
      let group: keyof CpuTimes | 'postgresShared' | undefined;
      if (this.who.server.includes(pid)) group = 'server';
      else if (pid === this.who.simulator) group = 'simulator';
      else if (name === 'postgres') {
        const cmd = cmdline(pid);
        // A backend's title is "postgres: <cluster>: <user> <database> <host>(<port>) <state>".
        if (cmd.includes(` ${this.who.database} `)) group = 'postgres';
        else if (!/^postgres: \S+: \S+ \S+ \S+\(\d+\)/.test(cmd)) group = 'postgresShared'; // not another database's backend
      } else if (name === 'redis-server') {
        group = 'redis';
        ms += ((Number(fields[13]) + Number(fields[14])) * 1000) / 100; // cutime + cstime: its reaped forks
      }
      if (!group) continue;
      if (this.initial) this.first.set(pid, ms);
      else if (!this.first.has(pid) && group === 'postgres') this.startedPids.add(pid);
      this.last.set(pid, { group, ms });
    }
  }

  /** Takes a last sample, stops, and returns each group's CPU (ms) over the phase. */
  stop(): PhaseCpu {
    this.sample();
    clearInterval(this.timer);
    const t: PhaseCpu = { server: 0, simulator: 0, postgres: 0, redis: 0, postgresShared: 0, backendsStarted: this.startedPids.size, backendsExited: 0 };
    const alive = new Set(procStats().map((p) => p.pid));
    for (const [pid, { group, ms }] of this.last) {
      t[group] += ms - (this.first.get(pid) ?? 0);
      if (group === 'postgres' && !alive.has(pid)) t.backendsExited++;
    }
    return t;
  }
}

/** Pids whose parent is `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  return procStats()
    .filter((p) => Number(p.fields[1]) === pid)
    .map((p) => p.pid);
}

/**
 * Pins every thread of `pid` to `cores` (e.g. '0', '1', '0-1') with `taskset -a -p`; threads it starts later inherit
 * it. False when it could not (no taskset, not Linux, fewer cores): the figures are then unpinned.
 */
export function pinToCores(pid: number, cores: string): boolean {
  const r = spawnSync('taskset', ['-a', '-pc', cores, String(pid)], { stdio: 'ignore' });
  return r.status === 0;
}

/** ccard's core and the simulator's: BENCH_CCARD_CORE (default 0) and the other of the first two. */
export function benchCores(): { ccard: string; simulator: string } {
  const ccard = process.env.BENCH_CCARD_CORE ?? '0';
  return { ccard, simulator: ccard === '0' ? '1' : '0' };
}

/** The cores of this machine as a taskset list ('0-1' on two). */
export const allCores = () => `0-${Math.max(0, cpus().length - 1)}`;
