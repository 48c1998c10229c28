import type { Micros, Rounding } from '../money/money.ts';
import type { RateRule } from '../billing/rating.ts';
import type { Queryable } from './cards.ts';

/**
 * The rate a call was reserved at, stored in calls.rate (JSONB) so the debit costs exactly what was promised
 * even if the rates change during the call. Amounts are decimal strings of micros (JSON has no bigint and a
 * JSON number is a float).
 */
export interface RateSnapshot {
  rateId: string;
  prefix: string;
  destination: string;
  ratePerMin: string;
  connectFee: string;
  initialIncrement: number;
  subsequentIncrement: number;
  decimals: number;
  rounding: Rounding;
  minBillableSeconds: number;
  taxPpm: number;
}

const MICROS_RE = /^-?[0-9]{1,19}$/;

export function toRateSnapshot(rate: { id: string; prefix: string; destination: string }, rule: RateRule): RateSnapshot {
  return {
    rateId: String(rate.id),
    prefix: rate.prefix,
    destination: rate.destination,
    ratePerMin: rule.ratePerMin.toString(),
    connectFee: rule.connectFee.toString(),
    initialIncrement: rule.initialIncrement,
    subsequentIncrement: rule.subsequentIncrement,
    decimals: rule.decimals,
    rounding: rule.rounding,
    minBillableSeconds: rule.minBillableSeconds,
    taxPpm: rule.taxPpm,
  };
}

export function ruleFromSnapshot(s: RateSnapshot): RateRule {
  if (!MICROS_RE.test(s.ratePerMin) || !MICROS_RE.test(s.connectFee)) throw new Error('corrupt rate snapshot: amounts');
  return {
    ratePerMin: BigInt(s.ratePerMin),
    connectFee: BigInt(s.connectFee),
    initialIncrement: s.initialIncrement,
    subsequentIncrement: s.subsequentIncrement,
    decimals: s.decimals,
    rounding: s.rounding,
    minBillableSeconds: s.minBillableSeconds,
    taxPpm: s.taxPpm,
  };
}

export type CallStatus = 'reserved' | 'settled' | 'released' | 'expired';

export interface CallRecord {
  callId: string;
  cardId: string;
  ivrUuid: string | null;
  did: string | null;
  callerId: string | null;
  destination: string;
  rate: RateSnapshot;
  maxSeconds: number;
  reserved: Micros;
  status: CallStatus;
  holdUntil: Date;
}

interface CallRow {
  call_id: string;
  card_id: string;
  ivr_uuid: string | null;
  did: string | null;
  caller_id: string | null;
  destination: string;
  rate: RateSnapshot;
  max_seconds: number;
  reserved_micros: bigint;
  status: CallStatus;
  hold_until: Date;
}

const CALL_COLUMNS = `call_id::text AS call_id, card_id::text AS card_id, ivr_uuid::text AS ivr_uuid, did, caller_id,
  destination, rate, max_seconds, reserved_micros, status, hold_until`;

const fromRow = (r: CallRow): CallRecord => ({
  callId: r.call_id,
  cardId: r.card_id,
  ivrUuid: r.ivr_uuid,
  did: r.did,
  callerId: r.caller_id,
  destination: r.destination,
  rate: r.rate,
  maxSeconds: r.max_seconds,
  reserved: r.reserved_micros,
  status: r.status,
  holdUntil: r.hold_until,
});

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string | undefined | null): s is string => typeof s === 'string' && UUID_RE.test(s);

export async function insertCall(db: Queryable, c: Omit<CallRecord, 'status'>): Promise<void> {
  await db.query(
    `INSERT INTO calls (call_id, card_id, ivr_uuid, did, caller_id, destination, rate, max_seconds, reserved_micros, hold_until)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      c.callId,
      c.cardId,
      isUuid(c.ivrUuid) ? c.ivrUuid : null,
      c.did,
      c.callerId,
      c.destination,
      JSON.stringify(c.rate),
      c.maxSeconds,
      c.reserved.toString(),
      c.holdUntil,
    ],
  );
}

export async function getCall(db: Queryable, callId: string): Promise<CallRecord | undefined> {
  if (!isUuid(callId)) return undefined;
  const r = await db.query<CallRow>(`SELECT ${CALL_COLUMNS} FROM calls WHERE call_id = $1`, [callId]);
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

/** The never-answered end of a call: its hold is given back. Only an open (or expired) call changes. */
export async function markReleased(db: Queryable, callId: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE calls SET status = 'released', settled_at = now() WHERE call_id = $1 AND status IN ('reserved', 'expired')`,
    [callId],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function markExpired(db: Queryable, callId: string): Promise<boolean> {
  const r = await db.query(`UPDATE calls SET status = 'expired' WHERE call_id = $1 AND status = 'reserved'`, [callId]);
  return (r.rowCount ?? 0) > 0;
}

/** Calls still holding funds (status 'reserved'); with `dueBy`, only those whose hold ended by then. */
export async function openCalls(db: Queryable, dueBy?: Date): Promise<CallRecord[]> {
  const r = dueBy
    ? await db.query<CallRow>(
        `SELECT ${CALL_COLUMNS} FROM calls WHERE status = 'reserved' AND hold_until <= $1 ORDER BY created_at`,
        [dueBy],
      )
    : await db.query<CallRow>(`SELECT ${CALL_COLUMNS} FROM calls WHERE status = 'reserved' ORDER BY created_at`);
  return r.rows.map(fromRow);
}

/** The CDR already recorded for a call (its billed seconds and cost). */
export async function getCdrCost(db: Queryable, callId: string): Promise<{ billedSeconds: number; cost: Micros } | undefined> {
  if (!isUuid(callId)) return undefined;
  const r = await db.query<{ billed_seconds: number; cost_micros: bigint }>(
    'SELECT billed_seconds, cost_micros FROM cdrs WHERE call_id = $1',
    [callId],
  );
  const row = r.rows[0];
  return row ? { billedSeconds: row.billed_seconds, cost: row.cost_micros } : undefined;
}

export interface CdrInsert {
  callId: string;
  cardId: string;
  ivrUuid: string | null;
  did: string | null;
  callerId: string | null;
  destination: string;
  prefix: string | null;
  ratePerMin: Micros | null;
  billsec: number;
  billmsec: number | null;
  billedSeconds: number;
  cost: Micros;
  hangupCause: string | null;
  answeredAt: Date | null;
  endedAt: Date | null;
  source: 'socket' | 'json_cdr' | 'import';
}

/**
 * Records the CDR once: false when this call already has one (then nothing may be debited again).
 * Locks the card row FOR UPDATE in the same statement, BEFORE the insert's foreign-key check takes its KEY SHARE
 * lock: two debits that each held KEY SHARE and then asked for FOR UPDATE (applyBalanceChange) would deadlock.
 */
export async function insertCdr(db: Queryable, c: CdrInsert): Promise<boolean> {
  const r = await db.query(
    `WITH card AS (SELECT id FROM cards WHERE id = $2::bigint FOR UPDATE)
     INSERT INTO cdrs (call_id, card_id, ivr_uuid, did, caller_id, destination, prefix, rate_per_min_micros, billsec, billmsec,
                       billed_seconds, cost_micros, hangup_cause, answered_at, ended_at, source)
     SELECT $1::uuid, card.id, $3::uuid, $4::text, $5::text, $6::text, $7::text, $8::bigint, $9::integer, $10::integer,
            $11::integer, $12::bigint, $13::text, $14::timestamptz, $15::timestamptz, $16::text
       FROM card
     ON CONFLICT (call_id) DO NOTHING`,
    [
      c.callId,
      c.cardId,
      c.ivrUuid,
      c.did,
      c.callerId,
      c.destination,
      c.prefix,
      c.ratePerMin === null ? null : c.ratePerMin.toString(),
      c.billsec,
      c.billmsec,
      c.billedSeconds,
      c.cost.toString(),
      c.hangupCause,
      c.answeredAt,
      c.endedAt,
      c.source,
    ],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Closes the call after its debit and records what could not be collected. One round trip. */
export async function markSettled(db: Queryable, callId: string, uncollected: Micros): Promise<void> {
  await db.query(
    `WITH c AS (UPDATE calls SET status = 'settled', settled_at = now() WHERE call_id = $1)
     UPDATE cdrs SET uncollected_micros = $2 WHERE call_id = $1 AND $2::bigint <> 0`,
    [callId, uncollected.toString()],
  );
}
