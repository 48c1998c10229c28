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
