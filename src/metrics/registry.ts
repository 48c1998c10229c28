import cluster from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The one Prometheus registry of a ccard process and every metric in it. Code paths record with one call on a
 * named object below (or a helper of ./record.ts); nothing else creates metrics.
 *
 * Labels are bounded: every label value is one of a fixed list (anything else becomes "other"), never a card,
 * serial, PIN, caller ID, number or call id. Money in a metric is an integer count of micro-units; Prometheus
 * stores a double, exact for integers below 2^53 (9 billion currency units): read it, never compute money with it.
 */
export const registry = new Registry();

// A worker of `ccard serve` answers the supervisor's metric requests from this registry (./cluster.ts); creating
// an AggregatorRegistry is what installs prom-client's answering listener in a worker.
if (cluster.isWorker) {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
}

collectDefaultMetrics({ register: registry, prefix: 'ccard_' });

export const registers = [registry];

/** The only label values a metric accepts; others are recorded as "other". */
export const LABELS = {
  outcome: [
    'completed',
    'caller_hangup',
    'number_not_in_service',
    'locked_out',
    'card_unknown',
    'too_many_attempts',
    'card_disabled',
    'card_expired',
    'no_balance',
    'destination_tries_exhausted',
    'too_many_calls',
    'service_unavailable',
    'error',
  ],
  attempt: ['answered', 'busy', 'no_answer', 'invalid_number', 'congestion', 'failed', 'not_bridged'],
  refusal: ['unknown', 'disabled', 'expired', 'no_balance', 'no_rate', 'insufficient', 'too_many_calls', 'locked_out', 'wrong_pin'],
  cdrSource: ['socket', 'json_cdr', 'spool', 'import'],
  cdrResult: ['debited', 'duplicate', 'released'],
  ignoredReason: ['not_a_ccard_leg', 'invalid'],
  bulkRefusal: ['queue_full', 'wait_timeout', 'client_gone', 'shutdown'],
  bulkState: ['running', 'waiting'],
  backend: ['postgres', 'redis', 'unknown'],
  lockoutScope: ['cli', 'did'],
} as const;

export type LabelSet = keyof typeof LABELS;

export function bounded<K extends LabelSet>(set: K, value: string | undefined): string {
  return value !== undefined && (LABELS[set] as readonly string[]).includes(value) ? value : 'other';
}

export const callsInProgress = new Gauge({
  name: 'ccard_calls_in_progress',
  help: 'Calls whose flow is running in this process (summed over workers)',
  registers,
});

export const callsTotal = new Counter({
  name: 'ccard_calls_total',
  help: 'Finished calls by how the flow ended them',
  labelNames: ['outcome'],
  registers,
});

export const callAttemptsTotal = new Counter({
  name: 'ccard_call_attempts_total',
  help: 'Carrier attempts (one reservation each) by bridge outcome',
  labelNames: ['outcome'],
  registers,
});

export const refusalsTotal = new Counter({
  name: 'ccard_authorizations_refused_total',
  help: 'Callers or destinations refused, by reason (card checks, reservation, PIN lockout, wrong PIN)',
  labelNames: ['reason'],
  registers,
});

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const reservationSeconds = new Histogram({
  name: 'ccard_reservation_duration_seconds',
  help: 'Time to rate and reserve a call (live-store hold and calls row)',
  buckets: LATENCY_BUCKETS,
  registers,
});

export const debitSeconds = new Histogram({
  name: 'ccard_debit_duration_seconds',
  help: 'Time to debit an answered call from its CDR, by CDR source',
  labelNames: ['source'],
  buckets: LATENCY_BUCKETS,
  registers,
});

export const cdrsTotal = new Counter({
  name: 'ccard_cdrs_total',
  help: 'Carrier-leg CDRs of ccard calls, by source and what they did (duplicate: already billed)',
  labelNames: ['source', 'result'],
  registers,
});

export const cdrsIgnoredTotal = new Counter({
  name: 'ccard_cdrs_ignored_total',
  help: 'CDRs that bill nothing: legs ccard did not reserve (IVR, caller, unknown calls) or unreadable documents',
  labelNames: ['source', 'reason'],
  registers,
});

export const eslProtocolErrorsTotal = new Counter({
  name: 'ccard_esl_protocol_errors_total',
  help: 'Event-socket connections dropped for a malformed or oversized frame',
  registers,
});

export const pinLockoutsTotal = new Counter({
  name: 'ccard_pin_lockouts_total',
  help: 'PIN lockouts started (too many wrong PINs from one caller ID, or on one access number)',
  labelNames: ['scope'],
  registers,
});

export const backendErrorsTotal = new Counter({
  name: 'ccard_backend_errors_total',
  help: 'PostgreSQL or Redis unreachable or too slow (each failed operation; unknown = timed out)',
  labelNames: ['backend'],
  registers,
});

// The gauges read at scrape time (held amount, unbilled calls, readiness) are in ./sources.ts.

// Series that exist from the start, so rate() and dashboards see a 0 rather than nothing.
for (const o of LABELS.outcome) callsTotal.inc({ outcome: o }, 0);
for (const r of LABELS.refusal) refusalsTotal.inc({ reason: r }, 0);
for (const b of LABELS.backend) backendErrorsTotal.inc({ backend: b }, 0);
for (const s of LABELS.lockoutScope) pinLockoutsTotal.inc({ scope: s }, 0);
for (const s of LABELS.cdrSource) for (const r of LABELS.cdrResult) cdrsTotal.inc({ source: s, result: r }, 0);
for (const s of LABELS.cdrSource) for (const r of LABELS.ignoredReason) cdrsIgnoredTotal.inc({ source: s, reason: r }, 0);
