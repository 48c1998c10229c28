/** Where the tests find PostgreSQL and Redis: DATABASE_URL / REDIS_URL, else the local defaults. */
export const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

export function pgAdminUrl(): string {
  const url = new URL(process.env.DATABASE_URL || DEFAULT_PG);
  url.pathname = '/postgres';
  return url.toString();
}

export function pgUrlFor(database: string): string {
  const url = new URL(process.env.DATABASE_URL || DEFAULT_PG);
  url.pathname = `/${database}`;
  return url.toString();
}

export function redisUrl(): string {
  return process.env.REDIS_URL || DEFAULT_REDIS;
}
