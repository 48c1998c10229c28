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
): Promise<{ url: string; redisUrl: string; prefix: string; drop(): Promise<void> }> {
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
 * postgres and redis-server process on the machine (Linux /proc; zeros elsewhere). Differences over a phase show where a call's CPU goes. */
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

/** The cores of this machine as a taskset list ('0-1' on two). */
export const allCores = () => `0-${Math.max(0, cpus().length - 1)}`;
