import { safeDecode } from '../esl/parser.ts';
import type { Micros } from '../money/money.ts';
import { finishCall } from '../billing/settle.ts';
import type { SettleDeps } from '../billing/billing-deps.ts';
import { getCall, isUuid } from '../store/calls.ts';
import { finishedCall } from '../billing/finished-calls.ts';
import { observeFinish } from '../metrics/index.ts';
import { cachedPricing, type CallPricing } from '../billing/pricing-cache.ts';

/**
 * Ingests one mod_json_cdr POST body (FreeSWITCH posts one document per leg, see the README of
 * test/fixtures/freeswitch, section "mod_json_cdr"). Only ccard's carrier legs matter: the leg whose uuid is a
 * call id (ccard sets origination_uuid = call id) or that carries cc_call_id (set in the dial string, so a
 * failover leg with its own uuid is still found). Every other leg (the IVR leg, the caller, the far side) is
 * ignored with status 'ignored'.
 *
 * Accepted bodies: encode=false (raw JSON; the documented configuration) with encode-values false or true
 * (every variable value url-encoded), and encode=base64 ("cdr=" + base64 JSON). encode=true ("cdr=" +
 * url-encoded JSON) cannot be decoded safely (FreeSWITCH does not re-encode the values' %XX, so the layers
 * collapse) and is refused as 'invalid'.
 *
 * HTTP mapping for the route: any result -> 200 (a retry cannot change it; 'invalid' is logged), a thrown error
 * (PostgreSQL or the live store unreachable) -> 503 so mod_json_cdr retries and finally keeps the file in its
 * err-log-dir for a later import.
 */
export type IngestResult =
  | { status: 'debited'; callId: string; cardId: string; billedSeconds: number; cost: Micros; uncollected: Micros }
  | { status: 'duplicate'; callId: string; cardId: string }
  | { status: 'released'; callId: string; cardId: string }
  | { status: 'ignored'; reason: 'not_a_ccard_leg'; uuid: string | undefined }
  | { status: 'invalid'; reason: string };

export type JsonCdrDeps = SettleDeps;

const isBlank = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function parseDocument(bodyText: string): Record<string, unknown> | string {
  // JSON.parse skips blanks itself: the 10-20 KB body is not copied by a trim() first.
  let text = bodyText;
  let start = 0;
  while (start < text.length && isBlank(text.charCodeAt(start))) start++;
  if (text.startsWith('cdr=', start)) {
    const payload = text.slice(start + 4).trim();
    if (payload.startsWith('%7B') || payload.startsWith('%7b') || payload.startsWith('{')) {
      return 'encode=true bodies cannot be decoded safely; configure mod_json_cdr with encode=false';
    }
    if (!/^[A-Za-z0-9+/=\s]+$/.test(payload)) return 'cdr= body is not base64';
    text = Buffer.from(payload, 'base64').toString('utf8');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // Blanks JSON does not know (a byte-order mark, no-break spaces) around a document were always trimmed.
    const trimmed = text.trim();
    if (trimmed.length === text.length) return `not JSON: ${(err as Error).message}`;
    try {
      doc = JSON.parse(trimmed);
    } catch (again) {
      return `not JSON: ${(again as Error).message}`;
    }
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'not a JSON object';
  return doc as Record<string, unknown>;
}

const INT_RE = /^[0-9]{1,19}$/;

function intVar(vars: Record<string, unknown>, name: string): bigint | undefined {
  const raw = vars[name];
  if (typeof raw !== 'string') return undefined;
  const v = safeDecode(raw).trim();
  return INT_RE.test(v) ? BigInt(v) : undefined;
}

function strVar(vars: Record<string, unknown>, name: string): string | undefined {
  const raw = vars[name];
  return typeof raw === 'string' ? safeDecode(raw).trim() : undefined;
}

const toDate = (uepoch: bigint | undefined) => (uepoch !== undefined && uepoch > 0n ? new Date(Number(uepoch / 1000n)) : undefined);
const MAX_SECONDS = 10n * 24n * 3600n;

/** `source`: how the document came (recorded with the CDR): 'json_cdr' (POST /cdr), 'spool' or 'import'. */
export async function ingestJsonCdr(deps: JsonCdrDeps, bodyText: string, source: 'json_cdr' | 'spool' | 'import' = 'json_cdr'): Promise<IngestResult> {
  const doc = parseDocument(bodyText);
  if (typeof doc === 'string') return { status: 'invalid', reason: doc };
  const vars = doc['variables'];
  if (vars === null || typeof vars !== 'object' || Array.isArray(vars)) return { status: 'invalid', reason: 'no variables object' };
  const v = vars as Record<string, unknown>;

  const uuid = strVar(v, 'uuid');
  const ccCallId = strVar(v, 'cc_call_id');
  // ccard's carrier legs are the ones its bridge originates: outbound on FreeSWITCH, and they carry cc_call_id. An
  // inbound leg without it (the caller's leg, which FreeSWITCH posts for every call) cannot be one: answered here
  // without a database read, the same 'ignored' a lookup would give.
  if (ccCallId === undefined && strVar(v, 'direction') === 'inbound') return { status: 'ignored', reason: 'not_a_ccard_leg', uuid };
  const billsec = intVar(v, 'billsec') ?? 0n;
  const billmsec = intVar(v, 'billmsec');
  const answerUepoch = intVar(v, 'answer_uepoch');
  const answered = (answerUepoch !== undefined && answerUepoch > 0n) || billsec > 0n || (billmsec ?? 0n) > 0n;

  // The carrier leg's CDR of a call this process just finished (or is finishing) over the event socket, the usual
  // case: what the database would answer, without asking it (src/billing/finished-calls.ts).
  for (const id of [uuid, ccCallId]) {
    if (!isUuid(id)) continue;
    const done = await finishedCall(deps.pool, id);
    if (!done || (answered && done.how !== 'debited')) continue;
    if (billsec > MAX_SECONDS) return { status: 'invalid', reason: `implausible billsec ${billsec}` };
    const callId = id.toLowerCase();
    // Counted (ccard_cdrs_total by source and result) as the database path counts it.
    const { status } = await observeFinish({ source, answered }, async () => ({ status: answered ? ('duplicate' as const) : ('released' as const) }));
    return { status, callId, cardId: done.cardId };
  }

  // A call this process reserved has its pricing cached (src/billing/pricing-cache.ts): no read of its row (the
  // debit or release statement still finds it, or answers unknown_call). Otherwise the row says whose it is.
  let call: { callId: string; pricing: CallPricing } | undefined;
  for (const id of [uuid, ccCallId]) {
    const pricing = isUuid(id) ? cachedPricing(id) : undefined;
    if (pricing) {
      call = { callId: id!.toLowerCase(), pricing };
      break;
    }
  }
  if (!call) {
    let row = isUuid(uuid) ? await getCall(deps.pool, uuid) : undefined;
    if (!row && isUuid(ccCallId)) row = await getCall(deps.pool, ccCallId);
    // The row just read carries the call's pricing: the debit needs no second read of it.
    if (row) call = { callId: row.callId, pricing: { rate: row.rate, maxSeconds: row.maxSeconds, costAlgorithm: row.costAlgorithm } };
  }
  if (!call) return { status: 'ignored', reason: 'not_a_ccard_leg', uuid };
  if (billsec > MAX_SECONDS) return { status: 'invalid', reason: `implausible billsec ${billsec}` };

  const out = await finishCall(deps, {
    callId: call.callId,
    answered,
    billsec: Number(billsec),
    billmsec: billmsec !== undefined && billmsec <= MAX_SECONDS * 1000n ? Number(billmsec) : undefined,
    answeredAt: toDate(answerUepoch),
    endedAt: toDate(intVar(v, 'end_uepoch')),
    hangupCause: strVar(v, 'hangup_cause')?.slice(0, 64),
    source,
    pricing: call.pricing,
  });
  switch (out.status) {
    case 'debited':
      return {
        status: 'debited',
        callId: out.callId,
        cardId: out.cardId,
        billedSeconds: out.billedSeconds,
        cost: out.cost,
        uncollected: out.uncollected,
      };
    case 'duplicate':
      return { status: 'duplicate', callId: out.callId, cardId: out.cardId };
    case 'released':
      return { status: 'released', callId: out.callId, cardId: out.cardId };
    case 'unknown_call':
      return { status: 'ignored', reason: 'not_a_ccard_leg', uuid };
  }
}
