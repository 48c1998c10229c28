import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

/**
 * All configuration comes from environment variables, validated once at start. A bad value stops ccard with a
 * message that names the variable. README.md lists every variable; keep the two in step.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const port = int(0, 65535);
const host = z.string().regex(/^[A-Za-z0-9.:_-]+$/, 'must be a host name or IP address');

/** "host:port,host:port" (IPv6 as [addr]:port) for REDIS_SENTINELS and REDIS_CLUSTER_NODES. */
const hostPortList = z
  .string()
  .transform((v) => v.split(',').map((e) => e.trim()).filter(Boolean))
  .pipe(
    z
      .array(z.string())
      .min(1, 'must name at least one host:port')
      .max(32)
      .refine((list) => list.every((e) => /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(e)), 'must be a comma-separated list of host:port'),
  )
  .transform((list) =>
    list.map((e) => {
      const i = e.lastIndexOf(':');
      return { host: e.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(e.slice(i + 1)) };
    }),
  )
  .refine((list) => list.every((n) => n.port >= 1 && n.port <= 65535), 'every port must be 1-65535');

const schema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .optional(),
  REDIS_SENTINELS: hostPortList.optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be the master name the sentinels monitor').optional(),
  REDIS_CLUSTER_NODES: hostPortList.optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  REDIS_TLS: z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1').default(false),
  REDIS_TLS_CA_FILE: z.string().min(1).optional(),
  CCARD_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  CCARD_DRAIN_DELAY_SECONDS: int(0, 300).default(0),
  CCARD_DATA_DIR: z.string().min(1).default('.data'),
  CCARD_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  CCARD_ESL_HOST: host.default('127.0.0.1'),
  CCARD_ESL_PORT: port.default(8040),
  CCARD_EVENT_FORMAT: z.enum(['json', 'plain']).default('json'),
  CCARD_ESL_COMMAND_TIMEOUT_MS: int(100, 600_000).default(5000),
  CCARD_HTTP_HOST: host.default('127.0.0.1'),
  CCARD_HTTP_PORT: port.default(8041),
  CCARD_SOUNDS_PREFIX: z.string().regex(/^\/[A-Za-z0-9_./-]*$/, 'must be an absolute path').default('/usr/share/ccard/sounds'),
  CCARD_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/).default('ccard:'),
  CCARD_MIN_CALL_SECONDS: int(1, 3600).default(10),
  CCARD_MAX_CALL_SECONDS: int(60, 86_400).default(14_400),
  CCARD_ORIGINATE_TIMEOUT: int(5, 300).default(60),
  CCARD_HOLD_MARGIN_SECONDS: int(30, 86_400).default(300),
  CCARD_WARNING_SECONDS: int(0, 600).default(60),
  CCARD_SLICE_SECONDS: int(0, 86_400).default(180),
  CCARD_PIN_LOCKOUT_FAILURES: int(1, 1000).default(5),
  CCARD_PIN_LOCKOUT_WINDOW: int(1, 86_400).default(600),
  CCARD_PIN_LOCKOUT_SECONDS: int(1, 604_800).default(900),
  CCARD_PIN_GUARD_FAILURES: int(1, 100_000).default(20),
  CCARD_PIN_TRUST_SECONDS: int(1, 31_536_000).default(2_592_000),
  CCARD_MAINTENANCE_INTERVAL: int(10, 86_400).default(300),
  CCARD_DB_POOL_CALLS: int(2, 1000).optional(),
  CCARD_DB_POOL_API: int(1, 1000).optional(),
  CCARD_DB_POOL_BULK: int(1, 1000).optional(),
  CCARD_BULK_QUEUE: int(0, 100_000).default(20),
  CCARD_BULK_QUEUE_WAIT_MS: int(0, 600_000).default(10_000),
  CCARD_EXPORT_STALL_MS: int(100, 3_600_000).default(60_000),
  CCARD_CARRIER_FAILURES: int(1, 10_000).default(5),
  CCARD_CARRIER_FAILURE_WINDOW: int(1, 86_400).default(60),
  CCARD_CARRIER_COOLDOWN: int(1, 86_400).default(120),
  CCARD_ROUTE_INDEX_MB: int(0, 65_536).default(256),
  CCARD_RESELLER: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a reseller name').optional(),
  CCARD_WORKERS: z
    .string()
    .regex(/^(\d+|auto)$/, 'must be a whole number or "auto"')
    .transform((v) => (v === 'auto' ? availableParallelism() : Number(v)))
    .pipe(z.number().int().min(1).max(64))
    .default(1),
  CCARD_CDR_SPOOL_DIR: z
    .string()
    .transform((v) => v.split(',').map((d) => d.trim()).filter((d) => d !== ''))
    .pipe(z.array(z.string().regex(/^[^\0]+$/)).max(20))
    .default([]),
  CCARD_CDR_SPOOL_SCAN_SECONDS: int(1, 3600).default(5),
  CCARD_JOURNAL_DIR: z.string().min(1).optional(),
  CCARD_CDR_CREDENTIALS: z.string().regex(/^[^:\s]+:\S{8,}$/, 'must be user:password (password at least 8 characters, no spaces)').optional(),
  CCARD_CDR_HOST: host.optional(),
  CCARD_CDR_PORT: port.optional(),
  CCARD_TRUST_PROXY: z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1').default(false),
  CCARD_COOKIE_SECURE: z.enum(['auto', 'always', 'never'], { error: 'must be auto, always or never' }).default('auto'),
  CCARD_SESSION_IDLE_SECONDS: int(60, 604_800).default(3600),
  CCARD_SESSION_MAX_SECONDS: int(300, 2_592_000).default(43_200),
  CCARD_XMLCURL_ALLOW: z.string().regex(/^(\*|[0-9A-Fa-f.:]+(,[0-9A-Fa-f.:]+)*)$/, 'must be "*" or a comma-separated list of IP addresses').default('127.0.0.1,::1'),
  CCARD_XMLCURL_USER: z.string().regex(/^[^:\s]{1,64}$/, 'must be 1 to 64 characters, no ":" or spaces').optional(),
  CCARD_XMLCURL_PASSWORD: z.string().regex(/^\S{8,128}$/, 'must be 8 to 128 characters, no spaces').optional(),
  CCARD_DIALPLAN_CONTEXTS: z.string().regex(/^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/, 'must be a comma-separated list of context names').default('public'),
  CCARD_DIALPLAN_SOCKETS: z.string().regex(/^[A-Za-z0-9.:_-]+:\d+(,[A-Za-z0-9.:_-]+:\d+)*$/, 'must be a comma-separated list of host:port').optional(),
  CCARD_DEVICE_CONTEXT: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a context name').default('ccard_devices'),
  CCARD_DEVICE_DID: z.string().regex(/^\+?[0-9]{3,20}$/, 'must be an access number (3 to 20 digits, optionally after +)').optional(),
  CCARD_SIP_DOMAIN: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, 'must be a SIP domain (host name or IP address)').default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  CCARD_LOG_FLUSH_MS: int(0, 60_000).default(1000),
});

export type Env = z.infer<typeof schema>;

/** Every environment variable ccard reads (README.md's configuration tables list each one). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

/** The secret used when none is configured: only acceptable for the embedded demo database. */
export const DEMO_SECRET = 'ccard-embedded-demo-secret-not-for-production';

/** TLS to Redis: the servers' certificates are verified against `ca` (PEM) when given, else Node's trusted CAs. */
export interface RedisTls {
  ca?: string;
}

/**
 * Where the live store and the PIN lockouts live: one Redis, a Sentinel-managed master, or a Redis Cluster. With
 * `tls`, every connection is TLS: the data nodes, and the sentinels too.
 */
export type RedisTarget =
  | { mode: 'single'; url: string; tls?: RedisTls }
  | { mode: 'sentinel'; sentinels: Array<{ host: string; port: number }>; name: string; password?: string; sentinelPassword?: string; tls?: RedisTls }
  | { mode: 'cluster'; nodes: Array<{ host: string; port: number }>; password?: string; tls?: RedisTls };

export interface Config extends Env {
  /** REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES; undefined: live balances in this process. */
  redis: RedisTarget | undefined;
  /** True when no DATABASE_URL is set: ccard runs PGlite in CCARD_DATA_DIR. */
  embedded: boolean;
  secret: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset, as most shells and compose files produce them.
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const cfg = parsed.data;
  const embedded = !cfg.DATABASE_URL;
  if (!embedded && !cfg.CCARD_SECRET) {
    throw new ConfigError(
      'invalid configuration:\n  CCARD_SECRET: required when DATABASE_URL is set (it protects the card PINs; at least 16 characters)',
    );
  }
  if (cfg.CCARD_MIN_CALL_SECONDS >= cfg.CCARD_MAX_CALL_SECONDS) {
    throw new ConfigError('invalid configuration:\n  CCARD_MIN_CALL_SECONDS: must be below CCARD_MAX_CALL_SECONDS');
  }
  const redis = redisTarget(cfg);
  if (cfg.CCARD_WORKERS > 1 && (embedded || !redis)) {
    throw new ConfigError(
      'invalid configuration:\n  CCARD_WORKERS: more than one worker needs DATABASE_URL and REDIS_URL (or REDIS_SENTINELS / REDIS_CLUSTER_NODES; the embedded database and the in-process live store belong to one process)',
    );
  }
  if (!cfg.CCARD_XMLCURL_USER !== !cfg.CCARD_XMLCURL_PASSWORD) {
    throw new ConfigError('invalid configuration:\n  CCARD_XMLCURL_USER: set both CCARD_XMLCURL_USER and CCARD_XMLCURL_PASSWORD, or neither');
  }
  return { ...cfg, embedded, secret: cfg.CCARD_SECRET ?? DEMO_SECRET, redis };
}

function redisTarget(cfg: Env): RedisTarget | undefined {
  const given = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((k) => cfg[k] !== undefined);
  if (given.length > 1) {
    throw new ConfigError(`invalid configuration:\n  ${given[1]}: set only one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (${given.join(' and ')} are set)`);
  }
  if (cfg.REDIS_SENTINELS && !cfg.REDIS_SENTINEL_NAME) {
    throw new ConfigError('invalid configuration:\n  REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master name the sentinels monitor)');
  }
  if (cfg.REDIS_SENTINEL_NAME && !cfg.REDIS_SENTINELS) {
    throw new ConfigError('invalid configuration:\n  REDIS_SENTINELS: required with REDIS_SENTINEL_NAME (the sentinels, host:port,...)');
  }
  const password = cfg.REDIS_PASSWORD !== undefined ? { password: cfg.REDIS_PASSWORD } : {};
  const tls = redisTls(cfg);
  if (cfg.REDIS_SENTINELS) {
    return {
      mode: 'sentinel',
      sentinels: cfg.REDIS_SENTINELS,
      name: cfg.REDIS_SENTINEL_NAME!,
      ...password,
      ...(cfg.REDIS_SENTINEL_PASSWORD !== undefined && { sentinelPassword: cfg.REDIS_SENTINEL_PASSWORD }),
      ...tls,
    };
  }
  if (cfg.REDIS_CLUSTER_NODES) return { mode: 'cluster', nodes: cfg.REDIS_CLUSTER_NODES, ...password, ...tls };
  if (cfg.REDIS_URL) return { mode: 'single', url: cfg.REDIS_URL, ...tls };
  return undefined;
}

/** REDIS_TLS (or a rediss:// REDIS_URL) and REDIS_TLS_CA_FILE, read once at start. */
function redisTls(cfg: Env): { tls?: RedisTls } {
  const on = cfg.REDIS_TLS || cfg.REDIS_URL?.startsWith('rediss://') === true;
  const caFile = cfg.REDIS_TLS_CA_FILE;
  if (!on) {
    if (caFile !== undefined) {
      throw new ConfigError('invalid configuration:\n  REDIS_TLS_CA_FILE: only used with REDIS_TLS=true (or a rediss:// REDIS_URL)');
    }
    return {};
  }
  if (caFile === undefined) return { tls: {} };
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  REDIS_TLS_CA_FILE: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(`invalid configuration:\n  REDIS_TLS_CA_FILE: ${caFile} holds no PEM certificate`);
  }
  return { tls: { ca } };
}
