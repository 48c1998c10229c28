import { Counter, Gauge } from 'prom-client';
import { carrierCooldownTotals, carrierFailureTotals } from '../billing/carrier-health.ts';
import { pinGuardCounters } from '../app/pin-guard.ts';
import { bulkGateTotals, bulkRefusalTotals, type BulkRefusal } from '../store/bulk.ts';
import { LABELS, registers } from './registry.ts';

/**
 * Counters kept by the carrier-health tracker, the PIN guard and the bulk gate (plain numbers in those modules, so they stay free
 * of prom-client), read at scrape time. Summed over the workers of `ccard serve` (each process counts its own).
 *
 * Carrier names are operator-defined, so the `carrier` label is bounded: the first CARRIER_LABELS names a process
 * sees keep their own label, every later one is counted under "other". A name never moves between series, so each
 * series only ever grows (a counter), and a runaway list of carriers cannot blow up the scrape.
 */
export const CARRIER_LABELS = 20;

const carrierLabel = new Map<string, string>();
function labelOf(name: string): string {
  let l = carrierLabel.get(name);
  if (l === undefined) {
    l = carrierLabel.size < CARRIER_LABELS && /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : 'other';
    carrierLabel.set(name, l);
  }
  return l;
}

/** Per-label sums of a per-carrier total. */
function byLabel(totals: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, n] of totals) {
    const l = labelOf(name);
    out.set(l, (out.get(l) ?? 0) + n);
  }
  return out;
}

/** Sets a counter to absolute values read from elsewhere (prom-client counters only go up by inc). */
function setCounter(c: Counter<string>, values: Map<string, number> | number, label?: string): void {
  c.reset();
  if (typeof values === 'number') c.inc(values);
  else for (const [l, n] of values) c.inc({ [label!]: l }, n);
}

export const carrierFailuresTotal = new Counter({
  name: 'ccard_carrier_failures_total',
  help: 'Congestion-class carrier failures (the ones that count toward a cool-down), by carrier (first 20 names; later ones "other")',
  labelNames: ['carrier'],
  registers,
  collect() {
    setCounter(this, byLabel(carrierFailureTotals()), 'carrier');
  },
});

export const carrierCooldownsTotal = new Counter({
  name: 'ccard_carrier_cooldowns_total',
  help: 'Carrier cool-downs started (routing skips the carrier for CCARD_CARRIER_COOLDOWN), by carrier (first 20 names; later ones "other")',
  labelNames: ['carrier'],
  registers,
  collect() {
    setCounter(this, byLabel(carrierCooldownTotals()), 'carrier');
  },
});

export const pinGuardTrustRevokedTotal = new Counter({
  name: 'ccard_pin_guard_trust_revoked_total',
  help: 'Trusted caller IDs (a right PIN earlier) that reached the wrong-PIN or wrong-voucher limit and lost their trust',
  registers,
  collect() {
    setCounter(this, pinGuardCounters().trustRevoked);
  },
});

export const pinGuardRefusedTotal = new Counter({
  name: 'ccard_pin_guard_refused_total',
  help: 'Calls or PIN tries refused by the PIN guard (a locked caller ID, or an access number guarding against untrusted callers)',
  registers,
  collect() {
    setCounter(this, pinGuardCounters().refused);
  },
});

// The gate's reasons are the label's fixed list: this fails to compile if LABELS.bulkRefusal names one the gate lacks.
const BULK_REASONS: readonly BulkRefusal[] = LABELS.bulkRefusal;

export const bulkRefusedTotal = new Counter({
  name: 'ccard_bulk_refused_total',
  help: 'Exports, imports and reports turned away by the bulk gate (HTTP 503 + Retry-After), by reason: queue_full, wait_timeout, client_gone, shutdown',
  labelNames: ['reason'],
  registers,
  collect() {
    const totals = bulkRefusalTotals();
    setCounter(this, new Map(BULK_REASONS.map((r) => [r, totals.get(r) ?? 0])), 'reason');
  },
});

export const bulkJobs = new Gauge({
  name: 'ccard_bulk_jobs',
  help: 'Exports, imports and reports running and waiting at the bulk gate now, by state',
  labelNames: ['state'],
  registers,
  collect() {
    const now = bulkGateTotals();
    this.set({ state: 'running' }, now.running);
    this.set({ state: 'waiting' }, now.waiting);
  },
});
