import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

/**
 * Real Redis servers started by a test (redis-server from the redis-server package; a sentinel is the same binary
 * with --sentinel): on free loopback ports, in a temporary directory, without persistence. stop() kills every
 * process it started and removes the directory; call it in afterAll.
 */
const run = promisify(execFile);

// Even if the test process exits without its afterAll, no server it started outlives it.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export interface RedisNode {
  host: string;
  port: number;
  proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A one-shot connection for probing a server (errors surface from its commands, not as events). */
function probe(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  c.on('error', () => {});
  return c;
}

async function ping(port: number): Promise<string> {
  const c = probe(port);
  try {
    await c.connect();
    return await c.ping();
  } finally {
    c.disconnect();
  }
}

export class RedisFarm {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'ccard-redis-'));
  private readonly nodes: RedisNode[] = [];

  /** One redis-server (or a sentinel with `sentinel: true` and a config file) with the given extra arguments. */
  async start(args: string[] = [], opts: { sentinelConf?: string } = {}): Promise<RedisNode> {
    const port = await freePort();
    const argv: string[] = [];
    if (opts.sentinelConf !== undefined) {
      const conf = path.join(this.dir, `sentinel-${port}.conf`);
      writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${this.dir}\n${opts.sentinelConf}\n`);
      argv.push(conf, '--sentinel');
    } else {
      argv.push('--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir);
      argv.push('--dbfilename', `dump-${port}.rdb`, ...args);
    }
    const proc = spawn('redis-server', argv, { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const node: RedisNode = {
      host: '127.0.0.1',
      port,
      proc,
      async kill(signal = 'SIGKILL') {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        await exited;
      },
    };
    this.nodes.push(node);
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    await until(`redis-server on ${port}`, async () => (await ping(port)) === 'PONG');
    return node;
  }

  /** A Redis Cluster of `masters` masters (no replicas), every slot assigned and the cluster state ok. */
  async cluster(masters = 3): Promise<RedisNode[]> {
    const nodes: RedisNode[] = [];
    for (let i = 0; i < masters; i++) {
      nodes.push(await this.start(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}-${Date.now()}.conf`, '--cluster-node-timeout', '2000']));
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 20_000,
    });
    for (const n of nodes) {
      await until(`cluster state ok on ${n.port}`, async () => {
        const c = probe(n.port);
        try {
          await c.connect();
          return /cluster_state:ok/.test(String(await c.call('CLUSTER', 'INFO')));
        } finally {
          c.disconnect();
        }
      });
    }
    return nodes;
  }

  /** A master, one replica in sync with it, and `count` sentinels monitoring it as `name` (quorum: a majority). */
  async sentinel(name: string, count = 3): Promise<{ master: RedisNode; replica: RedisNode; sentinels: RedisNode[] }> {
    const master = await this.start();
    const replica = await this.start(['--replicaof', master.host, String(master.port)]);
    await until('the replica in sync', async () => {
      const c = probe(replica.port);
      try {
        await c.connect();
        return /master_link_status:up/.test(await c.info('replication'));
      } finally {
        c.disconnect();
      }
    });
    const quorum = Math.floor(count / 2) + 1;
    const conf = [
      `sentinel monitor ${name} ${master.host} ${master.port} ${quorum}`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 4000`,
      `sentinel parallel-syncs ${name} 1`,
    ].join('\n');
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < count; i++) sentinels.push(await this.start([], { sentinelConf: conf }));
    // Every sentinel knows the replica and the other sentinels before a test may kill the master.
    for (const s of sentinels) {
      await until(`sentinel ${s.port} sees the replica and its peers`, async () => {
        const c = probe(s.port);
        try {
          await c.connect();
          const m = (await c.call('SENTINEL', 'MASTER', name)) as string[];
          const field = (k: string) => Number(m[m.indexOf(k) + 1]);
          return field('num-slaves') >= 1 && field('num-other-sentinels') >= count - 1;
        } finally {
          c.disconnect();
        }
      });
    }
    return { master, replica, sentinels };
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
