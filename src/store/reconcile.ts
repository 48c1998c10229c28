/**
 * Unbilled calls and reconciliation: the calls whose hold ran out without a CDR, and a comparison of calls, CDRs and
 * the ledger over a period that lists every difference (what `ccard calls unbilled` / `ccard calls reconcile`
 * print, and what the metrics' unbilled gauge reads).
 */
import type { Micros } from '../money/money.ts';
import type { Queryable } from './cards.ts';
import { amountJson } from './admin/format.ts';

export interface UnbilledCall {
  callId: string;
  serial: string;
  destination: string;
  did: string | null;
  callerId: string | null;
  reserved: Micros;
  maxSeconds: number;
  createdAt: Date;
  holdUntil: Date;
}

/** How many calls are unbilled (hold ran out, no CDR yet). For the metrics gauge. */
export async function countUnbilled(db: Queryable): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM calls WHERE status = 'unbilled'`);
  return Number(r.rows[0]!.n);
}

/** Unbilled calls, oldest first. */
export async function listUnbilled(db: Queryable, opts: { limit?: number; offset?: number } = {}): Promise<UnbilledCall[]> {
  const r = await db.query<{
    call_id: string;
    serial: string;
    destination: string;
    did: string | null;
    caller_id: string | null;
    reserved_micros: bigint;
    max_seconds: number;
    created_at: Date;
    hold_until: Date;
  }>(
    `SELECT k.call_id::text AS call_id, c.serial, k.destination, k.did, k.caller_id, k.reserved_micros, k.max_seconds,
            k.created_at, k.hold_until
       FROM calls k JOIN cards c ON c.id = k.card_id
      WHERE k.status = 'unbilled'
      ORDER BY k.created_at, k.call_id
      LIMIT $1 OFFSET $2`,
    [opts.limit ?? 1000, opts.offset ?? 0],
  );
  return r.rows.map((x) => ({
    callId: x.call_id,
    serial: x.serial,
    destination: x.destination,
    did: x.did,
    callerId: x.caller_id,
    reserved: x.reserved_micros,
    maxSeconds: x.max_seconds,
    createdAt: x.created_at,
    holdUntil: x.hold_until,
  }));
}

/**
 * The operator closes an unbilled call known never to have been talked (e.g. the carrier's records show no such
 * call): it is marked released and stops counting as unbilled. Only an unbilled call changes. A CDR arriving later
 * still bills it (the CDR is what FreeSWITCH measured). Returns the ids that changed.
 */
export async function releaseUnbilled(db: Queryable, callIds: string[]): Promise<string[]> {
  const r = await db.query<{ call_id: string }>(
    `UPDATE calls SET status = 'released', settled_at = now()
      WHERE call_id = ANY($1::uuid[]) AND status = 'unbilled' RETURNING call_id::text AS call_id`,
    [callIds],
  );
  return r.rows.map((x) => x.call_id);
}

export type DifferenceKind =
  /** The hold ran out and no CDR arrived. */
  | 'unbilled'
  /** Still reserved past its hold's deadline (the sweep has not run yet). */
  | 'overdue'
  /** Marked settled, but no CDR recorded. */
  | 'settled_without_cdr'
  /** A CDR is recorded but the call is not marked settled. */
  | 'cdr_call_not_settled'
  /** A CDR that cost something collected but no ledger debit for it. */
  | 'cdr_without_debit'
  /** The ledger debit differs from what the CDR says was collected. */
  | 'debit_differs'
  /** A ledger call debit with no CDR. */
  | 'debit_without_cdr'
  /** More than one ledger debit for one call. */
  | 'double_debit'
  /** A card of these calls whose balance is not the sum of its ledger. */
  | 'balance_differs';

export interface Difference {
  kind: DifferenceKind;
  callId: string | null;
  serial: string;
  detail: string;
}

export interface Reconciliation {
  from: Date;
  to: Date;
  calls: number;
  cdrs: number;
  /** What the CDRs of the period cost, what was collected (cost - uncollected), and what the ledger debited. */
  cost: Micros;
  collected: Micros;
  debited: Micros;
  uncollected: Micros;
  differences: Difference[];
}

/**
 * Compares calls (created in [from, to)), their CDRs and their ledger debits, and the balances of their cards.
 * A clean period has no differences and collected == debited.
 */
export async function reconcile(db: Queryable, from: Date, to: Date): Promise<Reconciliation> {
  const range = [from, to];
  const totals = await db.query<{ calls: string; cdrs: string; cost: bigint | null; uncollected: bigint | null; debited: bigint | null }>(
    `WITH k AS (SELECT call_id, card_id FROM calls WHERE created_at >= $1 AND created_at < $2)
     SELECT (SELECT count(*) FROM k) AS calls,
            (SELECT count(*) FROM cdrs d JOIN k USING (call_id)) AS cdrs,
            (SELECT sum(d.cost_micros) FROM cdrs d JOIN k USING (call_id))::bigint AS cost,
            (SELECT sum(d.uncollected_micros) FROM cdrs d JOIN k USING (call_id))::bigint AS uncollected,
            (SELECT -sum(l.amount_micros) FROM ledger l JOIN k ON l.card_id = k.card_id AND l.reason = 'call' AND l.ref = k.call_id::text)::bigint AS debited`,
    range,
  );
  const t = totals.rows[0]!;
  const diffs = await db.query<{ kind: DifferenceKind; call_id: string | null; serial: string; detail: string }>(
    `WITH k AS (
       SELECT k.*, c.serial FROM calls k JOIN cards c ON c.id = k.card_id WHERE k.created_at >= $1 AND k.created_at < $2
     ), deb AS (
       SELECT l.ref, count(*) AS n, -sum(l.amount_micros) AS amount
         FROM ledger l JOIN k ON l.card_id = k.card_id AND l.reason = 'call' AND l.ref = k.call_id::text
        GROUP BY l.ref
     )
     SELECT 'unbilled' AS kind, k.call_id::text AS call_id, k.serial,
            'hold of ' || k.reserved_micros || ' micros ran out at ' || to_char(k.hold_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' with no CDR' AS detail
       FROM k WHERE k.status = 'unbilled'
     UNION ALL
     SELECT 'overdue', k.call_id::text, k.serial, 'reserved past its deadline ' || to_char(k.hold_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
       FROM k WHERE k.status = 'reserved' AND k.hold_until < now()
     UNION ALL
     SELECT 'settled_without_cdr', k.call_id::text, k.serial, 'status settled, no CDR'
       FROM k WHERE k.status = 'settled' AND NOT EXISTS (SELECT 1 FROM cdrs d WHERE d.call_id = k.call_id)
     UNION ALL
     SELECT 'cdr_call_not_settled', k.call_id::text, k.serial, 'CDR recorded, call status ' || k.status
       FROM k JOIN cdrs d ON d.call_id = k.call_id WHERE k.status <> 'settled'
     UNION ALL
     SELECT 'cdr_without_debit', k.call_id::text, k.serial, 'CDR collected ' || (d.cost_micros - d.uncollected_micros) || ' micros, no ledger debit'
       FROM k JOIN cdrs d ON d.call_id = k.call_id LEFT JOIN deb ON deb.ref = k.call_id::text
      WHERE d.cost_micros - d.uncollected_micros > 0 AND deb.ref IS NULL
     UNION ALL
     SELECT 'debit_differs', k.call_id::text, k.serial,
            'CDR collected ' || (d.cost_micros - d.uncollected_micros) || ' micros, ledger debited ' || deb.amount
       FROM k JOIN cdrs d ON d.call_id = k.call_id JOIN deb ON deb.ref = k.call_id::text
      WHERE deb.amount <> d.cost_micros - d.uncollected_micros AND deb.n = 1
     UNION ALL
     SELECT 'double_debit', k.call_id::text, k.serial, deb.n || ' ledger debits for one call'
       FROM k JOIN deb ON deb.ref = k.call_id::text WHERE deb.n > 1
     UNION ALL
     SELECT 'debit_without_cdr', k.call_id::text, k.serial, 'ledger debited ' || deb.amount || ' micros, no CDR'
       FROM k JOIN deb ON deb.ref = k.call_id::text WHERE NOT EXISTS (SELECT 1 FROM cdrs d WHERE d.call_id = k.call_id)
     UNION ALL
     SELECT 'balance_differs', NULL, c.serial,
            'balance ' || c.balance_micros || ' micros, ledger sum ' || coalesce(s.sum, 0)
       FROM cards c
       CROSS JOIN LATERAL (SELECT sum(amount_micros)::bigint AS sum FROM ledger l WHERE l.card_id = c.id) s
      WHERE c.id IN (SELECT card_id FROM k) AND c.balance_micros <> coalesce(s.sum, 0)
     ORDER BY 1, 3, 2`,
    range,
  );
  const cost = t.cost ?? 0n;
  const uncollected = t.uncollected ?? 0n;
  return {
    from,
    to,
    calls: Number(t.calls),
    cdrs: Number(t.cdrs),
    cost,
    uncollected,
    collected: cost - uncollected,
    debited: t.debited ?? 0n,
    differences: diffs.rows.map((d) => ({ kind: d.kind, callId: d.call_id, serial: d.serial, detail: d.detail })),
  };
}

/** The JSON form of an unbilled call (CLI --json and the API). */
export function unbilledJson(u: UnbilledCall) {
  return { ...u, reserved: amountJson(u.reserved), createdAt: u.createdAt.toISOString(), holdUntil: u.holdUntil.toISOString() };
}

/** The JSON form of a reconciliation (CLI --json and the API). */
export function reconciliationJson(r: Reconciliation) {
  return {
    from: r.from.toISOString(),
    to: r.to.toISOString(),
    calls: r.calls,
    cdrs: r.cdrs,
    cost: amountJson(r.cost),
    collected: amountJson(r.collected),
    uncollected: amountJson(r.uncollected),
    debited: amountJson(r.debited),
    differences: r.differences,
  };
}
