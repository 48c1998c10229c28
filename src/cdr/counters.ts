/**
 * Plain counters of the CDR intake, for the metrics endpoint to export (prom-client gauges/counters read these;
 * no labels beyond the source). Process-local, since start.
 */
export type IntakeSource = 'json_cdr' | 'spool' | 'import';

export const cdrCounters = {
  /** Documents received, by how they came. */
  received: { json_cdr: 0, spool: 0, import: 0 } as Record<IntakeSource, number>,
  /** Documents of legs ccard did not reserve (the caller's and IVR legs, unknown calls): ignored, counted. */
  notOurs: { json_cdr: 0, spool: 0, import: 0 } as Record<IntakeSource, number>,
  /** Documents refused as malformed. */
  invalid: { json_cdr: 0, spool: 0, import: 0 } as Record<IntakeSource, number>,
  /** Call endings written to the debit journal because the database was unavailable. */
  journaled: 0,
};

/** Counts one ingest result. */
export function countIngest(source: IntakeSource, status: string): void {
  cdrCounters.received[source]++;
  if (status === 'ignored') cdrCounters.notOurs[source]++;
  else if (status === 'invalid') cdrCounters.invalid[source]++;
}
