import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** A one-shot connection for probing a server (errors surface from its commands, not as events); TLS with `ca`. */
function probe(port: number, ca?: string): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 500,
    ...(ca !== undefined && { tls: { ca } }),
  });
  c.on('error', () => {});
  return c;
}

async function ping(port: number, ca?: string): Promise<string> {
  const c = probe(port, ca);
  try {
    await c.connect();
    return await c.ping();
  } finally {
    c.disconnect();
  }
}

/** A test CA and a certificate for 127.0.0.1 / localhost signed by it (openssl, EC P-256, valid 2 days). */
export interface TestCerts {
  caFile: string;
  ca: string;
  certFile: string;
  keyFile: string;
}

function makeCerts(dir: string): TestCerts {
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=ccard test CA']);
  ssl(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('san.ext')]);
  return { caFile: f('ca.pem'), ca: readFileSync(f('ca.pem'), 'utf8'), certFile: f('server.pem'), keyFile: f('server.key') };
}

export class RedisFarm {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'ccard-redis-'));
  private readonly nodes: RedisNode[] = [];
  /** With `{ tls: true }` every server (and sentinel) listens with TLS only, on a certificate from `certs`' CA. */
  readonly certs: TestCerts | undefined;

  constructor(opts: { tls?: boolean } = {}) {
    this.certs = opts.tls ? makeCerts(this.dir) : undefined;
  }

  /** The redis-server / sentinel settings of TLS mode, as name/value pairs. */
  private tlsSettings(port: number): Array<[string, string]> {
    const c = this.certs!;
    return [
      ['port', '0'],
      ['tls-port', String(port)],
      ['tls-cert-file', c.certFile],
      ['tls-key-file', c.keyFile],
      ['tls-ca-cert-file', c.caFile],
      ['tls-auth-clients', 'no'],
      ['tls-replication', 'yes'],
    ];
  }

  /** One redis-server (or a sentinel with `sentinel: true` and a config file) with the given extra arguments. */
  async start(args: string[] = [], opts: { sentinelConf?: string } = {}): Promise<RedisNode> {
    const port = await freePort();
    const argv: string[] = [];
    if (opts.sentinelConf !== undefined) {
      const conf = path.join(this.dir, `sentinel-${port}.conf`);
      const listen = this.certs ? this.tlsSettings(port).map(([k, v]) => `${k} ${v}`).join('\n') : `port ${port}`;
      writeFileSync(conf, `${listen}\nbind 127.0.0.1\ndir ${this.dir}\n${opts.sentinelConf}\n`);
      argv.push(conf, '--sentinel');
    } else {
      if (this.certs) {
        for (const [k, v] of this.tlsSettings(port)) argv.push(`--${k}`, v);
        argv.push('--tls-cluster', 'yes');
      } else {
        argv.push('--port', String(port));
      }
      argv.push('--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir);
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
    await until(`redis-server on ${port}`, async () => (await ping(port, this.certs?.ca)) === 'PONG');
    return node;
  }

  /** A Redis Cluster of `masters` masters (no replicas), every slot assigned and the cluster state ok. */
  async cluster(masters = 3): Promise<RedisNode[]> {
    const nodes: RedisNode[] = [];
    for (let i = 0; i < masters; i++) {
      nodes.push(await this.start(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}-${Date.now()}.conf`, '--cluster-node-timeout', '2000']));
    }
    const tls = this.certs ? ['--tls', '--cacert', this.certs.caFile] : [];
    await run('redis-cli', [...tls, '--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 20_000,
    });
    for (const n of nodes) {
      await until(`cluster state ok on ${n.port}`, async () => {
        const c = probe(n.port, this.certs?.ca);
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
      const c = probe(replica.port, this.certs?.ca);
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
        const c = probe(s.port, this.certs?.ca);
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
