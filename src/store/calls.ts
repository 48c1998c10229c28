import type { Micros, Rounding } from '../money/money.ts';
import type { RateRule } from '../billing/rating.ts';
import type { Queryable } from './cards.ts';
import { statementName, withTransaction, type Pool } from './db.ts';

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

/** 'expired': older rows only (migration 005 turned them 'unbilled'). 'unbilled': the hold ran out and no CDR came. */
export type CallStatus = 'reserved' | 'settled' | 'released' | 'expired' | 'unbilled';

export interface CallRecord {
  callId: string;
  cardId: string;
  ivrUuid: string | null;
  did: string | null;
  callerId: string | null;
  destination: string;
  rate: RateSnapshot;
  /** The cost algorithm it was reserved under (src/billing/rating.ts COST_ALGORITHMS): its debit uses the same. */
  costAlgorithm: string;
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
  cost_algorithm: string;
  max_seconds: number;
  reserved_micros: bigint;
  status: CallStatus;
  hold_until: Date;
}

const CALL_COLUMNS = `call_id::text AS call_id, card_id::text AS card_id, ivr_uuid::text AS ivr_uuid, did, caller_id,
  destination, rate, cost_algorithm, max_seconds, reserved_micros, status, hold_until`;

const fromRow = (r: CallRow): CallRecord => ({
  callId: r.call_id,
  cardId: r.card_id,
  ivrUuid: r.ivr_uuid,
  did: r.did,
  callerId: r.caller_id,
  destination: r.destination,
  rate: r.rate,
  costAlgorithm: r.cost_algorithm,
  maxSeconds: r.max_seconds,
  reserved: r.reserved_micros,
  status: r.status,
  holdUntil: r.hold_until,
});

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string | undefined | null): s is string => typeof s === 'string' && UUID_RE.test(s);

/**
 * Records an open call, only if its card is still active (an operator may have disabled it since it was
 * authorized): false when nothing was inserted.
 */
export async function insertCall(db: Queryable, c: Omit<CallRecord, 'status'>): Promise<boolean> {
  const r = await db.query({
    name: statementName('ccard_insert_call'),
    text: `INSERT INTO calls (call_id, card_id, ivr_uuid, did, caller_id, destination, rate, max_seconds, reserved_micros, hold_until,
                              cost_algorithm)
           SELECT $1, c.id, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM cards c WHERE c.id = $2 AND c.status = 'active'`,
    values: [
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
      c.costAlgorithm,
    ],
  });
  return r.rowCount === 1;
}

/** Removes the row of a reservation whose hold was refused (written while the hold was asked for): it never held
 * anything and never reached a bridge. Only an open row goes. */
export async function deleteUnheldCall(db: Queryable, callId: string): Promise<boolean> {
  const r = await db.query({
    name: statementName('ccard_delete_unheld_call'),
    text: `DELETE FROM calls WHERE call_id = $1 AND status = 'reserved'`,
    values: [callId],
  });
  return (r.rowCount ?? 0) > 0;
}

export async function getCall(db: Queryable, callId: string): Promise<CallRecord | undefined> {
  if (!isUuid(callId)) return undefined;
  const r = await db.query<CallRow>(`SELECT ${CALL_COLUMNS} FROM calls WHERE call_id = $1`, [callId]);
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

/**
 * The hold of an open call ran out and no CDR arrived: the call may have been talked (ccard was down while it was
 * bridged, or its CDR was lost), so it is marked 'unbilled' for the operator, never silently released. Its CDR
 * arriving later still bills it.
 */
export async function markUnbilled(db: Queryable, callId: string): Promise<boolean> {
  const r = await db.query(`UPDATE calls SET status = 'unbilled' WHERE call_id = $1 AND status = 'reserved'`, [callId]);
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

/** What the debit statement needs from the caller: the CDR's facts and the cost it computed from the call's rate. */
export interface DebitCdrInput {
  callId: string;
  billsec: number;
  billmsec: number | null;
  billedSeconds: number;
  /** The full cost at the reserved rate (>= 0); the debit is this, clamped at the card's floor. */
  cost: Micros;
  hangupCause: string | null;
  answeredAt: Date | null;
  endedAt: Date | null;
  source: CdrSource;
}

/** Where a CDR came from: the call's own socket, mod_json_cdr's POST, `ccard cdr import`, or a spool directory. */
export type CdrSource = 'socket' | 'json_cdr' | 'import' | 'spool';

export type DebitCdrResult =
  | { outcome: 'unknown_call' }
  | {
      outcome: 'debited';
      cardId: string;
      /** Debited (<= 0 when cost > 0; 0 when cost is 0). */
      amount: Micros;
      uncollected: Micros;
      balance: Micros;
      creditLimit: Micros;
      version: bigint;
    }
  | {
      outcome: 'duplicate';
      cardId: string;
      /** The recorded CDR's billed seconds and cost (undefined only if it vanished meanwhile). */
      prior: { billedSeconds: number; cost: Micros } | undefined;
      balance: Micros;
      creditLimit: Micros;
      version: bigint;
    };

/*
 * The debit of answered calls as ONE statement (atomic on its own: no BEGIN/COMMIT round trips), for one call
 * (debitCdr) or for the several that arrived while another committed (DebitBatcher). Its parameters are arrays,
 * one element per call, never the same call twice. The order of the sub-statements of a WITH is otherwise
 * undefined, so it is forced by references:
 *   call     - the reservations (card, destination, rate columns); a call not found is unknown: nothing happens.
 *   ins_cdr  - the exactly-once gate. ON CONFLICT (call_id) DO NOTHING sees a CDR committed after this statement's
 *              snapshot and waits for one being inserted, so a duplicate (even a simultaneous one) yields no row
 *              and everything below, which reads ins_cdr, does nothing. A duplicate already visible writes
 *              nothing at all (no xid, no WAL flush).
 *   per_card - the fresh calls' costs summed per card.
 *   upd_card - each card row once: this UPDATE is the ONLY lock taken on it, and it debits the full sum, guarded by
 *              the floor (balance - sum >= -credit_limit), both evaluated on the newest committed row (EvalPlanQual
 *              after a lock wait). Not a SELECT ... FOR UPDATE first: when that lock waits, the statement's
 *              snapshot predates the row it locked, so a later UPDATE in the same statement must re-find it through
 *              EvalPlanQual from the stale version, taking that version's tuple lock while holding the newer one -
 *              which deadlocks against a FOR UPDATE waiter that holds the old tuple lock and waits for us (seen in
 *              test/billing-service/concurrency.test.ts). NO KEY UPDATE (what this UPDATE takes) does not conflict
 *              with the KEY SHARE locks of foreign-key checks, ours (cdrs, ledger: checked at statement end, after
 *              the card is ours) or other transactions' (a new call's insert): no lock upgrade, no deadlock.
 *   ins_led  - a ledger row per call with the balance after it, in input order (a running sum per card); the
 *              card's version counts one change per row, as one debit at a time would. If a card could not pay its
 *              full sum (only when a hold had expired), upd_card has no row for it, balance_after is NULL and the
 *              NOT NULL constraint aborts the whole statement: nothing was written, and the calls are redone one
 *              by one, a lone one taking the clamp path (DEBIT_CLAMP_SQL) if it still cannot pay.
 *   upd_call - the calls settled.
 * A free call (cost 0) records its CDR and settles the call; no ledger row, the version unchanged. One result row per
 * call found.
 */
const DEBIT_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::integer[], $5::bigint[], $6::text[],
                       $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[])
    WITH ORDINALITY AS t(call_id, billsec, billmsec, billed, cost, cause, answered_at, ended_at, source, note, ord)
), call AS (
  SELECT i.*, k.card_id, k.ivr_uuid, k.did, k.caller_id, k.destination,
         k.rate->>'prefix' AS prefix, k.rate->>'ratePerMin' AS rate_per_min
    FROM input i JOIN calls k ON k.call_id = i.call_id
), ins_cdr AS (
  INSERT INTO cdrs (call_id, card_id, ivr_uuid, did, caller_id, destination, prefix, rate_per_min_micros, billsec, billmsec,
                    billed_seconds, cost_micros, hangup_cause, answered_at, ended_at, source)
  SELECT call_id, card_id, ivr_uuid, did, caller_id, destination, prefix, rate_per_min::bigint, billsec, billmsec,
         billed, cost, cause, answered_at, ended_at, source
    FROM call
  ON CONFLICT (call_id) DO NOTHING
  RETURNING call_id, card_id, cost_micros
), fresh AS (
  SELECT c.call_id, c.card_id, c.cost_micros, i.ord, i.note FROM ins_cdr c JOIN input i ON i.call_id = c.call_id
), per_card AS (
  SELECT card_id, sum(cost_micros)::bigint AS total, count(*)::bigint AS n FROM fresh WHERE cost_micros > 0 GROUP BY card_id
), upd_card AS (
  -- The version counts balance changes, as one debit at a time would have counted them.
  UPDATE cards c SET balance_micros = c.balance_micros - p.total, balance_version = c.balance_version + p.n,
                     last_used_at = now()
    FROM per_card p
   WHERE c.id = p.card_id AND c.balance_micros - p.total >= -c.credit_limit_micros
  RETURNING c.id, c.balance_micros, c.balance_version, p.total
), ins_led AS (
  INSERT INTO ledger (card_id, amount_micros, balance_after_micros, reason, ref, note)
  SELECT f.card_id, -f.cost_micros,
         u.balance_micros + u.total - sum(f.cost_micros) OVER (PARTITION BY f.card_id ORDER BY f.ord),
         'call', f.call_id::text, f.note
    FROM fresh f LEFT JOIN upd_card u ON u.id = f.card_id
   WHERE f.cost_micros > 0
   ORDER BY f.card_id, f.ord
), upd_call AS (
  UPDATE calls SET status = 'settled', settled_at = now() FROM ins_cdr WHERE calls.call_id = ins_cdr.call_id
)
SELECT call.call_id::text AS call_id,
       call.card_id::text AS card_id,
       (SELECT count(*) FROM fresh f WHERE f.call_id = call.call_id)::int AS fresh,
       -call.cost AS amount,
       0::bigint AS uncollected,
       COALESCE(u.balance_micros, cur.balance_micros) AS balance_micros,
       COALESCE(u.balance_version, cur.balance_version) AS balance_version,
       cur.credit_limit_micros,
       prior.billed_seconds AS prior_billed_seconds,
       prior.cost_micros AS prior_cost_micros
  FROM call
  JOIN cards cur ON cur.id = call.card_id
  LEFT JOIN upd_card u ON u.id = call.card_id
  LEFT JOIN cdrs prior ON prior.call_id = call.call_id`;

/*
 * The clamp path: the card cannot pay the full cost (its hold had expired). Runs in a transaction AFTER the card
 * was locked by a previous statement (lockCardOfCall), so this statement's snapshot already shows the newest
 * card row: its FOR NO KEY UPDATE re-lock is our own and its UPDATE needs no EvalPlanQual. Debits down to the
 * floor (never below -credit_limit), the shortfall into cdrs.uncollected_micros; same exactly-once gate.
 */
const DEBIT_CLAMP_SQL = `
WITH call AS (
  SELECT call_id, card_id, ivr_uuid, did, caller_id, destination, rate->>'prefix' AS prefix, rate->>'ratePerMin' AS rate_per_min
    FROM calls WHERE call_id = $1::uuid
), card AS (
  SELECT c.id, c.balance_micros, c.credit_limit_micros, c.balance_version
    FROM cards c JOIN call ON c.id = call.card_id
     FOR NO KEY UPDATE OF c
), calc AS (
  SELECT card.*, -LEAST($5::bigint, GREATEST(card.balance_micros + card.credit_limit_micros, 0)) AS amount FROM card
), ins_cdr AS (
  INSERT INTO cdrs (call_id, card_id, ivr_uuid, did, caller_id, destination, prefix, rate_per_min_micros, billsec, billmsec,
                    billed_seconds, cost_micros, uncollected_micros, hangup_cause, answered_at, ended_at, source)
  SELECT call.call_id, calc.id, call.ivr_uuid, call.did, call.caller_id, call.destination, call.prefix,
         call.rate_per_min::bigint, $2::integer, $3::integer, $4::integer, $5::bigint, $5::bigint + calc.amount,
         $6::text, $7::timestamptz, $8::timestamptz, $9::text
    FROM call JOIN calc ON calc.id = call.card_id
  ON CONFLICT (call_id) DO NOTHING
  RETURNING call_id
), upd_card AS (
  UPDATE cards c SET balance_micros = c.balance_micros + calc.amount, balance_version = c.balance_version + 1,
                     last_used_at = now()
    FROM calc, ins_cdr
   WHERE c.id = calc.id AND $5::bigint > 0
  RETURNING c.balance_micros, c.balance_version
), ins_led AS (
  INSERT INTO ledger (card_id, amount_micros, balance_after_micros, reason, ref, note)
  SELECT calc.id, calc.amount, upd_card.balance_micros, 'call', $1::text, $10::text
    FROM upd_card, calc
), upd_call AS (
  UPDATE calls SET status = 'settled', settled_at = now()
    FROM ins_cdr WHERE calls.call_id = ins_cdr.call_id
)
SELECT calc.id::text AS card_id,
       (SELECT count(*) FROM ins_cdr)::int AS fresh,
       calc.amount,
       $5::bigint + calc.amount AS uncollected,
       COALESCE((SELECT balance_micros FROM upd_card), calc.balance_micros) AS balance_micros,
       COALESCE((SELECT balance_version FROM upd_card), calc.balance_version) AS balance_version,
       calc.credit_limit_micros,
       prior.billed_seconds AS prior_billed_seconds,
       prior.cost_micros AS prior_cost_micros
  FROM calc
  LEFT JOIN cdrs prior ON prior.call_id = $1::uuid`;

interface DebitRow {
  call_id: string;
  card_id: string;
  fresh: number;
  amount: bigint;
  uncollected: bigint;
  balance_micros: bigint;
  balance_version: bigint;
  credit_limit_micros: bigint;
  prior_billed_seconds: number | null;
  prior_cost_micros: bigint | null;
}

/** The fast statement's signal that the card cannot pay the full cost: its ledger row got no balance after. */
function cannotPayInFull(err: unknown): boolean {
  const e = err as { code?: string; table?: string; column?: string };
  return e?.code === '23502' && e.table === 'ledger' && e.column === 'balance_after_micros';
}

/**
 * Records the CDR of an answered call and debits it exactly once. Normally ONE statement (one round trip, its own
 * atomic commit: see DEBIT_SQL); a card that cannot pay in full (an expired hold) takes a short transaction that
 * locks the card and then debits down to the floor (DEBIT_CLAMP_SQL). `note` is the ledger note (the destination).
 */
export async function debitCdr(pool: Pool, d: DebitCdrInput, note: string): Promise<DebitCdrResult> {
  if (!isUuid(d.callId)) return { outcome: 'unknown_call' };
  if (d.cost < 0n) throw new RangeError('cost must not be negative');
  let row: DebitRow | undefined;
  try {
    row = (await runDebitStatement(pool, [{ input: d, note }]))[0];
  } catch (err) {
    if (!cannotPayInFull(err)) throw err;
    const values = [d.callId, d.billsec, d.billmsec, d.billedSeconds, d.cost.toString(), d.hangupCause, d.answeredAt, d.endedAt, d.source, note];
    row = await withTransaction(pool, async (client) => {
      await client.query(
        `SELECT 1 FROM cards c JOIN calls k ON k.card_id = c.id WHERE k.call_id = $1::uuid FOR NO KEY UPDATE OF c`,
        [d.callId],
      );
      return (await client.query<DebitRow>({ name: statementName('ccard_debit_cdr_clamp'), text: DEBIT_CLAMP_SQL, values })).rows[0];
    });
  }
  if (!row) return { outcome: 'unknown_call' };
  return debitResult(pool, d.callId, row);
}

async function debitResult(pool: Pool, callId: string, row: DebitRow): Promise<DebitCdrResult> {
  const common = { cardId: row.card_id, balance: row.balance_micros, creditLimit: row.credit_limit_micros, version: row.balance_version };
  if (row.fresh > 0) return { outcome: 'debited', amount: row.amount, uncollected: row.uncollected, ...common };
  let prior =
    row.prior_cost_micros === null ? undefined : { billedSeconds: row.prior_billed_seconds!, cost: row.prior_cost_micros };
  // The duplicate committed while this statement waited: its row is newer than the statement's snapshot.
  if (!prior) prior = await getCdrCost(pool, callId);
  return { outcome: 'duplicate', prior, ...common };
}


interface PendingDebit {
  input: DebitCdrInput;
  note: string;
  resolve: (r: DebitCdrResult) => void;
  reject: (err: unknown) => void;
}

/**
 * Debits answered calls, batching them when they come faster than the database commits them. At most one batch is
 * in flight per pool: a debit that arrives while one runs waits for it and goes out with the others that arrived
 * meanwhile, in one statement and one commit (DEBIT_SQL). At low rates every debit goes alone, at once,
 * through debitCdr. A batch never holds the same call twice (a duplicate waits for the next one), and any failure of
 * a batch statement (a card that cannot pay in full, a deadlock with another process) redoes its calls one by one.
 * Each caller gets exactly what debitCdr would have told it.
 */
export class DebitBatcher {
  private readonly queue: PendingDebit[] = [];
  private running = false;

  constructor(
    private readonly pool: Pool,
    private readonly maxBatch = 64,
  ) {}

  debit(input: DebitCdrInput, note: string): Promise<DebitCdrResult> {
    if (!isUuid(input.callId)) return Promise.resolve({ outcome: 'unknown_call' });
    if (input.cost < 0n) return Promise.reject(new RangeError('cost must not be negative'));
    return new Promise((resolve, reject) => {
      this.queue.push({ input, note, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        if (batch.length === 1) await settleEach(batch, (p) => debitCdr(this.pool, p.input, p.note));
        else await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  /** Up to maxBatch debits of distinct calls, oldest first; the rest stay queued in order. */
  private take(): PendingDebit[] {
    const seen = new Set<string>();
    const batch: PendingDebit[] = [];
    const rest: PendingDebit[] = [];
    for (const p of this.queue) {
      const id = p.input.callId.toLowerCase();
      if (batch.length < this.maxBatch && !seen.has(id)) {
        seen.add(id);
        batch.push(p);
      } else rest.push(p);
    }
    this.queue.splice(0, this.queue.length, ...rest);
    return batch;
  }

  private async runBatch(batch: PendingDebit[]): Promise<void> {
    let rows: DebitRow[];
    try {
      rows = await runDebitStatement(this.pool, batch);
    } catch {
      // Nothing was written: each call on its own (clamp path, lock waits and all).
      await settleEach(batch, (p) => debitCdr(this.pool, p.input, p.note));
      return;
    }
    const byCall = new Map(rows.map((row) => [row.call_id.toLowerCase(), row]));
    await settleEach(batch, async (p) => {
      const row = byCall.get(p.input.callId.toLowerCase());
      return row ? debitResult(this.pool, p.input.callId, row) : { outcome: 'unknown_call' };
    });
  }
}

/** DEBIT_SQL over these debits (distinct calls): one row per call found. */
async function runDebitStatement(pool: Pool, debits: ReadonlyArray<{ input: DebitCdrInput; note: string }>): Promise<DebitRow[]> {
  const col = <T>(f: (d: DebitCdrInput, note: string) => T) => debits.map((p) => f(p.input, p.note));
  const r = await pool.query<DebitRow>({
    name: statementName('ccard_debit_cdr'),
    text: DEBIT_SQL,
    values: [
      col((d) => d.callId),
      col((d) => d.billsec),
      col((d) => d.billmsec),
      col((d) => d.billedSeconds),
      col((d) => d.cost.toString()),
      col((d) => d.hangupCause),
      col((d) => d.answeredAt),
      col((d) => d.endedAt),
      col((d) => d.source),
      col((_d, note) => note),
    ],
  });
  return r.rows;
}

async function settleEach(batch: PendingDebit[], run: (p: PendingDebit) => Promise<DebitCdrResult>): Promise<void> {
  await Promise.all(batch.map((p) => run(p).then(p.resolve, p.reject)));
}

/**
 * The never-answered end of a call in ONE statement: marks an open (or expired) call released and returns the
 * card's snapshot for the live store. undefined: no such call.
 */
export async function releaseCallRow(
  db: Queryable,
  callId: string,
): Promise<{ cardId: string; spendable: Micros; version: bigint; balance: Micros } | undefined> {
  if (!isUuid(callId)) return undefined;
  const r = await db.query<{ card_id: string; balance_micros: bigint; credit_limit_micros: bigint; balance_version: bigint }>({
    name: statementName('ccard_release_call'),
    text: `WITH upd AS (
             UPDATE calls SET status = 'released', settled_at = now()
              WHERE call_id = $1::uuid AND status IN ('reserved', 'expired', 'unbilled')
           )
           SELECT c.id::text AS card_id, c.balance_micros, c.credit_limit_micros, c.balance_version
             FROM calls k JOIN cards c ON c.id = k.card_id
            WHERE k.call_id = $1::uuid`,
    values: [callId],
  });
  const row = r.rows[0];
  if (!row) return undefined;
  return { cardId: row.card_id, spendable: row.balance_micros + row.credit_limit_micros, version: row.balance_version, balance: row.balance_micros };
}
