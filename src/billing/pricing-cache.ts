import type { RateSnapshot } from '../store/calls.ts';

/** What pricing a call's CDR needs from its reservation. Written once with the calls row and never changed. */
export interface CallPricing {
  rate: RateSnapshot;
  maxSeconds: number;
  /** The cost algorithm of the reservation (calls.cost_algorithm): the debit uses it, not today's. */
  costAlgorithm: string;
}

/*
 * The pricing of calls this process reserved, so that their debit is ONE statement with no read of the calls row
 * first. Safe to cache: calls.rate and calls.max_seconds never change after the insert. Only a hint: a miss (a
 * CDR for a call reserved by another process, or after a restart) reads the row. Bounded (oldest dropped first);
 * an entry goes when its call is debited or released.
 */
const PRICING_CACHE_MAX = 20_000;
const pricingCache = new Map<string, CallPricing>();
/** What this process knows of a call's pricing (undefined: read the calls row). */
export function cachedPricing(callId: string): CallPricing | undefined {
  return pricingCache.get(callId.toLowerCase());
}
export function rememberPricing(callId: string, p: CallPricing): void {
  if (pricingCache.size >= PRICING_CACHE_MAX) {
    const oldest = pricingCache.keys().next();
    if (!oldest.done) pricingCache.delete(oldest.value);
  }
  pricingCache.set(callId.toLowerCase(), p);
}
/** The call is debited or released: its pricing is not needed any more. */
export function forgetPricing(callId: string): void {
  pricingCache.delete(callId.toLowerCase());
}
