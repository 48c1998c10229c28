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

const schema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .optional(),
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
  CCARD_PIN_LOCKOUT_FAILURES: int(1, 1000).default(5),
  CCARD_PIN_LOCKOUT_WINDOW: int(1, 86_400).default(600),
  CCARD_PIN_LOCKOUT_SECONDS: int(1, 604_800).default(900),
  CCARD_MAINTENANCE_INTERVAL: int(10, 86_400).default(300),
  CCARD_CARRIER_FAILURES: int(1, 10_000).default(5),
  CCARD_CARRIER_FAILURE_WINDOW: int(1, 86_400).default(60),
  CCARD_CARRIER_COOLDOWN: int(1, 86_400).default(120),
  CCARD_RESELLER: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a reseller name').optional(),
  CCARD_WORKERS: z
    .string()
    .regex(/^(\d+|auto)$/, 'must be a whole number or "auto"')
    .transform((v) => (v === 'auto' ? availableParallelism() : Number(v)))
    .pipe(z.number().int().min(1).max(64))
    .default(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof schema>;

/** The secret used when none is configured: only acceptable for the embedded demo database. */
export const DEMO_SECRET = 'ccard-embedded-demo-secret-not-for-production';

export interface Config extends Env {
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
  if (cfg.CCARD_WORKERS > 1 && (embedded || !cfg.REDIS_URL)) {
    throw new ConfigError(
      'invalid configuration:\n  CCARD_WORKERS: more than one worker needs DATABASE_URL and REDIS_URL (the embedded database and the in-process live store belong to one process)',
    );
  }
  return { ...cfg, embedded, secret: cfg.CCARD_SECRET ?? DEMO_SECRET };
}
