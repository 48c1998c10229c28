import type { Pool } from 'pg';
import type { LiveBalanceStore } from '../live/live-balance.ts';
import type { RateRule } from './rating.ts';

// What reserving and settling a call need: the database, the live store, the rates, the limits and a logger.

/** Finds the rate for a number in a table (src/store/rates.ts implements it over an in-memory prefix index). */
export interface RateLookup {
  ruleFor(
    rateTableId: string,
    number: string,
    taxPpm: number,
    now: Date,
  ): { rate: { id: string; prefix: string; destination: string }; rule: RateRule } | undefined;
}

export interface BillingConfig {
  /** A call that could not last this long is refused ('insufficient'). */
  minCallSeconds: number;
  /** The longest call ever allowed (the cap when the balance is large). */
  maxCallSeconds: number;
  /** How long the carrier may ring: part of how long a hold lives. */
  originateTimeoutSec: number;
  /** Extra time a hold lives after the cap, for the CDR to arrive. */
  holdMarginSec: number;
  /**
   * Reservations in slices (src/billing/slices.ts): a call holds what this many seconds cost (never less than
   * minCallSeconds) and grows its hold while it runs. 0 or unset: one hold for the longest affordable call.
   */
  sliceSeconds?: number;
}

type LogFn = (obj: object, msg?: string) => void;
export interface Log {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
export const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };

export interface SettleDeps {
  pool: Pool;
  live: LiveBalanceStore;
  logger?: Log;
}

export interface BillingDeps extends SettleDeps {
  rates: RateLookup;
  config: BillingConfig;
}
