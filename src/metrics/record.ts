import {
  backendErrorsTotal,
  bounded,
  callAttemptsTotal,
  callsInProgress,
  callsTotal,
  cdrsIgnoredTotal,
  cdrsTotal,
  debitSeconds,
  pinLockoutsTotal,
  refusalsTotal,
  reservationSeconds,
} from './registry.ts';

/** One-call helpers for the instrumented code paths: each records and passes its value through unchanged. */

interface OutcomeLike {
  ended: string;
  calls: ReadonlyArray<{ outcome: string }>;
}

/** Runs one call's flow counting it in progress, then records how it ended and each carrier attempt's outcome. */
export async function trackCall<T extends OutcomeLike>(flow: () => Promise<T>): Promise<T> {
  callsInProgress.inc();
  try {
    const outcome = await flow();
    callsTotal.inc({ outcome: bounded('outcome', outcome.ended) });
    for (const a of outcome.calls) callAttemptsTotal.inc({ outcome: bounded('attempt', a.outcome) });
    return outcome;
  } finally {
    callsInProgress.dec();
  }
}

/** Counts a refused authorization or reservation ({ ok: false, reason }); returns the result as it was. */
export function refused<T extends { ok: boolean }>(result: T): T {
  if (!result.ok) refusalsTotal.inc({ reason: bounded('refusal', (result as { reason?: string }).reason) });
  return result;
}

export function countRefusal(reason: 'locked_out' | 'wrong_pin'): void {
  refusalsTotal.inc({ reason });
}

/** Times a reservation. */
export function timeReservation<T>(op: () => Promise<T>): Promise<T> {
  const stop = reservationSeconds.startTimer();
  return op().finally(() => stop());
}

/**
 * Ends a call from its CDR (finishCall's body): times debits by source and counts what the CDR did. A CDR whose
 * call is unknown is counted by the caller that took it in as ignored.
 */
export async function observeFinish<T extends { status: string }>(
  facts: { source: string; answered: boolean },
  op: () => Promise<T>,
): Promise<T> {
  const source = bounded('cdrSource', facts.source);
  const stop = facts.answered ? debitSeconds.startTimer({ source }) : undefined;
  const out = await op();
  stop?.();
  if (out.status !== 'unknown_call') cdrsTotal.inc({ source, result: bounded('cdrResult', out.status) });
  return out;
}

/** Counts an intake result (IngestResult of src/cdr/json-cdr.ts) that billed nothing; returns it unchanged. */
export function countIgnoredCdr<T extends { status: string }>(source: 'json_cdr' | 'spool' | 'import', result: T): T {
  if (result.status === 'ignored') cdrsIgnoredTotal.inc({ source, reason: 'not_a_ccard_leg' });
  else if (result.status === 'invalid') cdrsIgnoredTotal.inc({ source, reason: 'invalid' });
  return result;
}

const REDIS_RE = /redis|Connection is closed|Stream isn't writeable|enableOfflineQueue|max retries per request|CLUSTERDOWN|MOVED|READONLY|sentinel/i;

/** Counts one failed PostgreSQL or Redis operation (err already known to mean "unreachable or too slow"). */
export function countBackendError(err: unknown, backend?: 'postgres' | 'redis'): void {
  backendErrorsTotal.inc({ backend: backend ?? backendOf(err) });
}

export function backendOf(err: unknown, depth = 0): 'postgres' | 'redis' | 'unknown' {
  if (!(err instanceof Error) || depth > 4) return 'unknown';
  const code = (err as { code?: unknown }).code;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ReplyError' || REDIS_RE.test(err.message)) return 'redis';
  if (typeof code === 'string' && /^(08|57P|53)/.test(code)) return 'postgres';
  if (/Connection terminated|trying to connect|Client has encountered|Client was closed|pool after calling end/i.test(err.message)) {
    return 'postgres';
  }
  const inner = backendOf((err as { cause?: unknown }).cause, depth + 1);
  if (inner !== 'unknown') return inner;
  // A refused TCP connection names its port: 5432 is PostgreSQL's, 6379 (and 26379, sentinel) Redis'.
  const port = (err as { port?: unknown }).port;
  if (port === 5432) return 'postgres';
  if (port === 6379 || port === 26379) return 'redis';
  return 'unknown';
}

/** Counts a lockout that has just started for a lockout subject ("cli:…" or "did:…"; only the scope is kept). */
export function countLockout(subject: string): void {
  pinLockoutsTotal.inc({ scope: bounded('lockoutScope', subject.split(':', 1)[0]) });
}
