/**
 * The b-leg's JSON CDR (the document mod_json_cdr posts and copy_json_cdr puts on the a-leg as b_leg_cdr),
 * built from the recorded document (f_copy_json_cdr.b_leg_cdr.json) with this call's facts, and the POST
 * exactly as mod_json_cdr sends it (encode=false, README "mod_json_cdr").
 */
import net from 'node:net';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { fsUrlEncode, quotedAsIs } from './codec.ts';
import { fsStamp } from './clock.ts';
import { fill, type Tokens } from './tokens.ts';
import templates from './templates/fs-templates.json' with { type: 'json' };
import ivrLegTemplate from './templates/ivr-leg-cdr.json' with { type: 'json' };

export interface BLegFacts {
  uuid: string;
  number: string;
  dialVars: Array<[string, string]>;
  createdUs: number;
  progressUs: number;
  answeredUs: number;
  bridgedUs: number;
  endUs: number;
  hangupCause: string;
  q850: number;
  sipHangupDisposition: string;
  billsec: number;
  billmsec: number;
  /** Apps the b-leg ran (execute_on_answer*): [name, data, stampUs]. */
  apps: Array<[string, string, number]>;
}

const Q850: Record<string, number> = {
  NORMAL_CLEARING: 16,
  USER_BUSY: 17,
  NO_ANSWER: 19,
  UNALLOCATED_NUMBER: 1,
  NORMAL_TEMPORARY_FAILURE: 41,
  ALLOTTED_TIMEOUT: 602,
  ORIGINATOR_CANCEL: 487,
  CALL_REJECTED: 21,
};
export const q850Of = (cause: string) => Q850[cause] ?? 0;

function deepFill(x: unknown, t: Tokens): unknown {
  if (typeof x === 'string') return fill(x, t);
  if (Array.isArray(x)) return x.map((v) => deepFill(v, t));
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deepFill(v, t)]));
  return x;
}

/** Variables of the b-leg CDR, plain (not url-encoded), in FreeSWITCH's order. */
export function bLegVariables(b: BLegFacts, t: Tokens): Array<[string, string]> {
  const computed = computedVariables(b);
  const out: Array<[string, string]> = [];
  for (const [k, v] of templates.bLegCdr.variables as Array<[string, string]>) {
    if (k in computed) {
      if (computed[k] !== '') out.push([k, computed[k]!]);
    } else out.push([k, fill(v, t)]);
    // dial-string {} variables sit right after originator in the recorded document
    if (k === 'originator') for (const dv of b.dialVars) out.push(dv);
  }
  return out;
}

/** The variables this call's facts decide (the rest come from the recorded document). */
function computedVariables(b: BLegFacts): Record<string, string> {
  const us = (v: number) => String(v);
  const s = (v: number) => String(Math.floor(v / 1e6));
  const stamp = (v: number) => (v ? fsStamp(v) : '');
  const answered = b.answeredUs > 0;
  const dur = b.endUs - b.createdUs;
  const billus = answered ? b.endUs - b.answeredUs : 0;
  const wait = answered ? b.answeredUs - b.createdUs : 0;
  const last = b.apps[b.apps.length - 1];
  return {
    hangup_cause: b.hangupCause,
    hangup_cause_q850: String(b.q850),
    sip_hangup_disposition: b.sipHangupDisposition,
    start_stamp: stamp(b.createdUs),
    profile_start_stamp: stamp(b.createdUs),
    answer_stamp: stamp(b.answeredUs),
    bridge_stamp: stamp(b.bridgedUs),
    progress_stamp: stamp(b.progressUs),
    end_stamp: stamp(b.endUs),
    start_epoch: s(b.createdUs),
    start_uepoch: us(b.createdUs),
    profile_start_epoch: s(b.createdUs),
    profile_start_uepoch: us(b.createdUs),
    answer_epoch: s(b.answeredUs),
    answer_uepoch: us(b.answeredUs),
    bridge_epoch: s(b.bridgedUs),
    bridge_uepoch: us(b.bridgedUs),
    progress_epoch: s(b.progressUs),
    progress_uepoch: us(b.progressUs),
    end_epoch: s(b.endUs),
    end_uepoch: us(b.endUs),
    duration: String(Math.floor(b.endUs / 1e6) - Math.floor(b.createdUs / 1e6)),
    billsec: String(b.billsec),
    answersec: String(answered ? Math.floor(b.answeredUs / 1e6) - Math.floor(b.createdUs / 1e6) : 0),
    waitsec: String(answered ? Math.floor(b.bridgedUs / 1e6) - Math.floor(b.createdUs / 1e6) : 0),
    flow_billsec: String(Math.floor(b.endUs / 1e6) - Math.floor(b.createdUs / 1e6)),
    mduration: String(Math.floor(dur / 1000)),
    billmsec: String(b.billmsec),
    answermsec: String(Math.floor(wait / 1000)),
    waitmsec: String(answered ? Math.floor((b.bridgedUs - b.createdUs) / 1000) : 0),
    flow_billmsec: String(Math.floor(dur / 1000)),
    uduration: String(dur),
    billusec: String(billus),
    answerusec: String(wait),
    waitusec: String(answered ? b.bridgedUs - b.createdUs : 0),
    flow_billusec: String(dur),
    last_app: last?.[0] ?? '',
    last_arg: last?.[1] ?? '',
    current_application: last?.[0] ?? '',
    current_application_data: last?.[1] ?? '',
    endpoint_disposition: answered ? 'ANSWER' : 'EARLY MEDIA',
    sip_term_status: b.sipHangupDisposition === 'recv_bye' ? '200' : '',
  };
}

/** The b-leg's JSON CDR text. `urlencodeValues` = the b_leg_cdr form (values url-encoded inside the JSON). */
export function bLegCdrJson(b: BLegFacts, t: Tokens, urlencodeValues: boolean): string {
  return (compiled ??= compileCdr()).fast(b, t, urlencodeValues) ?? bLegCdrJsonSlow(b, t, urlencodeValues);
}

/** bLegCdrJson built the straightforward way (filled document, JSON.stringify); the reference for the fast path. */
export function bLegCdrJsonSlow(b: BLegFacts, t: Tokens, urlencodeValues: boolean): string {
  const doc = deepFill(templates.bLegCdr.doc, t) as Record<string, unknown> & {
    callflow: Array<{ times: Record<string, string> }>;
  };
  const vars = Object.fromEntries(
    bLegVariables(b, t).map(([k, v]) => [k, urlencodeValues ? fsUrlEncode(v) : v] as [string, string]),
  );
  const times = doc.callflow[0]!.times;
  times.created_time = times.profile_created_time = String(b.createdUs);
  times.progress_time = String(b.progressUs);
  times.answered_time = String(b.answeredUs);
  times.bridged_time = String(b.bridgedUs);
  times.hangup_time = String(b.endUs);
  const ordered: Record<string, unknown> = {
    'core-uuid': doc['core-uuid'],
    switchname: doc.switchname,
    channel_data: doc.channel_data,
    callStats: doc.callStats,
    variables: vars,
  };
  if (b.apps.length)
    ordered.app_log = { applications: b.apps.map(([n, d, ts]) => ({ app_name: n, app_data: d, app_stamp: String(ts) })) };
  ordered.callflow = doc.callflow;
  return JSON.stringify(ordered);
}

/**
 * The CDR as JSON text with holes, compiled once from the template: the document around the variables is
 * JSON.stringify of the template with {{TOKEN}} and time placeholders left in (tokens only occur in values, and
 * JSON.stringify of a filled string is the stringified template with each token's escaped text put in); each
 * variable that does not depend on the call is pre-serialized as `"name":"value"` in both forms.
 * `fast` returns undefined where JSON.stringify of an object would do something else (a duplicate or array-index
 * key among the dial-string variables, a token value with a lone surrogate); bLegCdrJsonSlow handles those.
 */
type Piece = string | { token: string } | { time: string };
interface CompiledCdr {
  fast(b: BLegFacts, t: Tokens, urlencodeValues: boolean): string | undefined;
}
let compiled: CompiledCdr | undefined;

const TOKEN_RE = /\{\{([A-Z_]+)\}\}/g;
/** Splits text at {{TOKEN}}s (what fill() replaces). */
function splitTokens(text: string, out: Piece[]): void {
  let from = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    if (m.index! > from) out.push(text.slice(from, m.index));
    out.push({ token: m[1]! });
    from = m.index! + m[0].length;
  }
  if (from < text.length) out.push(text.slice(from));
}

/** JSON.stringify(v) for a string, with a shortcut for the usual value that needs no escaping. */
function jsonStr(v: string): string {
  return quotedAsIs(v) ?? JSON.stringify(v);
}
function encValue(v: string): string {
  return jsonStr(fsUrlEncode(v));
}

const TIME_KEYS = ['created_time', 'profile_created_time', 'progress_time', 'answered_time', 'bridged_time', 'hangup_time'];
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;
const isArrayIndex = (k: string) => ARRAY_INDEX.test(k) && Number(k) < 4294967295;

function compileCdr(): CompiledCdr {
  const doc = templates.bLegCdr.doc as Record<string, unknown> & { callflow: Array<{ times: Record<string, string> }> };
  const tvars = templates.bLegCdr.variables as Array<[string, string]>;
  const computedKeys = new Set(Object.keys(computedVariables({ apps: [] } as unknown as BLegFacts)));
  const templateKeys = new Set(tvars.map(([k]) => k));
  // keys must come out in template order with no token in a key: check once, else always the slow path
  let ok = templateKeys.size === tvars.length && tvars.every(([k]) => !isArrayIndex(k) && !(k in {}));
  const noTokenKeys = (x: unknown): boolean =>
    Array.isArray(x) ? x.every(noTokenKeys) : x && typeof x === 'object' ? Object.entries(x).every(([k, v]) => !k.includes('{{') && noTokenKeys(v)) : true;
  ok &&= noTokenKeys(doc);
  const times = doc.callflow?.[0]?.times;
  ok &&= !!times && TIME_KEYS.every((k) => k in times);
  if (!ok) return { fast: () => undefined };

  // document head (up to and including the callStats value) and tail (callflow), with holes
  const MARK = '\u0001TIME:';
  const head: Piece[] = [];
  const headText = JSON.stringify({ 'core-uuid': doc['core-uuid'], switchname: doc.switchname, channel_data: doc.channel_data, callStats: doc.callStats });
  splitTokens(headText.slice(0, -1), head);
  const callflow = JSON.parse(JSON.stringify(doc.callflow)) as Array<{ times: Record<string, string> }>;
  for (const k of TIME_KEYS) callflow[0]!.times[k] = MARK + k;
  const tail: Piece[] = [];
  const cfText = JSON.stringify(callflow);
  const markJson = JSON.stringify(MARK).slice(1, -1);
  const timeRe = new RegExp(`"${markJson.replace(/\\/g, '\\\\')}([a-z_]+)"`, 'g');
  let from = 0;
  for (const m of cfText.matchAll(timeRe)) {
    splitTokens(cfText.slice(from, m.index), tail);
    tail.push({ time: m[1]! });
    from = m.index! + m[0].length;
  }
  splitTokens(cfText.slice(from), tail);

  // variables: per template entry, either pre-serialized fragments or what to compute
  interface VarSlot {
    key: string;
    keyJson: string;
    computed: boolean;
    raw: string | undefined;
    enc: string | undefined;
    parts: Piece[] | undefined;
    originator: boolean;
  }
  const slots: VarSlot[] = tvars.map(([k, v]) => {
    const keyJson = JSON.stringify(k) + ':';
    const slot: VarSlot = {
      key: k,
      keyJson,
      computed: computedKeys.has(k),
      raw: undefined,
      enc: undefined,
      parts: undefined,
      originator: k === 'originator',
    };
    if (slot.computed) return slot;
    if (v.includes('{{')) {
      const parts: Piece[] = [];
      splitTokens(v, parts);
      if (parts.some((p) => typeof p !== 'string')) {
        slot.parts = parts;
        return slot;
      }
    }
    slot.raw = keyJson + JSON.stringify(v);
    slot.enc = keyJson + JSON.stringify(fsUrlEncode(v));
    return slot;
  });

  const tok = (t: Tokens, name: string) => (t as unknown as Record<string, string | undefined>)[name];
  const fillParts = (parts: Piece[], t: Tokens, json: boolean): string => {
    let s = '';
    for (const p of parts) {
      if (typeof p === 'string') s += p;
      else if ('token' in p) {
        const v = tok(t, p.token);
        s += v === undefined ? `{{${p.token}}}` : json ? jsonStr(v).slice(1, -1) : v;
      }
    }
    return s;
  };
  const wellFormed = (v: string) => (v as unknown as { isWellFormed?: () => boolean }).isWellFormed?.() ?? !/[\ud800-\udfff]/.test(v);

  return {
    fast(b, t, urlencodeValues) {
      for (const k in t) {
        const v = tok(t, k);
        if (typeof v === 'string' && !wellFormed(v)) return undefined;
      }
      const seen = new Set<string>();
      for (const [k] of b.dialVars) {
        if (templateKeys.has(k) || isArrayIndex(k) || seen.has(k)) return undefined;
        seen.add(k);
      }
      const computed = computedVariables(b);
      const times: Record<string, string> = {
        created_time: String(b.createdUs),
        profile_created_time: String(b.createdUs),
        progress_time: String(b.progressUs),
        answered_time: String(b.answeredUs),
        bridged_time: String(b.bridgedUs),
        hangup_time: String(b.endUs),
      };
      const value = urlencodeValues ? encValue : jsonStr;
      let out = fillParts(head, t, true) + ',"variables":{';
      let first = true;
      for (const slot of slots) {
        let frag: string | undefined;
        if (slot.computed) {
          const v = computed[slot.key]!;
          if (v !== '') frag = slot.keyJson + value(v);
        } else if (slot.parts) frag = slot.keyJson + value(fillParts(slot.parts, t, false));
        else frag = urlencodeValues ? slot.enc : slot.raw;
        if (frag !== undefined) {
          out += first ? frag : ',' + frag;
          first = false;
        }
        if (slot.originator)
          for (const [k, v] of b.dialVars) {
            out += (first ? '' : ',') + JSON.stringify(k) + ':' + value(v);
            first = false;
          }
      }
      out += '}';
      if (b.apps.length)
        out += ',"app_log":' + JSON.stringify({ applications: b.apps.map(([n, d, ts]) => ({ app_name: n, app_data: d, app_stamp: String(ts) })) });
      out += ',"callflow":';
      for (const p of tail) {
        if (typeof p === 'string') out += p;
        else if ('token' in p) {
          const v = tok(t, p.token);
          out += v === undefined ? `{{${p.token}}}` : jsonStr(v).slice(1, -1);
        } else out += jsonStr(times[p.time]!);
      }
      return out + '}';
    },
  };
}

/**
 * POSTs one CDR like mod_json_cdr (encode=false): `POST <path>?uuid=<uuid>`, exact header set, retries with a
 * delay (retries=3 -> 4 attempts). Resolves with the HTTP status of the last attempt (0 = no answer).
 */
export async function postJsonCdr(
  url: string,
  uuid: string,
  body: string,
  opts: { retries: number; delayMs: number; sleep: (ms: number) => Promise<unknown>; cred?: string | undefined },
): Promise<number> {
  const u = new URL(url);
  const buf = Buffer.from(body, 'utf8');
  const auth = opts.cred ? `Authorization: Basic ${Buffer.from(opts.cred, 'utf8').toString('base64')}\r\n` : '';
  const head =
    `POST ${u.pathname}${u.search}?uuid=${uuid} HTTP/1.1\r\nHost: ${u.host}\r\n${auth}` +
    `User-Agent: freeswitch-json/1.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: ${buf.length}\r\n\r\n`;
  let status = 0;
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (attempt > 0) await opts.sleep(opts.delayMs);
    status = await new Promise<number>((resolve) => {
      const sock = net.connect(Number(u.port || 80), u.hostname);
      let got = '';
      const done = (v: number) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(5000, () => done(0));
      sock.on('connect', () => sock.write(Buffer.concat([Buffer.from(head), buf])));
      sock.on('data', (d) => {
        got += d.toString('latin1');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
        if (m && got.includes('\r\n\r\n')) done(Number(m[1]));
      });
      sock.on('error', () => done(0));
      sock.on('end', () => done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0)));
    });
    if (status >= 200 && status < 300) return status;
  }
  return status;
}

/**
 * Writes a CDR file as mod_json_cdr does (process_cdr for log-dir, backup_cdr for err-log-dir): <dir>/<uuid>.cdr.json
 * opened O_WRONLY|O_CREAT|O_TRUNC mode 0666, the JSON written, then "\n" in a second write, closed. Not atomic:
 * a reader may see it half-written. `between` runs between the two writes (tests use it to look at that moment).
 */
export async function writeCdrFile(dir: string, uuid: string, body: string, between?: () => Promise<void>): Promise<string> {
  const file = path.join(dir, `${uuid}.cdr.json`);
  const fh = await open(file, 'w', 0o666);
  try {
    await fh.write(body);
    if (between) await between();
    await fh.write('\n');
  } finally {
    await fh.close();
  }
  return file;
}

/** backup_cdr(): the first err-log-dir where the file can be opened gets it. undefined when none could. */
export async function backupCdr(dirs: readonly string[], uuid: string, body: string): Promise<string | undefined> {
  for (const dir of dirs) {
    try {
      return await writeCdrFile(dir, uuid, body);
    } catch {
      // mod_json_cdr logs "Can't open" and tries the next directory
    }
  }
  return undefined;
}

/** The recorded IVR leg's document (a_success, json_cdr/049-*.http: 9,997 bytes) and the uuids in it. */
const IVR_TEMPLATE = JSON.stringify(ivrLegTemplate);
const RECORDED_IVR_UUID = '2e5a0914-572f-492b-91f7-e21f07baa210';
const RECORDED_B_UUID = 'd0004b13-8661-4a02-ac6a-3b4ae546a2bf';

/**
 * The IVR (caller's) leg's own JSON CDR as mod_json_cdr posts it: the recorded document with this call's uuids and
 * this call's app_log (a longer IVR makes a longer document, as on a real switch). ccard never bills this leg; it
 * is here for its size and its cost to the receiver.
 */
export function ivrLegCdrJson(uuid: string, bLegUuid: string | undefined, apps: ReadonlyArray<{ name: string; arg: string; startUs: number }>): string {
  const log = JSON.stringify({
    applications: [
      { app_name: 'socket', app_data: '127.0.0.1:8040 async full', app_stamp: String(apps[0]?.startUs ?? 0) },
      ...apps.map((a) => (a.arg ? { app_name: a.name, app_data: a.arg, app_stamp: String(a.startUs) } : { app_name: a.name, app_stamp: String(a.startUs) })),
    ],
  });
  const doc = IVR_TEMPLATE.replace(/"app_log":\{"applications":\[.*?\]\}/, () => `"app_log":${log}`);
  return doc.replaceAll(RECORDED_IVR_UUID, uuid).replaceAll(RECORDED_B_UUID, bLegUuid ?? '');
}
