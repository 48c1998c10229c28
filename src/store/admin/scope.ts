import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who an operator action runs for. The operator (no scope) sees everything; a reseller sees only its own series,
 * their cards and those cards' CDRs. The API sets it once per request from the request's principal
 * (src/api/principal.ts: an API key today, a console login later); the store's queries read it through
 * resellerScope(), so no handler passes it and none can forget it.
 */
export interface Scope {
  /** The reseller the request acts for; null: the operator. */
  resellerId: string | null;
}

const storage = new AsyncLocalStorage<Scope>();

/** Runs fn (and everything it starts) under a scope. */
export function runScoped<T>(scope: Scope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The reseller the current request acts for, or null for the operator (the CLI, an operator key). */
export function resellerScope(): string | null {
  return storage.getStore()?.resellerId ?? null;
}

type Queryable = { query: (text: string, values?: unknown[]) => Promise<{ rowCount: number | null }> };

/**
 * The first named card or series that is not the reseller's, as the message a missing one gets ("unknown card …",
 * "unknown series …"), or undefined when all are its own. The API guard and the scoped CLI both ask this.
 */
export async function foreignObject(db: Queryable, resellerId: string, serials: string[], seriesNumbers: string[]): Promise<string | undefined> {
  for (const raw of serials) {
    const serial = raw.trim();
    const r = await db.query('SELECT 1 FROM cards c JOIN series s ON s.id = c.series_id WHERE c.serial = $1 AND s.reseller_id = $2', [serial, resellerId]);
    if (!r.rowCount) return `unknown card ${serial}`;
  }
  for (const raw of seriesNumbers) {
    const number = raw.trim();
    const r = await db.query('SELECT 1 FROM series WHERE series_number = $1 AND reseller_id = $2', [number, resellerId]);
    if (!r.rowCount) return `unknown series ${number}`;
  }
  return undefined;
}
