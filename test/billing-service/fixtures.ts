import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import type { RateRule } from '../../src/billing/rating.ts';
import type { RateLookup } from '../../src/billing/billing-deps.ts';
import type { BridgeResult } from '../../src/flow/call.ts';
import type { CardStatus } from '../../src/store/cards.ts';
import { withTransaction } from '../../src/store/db.ts';
import { derivePinKeys, encryptPin, hashPin } from '../../src/store/pin.ts';

export const pinKeys = derivePinKeys('test-secret');

export interface RateEntry {
  prefix: string;
  destination?: string;
  ratePerMin: bigint;
  connectFee?: bigint;
  initialIncrement?: number;
  subsequentIncrement?: number;
}

/** A tiny in-memory RateLookup: longest matching prefix per rate table. `rates` can be mutated by tests. */
export function memoryRates(byTable: Record<string, RateEntry[]>, table: Partial<RateRule> = {}): RateLookup & { byTable: Record<string, RateEntry[]> } {
  return {
    byTable,
    ruleFor(rateTableId, number, taxPpm) {
      const entries = byTable[rateTableId] ?? [];
      let best: RateEntry | undefined;
      for (const e of entries) if (number.startsWith(e.prefix) && (!best || e.prefix.length > best.prefix.length)) best = e;
      if (!best) return undefined;
      return {
        rate: { id: `${rateTableId}:${best.prefix}`, prefix: best.prefix, destination: best.destination ?? `dest ${best.prefix}` },
        rule: {
          ratePerMin: best.ratePerMin,
          connectFee: best.connectFee ?? 0n,
          initialIncrement: best.initialIncrement ?? 1,
          subsequentIncrement: best.subsequentIncrement ?? 1,
          decimals: table.decimals ?? 6,
          rounding: table.rounding ?? 'up',
          minBillableSeconds: table.minBillableSeconds ?? 0,
          taxPpm,
        },
      };
    },
  };
}

export interface SeriesOpts {
  maxConcurrent?: number;
  activationFee?: bigint;
  maintenanceFee?: bigint;
  maintenancePeriodHours?: number | null;
  expiryDate?: Date | null;
  expiryDays?: number | null;
  taxPpm?: number;
  status?: 'active' | 'stopped' | 'deleted';
}

export async function createSeries(pool: Pool, o: SeriesOpts = {}): Promise<{ seriesId: string; rateTableId: string }> {
  const tag = randomBytes(4).toString('hex');
  const rt = await pool.query<{ id: string }>(`INSERT INTO rate_tables (name) VALUES ($1) RETURNING id::text AS id`, [`rt-${tag}`]);
  let taxId: string | null = null;
  if (o.taxPpm !== undefined) {
    const t = await pool.query<{ id: string }>(`INSERT INTO tax_profiles (name, rate_ppm) VALUES ($1, $2) RETURNING id::text AS id`, [
      `tax-${tag}`,
      o.taxPpm,
    ]);
    taxId = t.rows[0]!.id;
  }
  const s = await pool.query<{ id: string }>(
    `INSERT INTO series (name, series_number, card_count, rate_table_id, tax_profile_id, activation_fee_micros,
                         maintenance_fee_micros, maintenance_period_hours, expiry_date, expiry_days, max_concurrent_calls, status)
     VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id::text AS id`,
    [
      `series-${tag}`,
      String(parseInt(tag, 16) % 1_000_000_000),
      rt.rows[0]!.id,
      taxId,
      (o.activationFee ?? 0n).toString(),
      (o.maintenanceFee ?? 0n).toString(),
      o.maintenancePeriodHours ?? null,
      o.expiryDate ?? null,
      o.expiryDays ?? null,
      o.maxConcurrent ?? 1,
      o.status ?? 'active',
    ],
  );
  return { seriesId: s.rows[0]!.id, rateTableId: rt.rows[0]!.id };
}

export interface CardOpts {
  seriesId: string;
  balance?: bigint;
  status?: CardStatus;
  creditLimit?: bigint;
  pin?: string;
  maxConcurrent?: number | null;
  activatedAt?: Date | null;
  expiresAt?: Date | null;
}

/** A card whose initial balance goes through the ledger (so balance == sum(ledger) from the start). */
export async function createCard(pool: Pool, o: CardOpts): Promise<{ cardId: string; pin: string }> {
  const pin = o.pin ?? String(Math.floor(1e11 + Math.random() * 8e11));
  const serial = `S${randomBytes(6).toString('hex')}`;
  const cardId = await withTransaction(pool, async (client) => {
    const r = await client.query<{ id: string }>(
      `INSERT INTO cards (series_id, serial, pin_hash, pin_cipher, status, credit_limit_micros, max_concurrent_calls, activated_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id::text AS id`,
      [
        o.seriesId,
        serial,
        hashPin(pinKeys, pin),
        encryptPin(pinKeys, pin),
        o.status ?? 'active',
        (o.creditLimit ?? 0n).toString(),
        o.maxConcurrent ?? null,
        o.activatedAt ?? (o.status === 'pending' ? null : new Date()),
        o.expiresAt ?? null,
      ],
    );
    const id = r.rows[0]!.id;
    if (o.balance) await applyBalanceChange(client, { cardId: id, amount: o.balance, reason: 'initial', ref: 'initial', onFloor: 'reject' });
    return id;
  });
  return { cardId, pin };
}

/** A finished bridge whose carrier leg answered and talked for `billsec` (the socket's copy of its CDR). */
export function answeredBridge(callId: string, billsec: number): BridgeResult {
  const answer = BigInt(Date.now() - billsec * 1000) * 1000n;
  return {
    disposition: 'SUCCESS',
    hangupCause: 'NORMAL_CLEARING',
    answered: true,
    callerHungUp: false,
    carrierCdr: {
      uuid: callId,
      billsec,
      billmsec: billsec * 1000,
      answerUepoch: answer,
      endUepoch: answer + BigInt(billsec) * 1_000_000n,
      hangupCause: 'NORMAL_CLEARING',
      variables: { cc_call_id: callId },
    },
  };
}

export function unansweredBridge(): BridgeResult {
  return { disposition: 'USER_BUSY', hangupCause: 'USER_BUSY', answered: false, callerHungUp: false, carrierCdr: undefined };
}

/** The money invariants every test ends with. */
export async function moneyFacts(pool: Pool, cardId: string) {
  const q = async (sql: string) => (await pool.query<{ v: bigint | null }>(sql, [cardId])).rows[0]!.v ?? 0n;
  return {
    balance: await q('SELECT balance_micros AS v FROM cards WHERE id = $1'),
    ledgerSum: await q('SELECT sum(amount_micros)::bigint AS v FROM ledger WHERE card_id = $1'),
    callDebits: await q(`SELECT sum(amount_micros)::bigint AS v FROM ledger WHERE card_id = $1 AND reason = 'call'`),
    cdrCost: await q('SELECT sum(cost_micros)::bigint AS v FROM cdrs WHERE card_id = $1'),
    uncollected: await q('SELECT sum(uncollected_micros)::bigint AS v FROM cdrs WHERE card_id = $1'),
    openCalls: Number(await q(`SELECT count(*)::bigint AS v FROM calls WHERE card_id = $1 AND status = 'reserved'`)),
    cdrs: Number(await q('SELECT count(*)::bigint AS v FROM cdrs WHERE card_id = $1')),
  };
}

export const silentLog = { info: () => {}, warn: () => {}, error: () => {} };

export const BASE_CONFIG = {
  minCallSeconds: 10,
  maxCallSeconds: 60,
  originateTimeoutSec: 30,
  holdMarginSec: 30,
  lockout: { maxFailures: 3, windowSec: 60, lockoutSec: 60 },
};

const FIXTURES = fileURLToPath(new URL('../fixtures/freeswitch/json_cdr/', import.meta.url));

/** The body of a recorded mod_json_cdr POST (json_cdr/NNN-<uuid>.http). */
export function fixtureBody(prefix: string): string {
  const file = readdirSync(FIXTURES).find((f) => f.startsWith(prefix))!;
  const raw = readFileSync(FIXTURES + file, 'latin1');
  return raw.slice(raw.indexOf('\r\n\r\n') + 4);
}

/** The recorded b-leg POST (036, carries cc_call_id) re-targeted at our call, optionally with url-encoded values. */
export function carrierLegCdr(callId: string, billsec: number, opts: { encodeValues?: boolean; answered?: boolean } = {}): string {
  const doc = JSON.parse(fixtureBody('036-')) as { variables: Record<string, string> };
  const v = doc.variables;
  const answered = opts.answered ?? true;
  const end = BigInt(Date.now()) * 1000n;
  v.uuid = callId;
  v.origination_uuid = callId;
  v.cc_call_id = callId;
  v.billsec = String(answered ? billsec : 0);
  v.billmsec = String(answered ? billsec * 1000 : 0);
  v.answer_uepoch = answered ? String(end - BigInt(billsec) * 1_000_000n) : '0';
  v.end_uepoch = String(end);
  v.hangup_cause = answered ? 'NORMAL_CLEARING' : 'NO_ANSWER';
  if (opts.encodeValues) for (const k of Object.keys(v)) v[k] = encodeURIComponent(v[k]!);
  return JSON.stringify(doc);
}

