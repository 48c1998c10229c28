/**
 * FreeSWITCH's side of mod_xml_curl, as recorded on FreeSWITCH 1.11 (test/fixtures/freeswitch/xml_curl): the POST
 * it sends for a dialplan lookup (one per incoming call) and for a directory lookup (every authenticated REGISTER
 * or INVITE), byte for byte, and what it makes of the answer:
 * - dialplan: a document whose context is the asked one (or `global`) runs its matching extension; a document
 *   without a match leaves the call unrouted (404, NO_ROUTE_DESTINATION); "not found", a dead server, a non-200
 *   status or an unparsable body fall back to the static XML dialplan;
 * - directory: mod_sofia checks the device's digest against the answer's `password` or `a1-hash` param; a wrong
 *   password, "not found", a dead server or an HTTP error all give the device the same 403.
 */
import net from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import templates from './templates/xmlcurl-templates.json' with { type: 'json' };

type Fields = Array<[string, string]>;

/** mod_xml_curl's encoding: letters, digits and `- _ . ~ , /` as they are, every other byte %XX (uppercase). */
export function fsUrlEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~,/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function encodeFields(fields: Fields): string {
  return fields.map(([k, v]) => `${fsUrlEncode(k)}=${fsUrlEncode(v)}`).join('&');
}

/** Replaces the values of existing fields (order kept); names not in the template are appended. */
function withValues(base: Fields, values: Record<string, string | undefined>, drop: readonly string[] = []): Fields {
  const out: Fields = [];
  const left = new Map(Object.entries(values).filter(([, v]) => v !== undefined) as Array<[string, string]>);
  for (const [k, v] of base) {
    if (drop.includes(k)) continue;
    if (left.has(k)) {
      out.push([k, left.get(k)!]);
      left.delete(k);
    } else out.push([k, v]);
  }
  for (const [k, v] of left) out.push([k, v]);
  return out;
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

/** RFC 2617 digest response with qop=auth, as the device computes it and mod_sofia checks it. */
export function digestResponse(d: { ha1: string; method: string; uri: string; nonce: string; nc: string; cnonce: string; qop: string }): string {
  return md5(`${d.ha1}:${d.nonce}:${d.nc}:${d.cnonce}:${d.qop}:${md5(`${d.method}:${d.uri}`)}`);
}

export interface DirectoryLookup {
  method: 'REGISTER' | 'INVITE';
  /** The account (digest username = the directory `user`). */
  user: string;
  /** The challenge realm (= `domain`). */
  domain: string;
  /** The password the device uses to compute its digest. */
  password: string;
  /** INVITE: the dialled number (R-URI and To user). */
  destination?: string;
  nonce?: string;
  cnonce?: string;
  nc?: string;
  /** The device's source address (`ip`). */
  ip?: string;
}

/** The fields of a directory lookup, in the recorded order, with the device's digest computed from its password. */
export function directoryFields(l: DirectoryLookup): Fields {
  const base = (l.method === 'REGISTER' ? templates.directoryRegister : templates.directoryInvite) as Fields;
  const get = (k: string) => base.find(([n]) => n === k)![1];
  const nonce = l.nonce ?? randomUUID();
  const cnonce = l.cnonce ?? get('sip_auth_cnonce');
  const nc = l.nc ?? get('sip_auth_nc');
  const qop = get('sip_auth_qop');
  const dest = l.destination ?? '15559870000';
  const uri = l.method === 'REGISTER' ? get('sip_auth_uri') : `sip:${dest}@${get('sip_request_host')}:${get('sip_request_port')}`;
  const response = digestResponse({ ha1: md5(`${l.user}:${l.domain}:${l.password}`), method: l.method, uri, nonce, nc, cnonce, qop });
  return withValues(base, {
    key_value: l.domain,
    sip_auth_username: l.user,
    sip_auth_realm: l.domain,
    sip_auth_nonce: nonce,
    sip_auth_uri: uri,
    sip_to_user: l.method === 'REGISTER' ? l.user : dest,
    sip_from_user: l.user,
    sip_request_user: l.method === 'INVITE' ? dest : undefined,
    sip_auth_cnonce: cnonce,
    sip_auth_nc: nc,
    sip_auth_response: response,
    user: l.user,
    domain: l.domain,
    ip: l.ip,
  });
}

export interface DialplanLookup {
  /** Hunt-Destination-Number / Caller-Destination-Number. */
  destination: string;
  /** Hunt-Context / Caller-Context: the SIP profile's context (or the directory's user_context for a device). */
  context?: string;
  callerId?: string;
  uuid?: string;
  /** Channel variables set before routing (a device's directory variables), sent as variable_<name>. */
  variables?: Record<string, string>;
}

/** The fields of a dialplan lookup (163 in the recording), in the recorded order. */
export function dialplanFields(l: DialplanLookup): Fields {
  const base = templates.dialplan as Fields;
  const ctx = l.context ?? 'public';
  const uuid = l.uuid ?? randomUUID();
  const cid = l.callerId ?? '15551239999';
  const values: Record<string, string> = {};
  for (const p of ['Caller-', 'Hunt-']) {
    values[`${p}Destination-Number`] = l.destination;
    values[`${p}Context`] = ctx;
    values[`${p}Unique-ID`] = uuid;
    values[`${p}Caller-ID-Number`] = cid;
    values[`${p}ANI`] = cid;
  }
  Object.assign(values, {
    'Unique-ID': uuid,
    'Channel-Call-UUID': uuid,
    variable_uuid: uuid,
    variable_call_uuid: uuid,
    variable_sip_req_user: l.destination,
    variable_sip_to_user: l.destination,
    variable_sip_from_user: cid,
  });
  const fields = withValues(base, values);
  if (!l.variables) return fields;
  // The device's variables sit among the other variable_* fields, before the Hunt-* block.
  const at = fields.findIndex(([k]) => k.startsWith('Hunt-'));
  const extra: Fields = Object.entries(l.variables).map(([k, v]) => [`variable_${k}`, v]);
  return [...fields.slice(0, at), ...extra, ...fields.slice(at)];
}

/** The request bytes mod_xml_curl sends (libcurl's header order; Authorization only with gateway-credentials). */
export function xmlCurlRequest(url: string, body: string, credentials?: string): Buffer {
  const u = new URL(url);
  const auth = credentials ? `Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n` : '';
  const head =
    `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${auth}User-Agent: freeswitch-xml/1.0\r\nAccept: */*\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body, 'latin1')]);
}

/** status 0: no HTTP answer at all (error says why: ECONNREFUSED, timeout...). */
export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
  error?: string;
}

/** One lookup: a new TCP connection, one POST, the answer read to the end (FreeSWITCH waits: no timeout param). */
export function postXmlCurl(url: string, body: string, opts: { credentials?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  const u = new URL(url);
  const request = xmlCurlRequest(url, body, opts.credentials);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ status: 0, contentType: '', body: '', error: 'timeout' });
    }, opts.timeoutMs ?? 30_000);
    let expected = -1;
    let headerEnd = -1;
    const finish = () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return resolve({ status: 0, contentType: '', body: '', error: 'no HTTP answer' });
      const head = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const header = (n: string) => head.find((h) => h.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim() ?? '';
      resolve({ status, contentType: header('content-type'), body: all.subarray(end + 4).toString('utf8') });
    };
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      chunks.push(d);
      if (headerEnd < 0) {
        const all = Buffer.concat(chunks);
        headerEnd = all.indexOf('\r\n\r\n');
        if (headerEnd >= 0) {
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(all.subarray(0, headerEnd).toString('latin1'));
          if (m) expected = headerEnd + 4 + Number(m[1]);
        }
      }
      if (expected >= 0 && Buffer.concat(chunks).length >= expected) {
        sock.destroy();
        finish();
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: 0, contentType: '', body: '', error: (err as NodeJS.ErrnoException).code ?? err.message });
    });
    sock.on('end', () => {
      if (!sock.destroyed) sock.destroy();
      finish();
    });
  });
}

// A minimal XML reader: enough for FreeSWITCH documents (elements, attributes, entities, comments).
export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}

const decodeEntities = (s: string) =>
  s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)))
      : ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e.toLowerCase()]!,
  );

/** Parses a document; null when it is not well-formed (FreeSWITCH: "Error Parsing Result!"). */
export function parseXml(text: string): XmlNode | null {
  const root: XmlNode = { name: '#root', attrs: {}, children: [] };
  const stack = [root];
  const re = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<\/([A-Za-z_][\w.-]*)\s*>|<([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    if (m[6]) return null;
    if (m[5] !== undefined) {
      if (m[5].trim() && stack.length === 1) return null;
      continue;
    }
    if (m[1]) {
      const top = stack.pop()!;
      if (top.name !== m[1] || stack.length === 0) return null;
      continue;
    }
    if (m[2]) {
      const attrs: Record<string, string> = {};
      for (const a of m[3]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]!] = decodeEntities(a[2] ?? a[3] ?? '');
      const node: XmlNode = { name: m[2], attrs, children: [] };
      stack[stack.length - 1]!.children.push(node);
      if (!m[4]) stack.push(node);
    }
  }
  if (stack.length !== 1 || root.children.length !== 1) return null;
  return root.children[0]!;
}

const kids = (n: XmlNode | undefined, name: string) => n?.children.filter((c) => c.name === name) ?? [];

function section(answer: HttpAnswer): { kind: 'error'; why: string } | { kind: 'not-found' } | { kind: 'section'; node: XmlNode; name: string } {
  if (answer.status !== 200) return { kind: 'error', why: answer.status === 0 ? `HTTP error 0 (${answer.error})` : `HTTP error ${answer.status}` };
  const doc = parseXml(answer.body);
  if (!doc) return { kind: 'error', why: 'Error Parsing Result!' };
  const sec = kids(doc, 'section')[0];
  if (!sec) return { kind: 'error', why: 'no section' };
  if (sec.attrs.name === 'result' && kids(sec, 'result')[0]?.attrs.status === 'not found') return { kind: 'not-found' };
  return { kind: 'section', node: sec, name: sec.attrs.name ?? '' };
}

export type DialplanOutcome =
  | { outcome: 'route'; context: string; extension: string; actions: Array<{ application: string; data: string }> }
  /** FreeSWITCH goes on with its static XML dialplan. */
  | { outcome: 'fallback'; why: string }
  /** Not routed: `No Route, Aborting`, 404 with cause 3 (NO_ROUTE_DESTINATION) to the caller. */
  | { outcome: 'no-route'; why: string };

/** What mod_dialplan_xml does with the answer to a dialplan lookup. */
export function interpretDialplan(answer: HttpAnswer, l: DialplanLookup): DialplanOutcome {
  const s = section(answer);
  if (s.kind === 'error') return { outcome: 'fallback', why: s.why };
  if (s.kind === 'not-found') return { outcome: 'fallback', why: 'not found' };
  const asked = l.context ?? 'public';
  const contexts = kids(s.node, 'context');
  const ctx = contexts.find((c) => c.attrs.name === asked) ?? contexts.find((c) => c.attrs.name === 'global');
  if (!ctx) return { outcome: 'no-route', why: `Context ${asked} not found` };
  for (const ext of kids(ctx, 'extension')) {
    const conds = kids(ext, 'condition');
    const pass = conds.every((c) => {
      const field = c.attrs.field === 'destination_number' ? l.destination : undefined;
      if (field === undefined) return !c.attrs.field;
      return new RegExp(c.attrs.expression ?? '').test(field);
    });
    if (!conds.length || !pass) continue;
    const actions = conds.flatMap((c) => kids(c, 'action').map((a) => ({ application: a.attrs.application ?? '', data: a.attrs.data ?? '' })));
    return { outcome: 'route', context: ctx.attrs.name!, extension: ext.attrs.name ?? '', actions };
  }
  return { outcome: 'no-route', why: 'No Route, Aborting' };
}

export type DirectoryOutcome =
  /** 200 OK to the REGISTER / 100 Trying and routing for the INVITE; the variables go on the channel. */
  | { outcome: 'authorized'; variables: Record<string, string> }
  /** 403 Forbidden, identical for every reason (the device cannot tell them apart). */
  | { outcome: 'forbidden'; why: string };

/** What mod_sofia (sofia_reg_parse_auth) does with the answer to a directory lookup built by directoryFields. */
export function interpretDirectory(answer: HttpAnswer, fields: Fields): DirectoryOutcome {
  const f = new Map(fields);
  const user = f.get('user') ?? '';
  const domain = f.get('domain') ?? '';
  const s = section(answer);
  if (s.kind !== 'section' || s.name !== 'directory') return { outcome: 'forbidden', why: s.kind === 'error' ? s.why : `Can't find user [${user}@${domain}]` };
  const dom = kids(s.node, 'domain').find((d) => (d.attrs.name ?? '').toLowerCase() === domain.toLowerCase());
  const u = kids(dom, 'user').find((x) => x.attrs.id === user);
  if (!u) return { outcome: 'forbidden', why: `Can't find user [${user}@${domain}]` };
  const params = new Map(kids(kids(u, 'params')[0], 'param').map((p) => [p.attrs.name ?? '', p.attrs.value ?? '']));
  const a1 = params.get('a1-hash');
  const password = params.get('password');
  if (a1 === undefined && password === undefined) return { outcome: 'forbidden', why: 'no password' };
  const ha1 = a1 ?? md5(`${f.get('sip_auth_username')}:${f.get('sip_auth_realm')}:${password}`);
  const expected = digestResponse({
    ha1,
    method: f.get('sip_auth_method') ?? '',
    uri: f.get('sip_auth_uri') ?? '',
    nonce: f.get('sip_auth_nonce') ?? '',
    nc: f.get('sip_auth_nc') ?? '',
    cnonce: f.get('sip_auth_cnonce') ?? '',
    qop: f.get('sip_auth_qop') ?? '',
  });
  if (expected !== f.get('sip_auth_response')) return { outcome: 'forbidden', why: `SIP auth failure (${f.get('sip_auth_method')})` };
  const variables: Record<string, string> = {};
  for (const v of kids(kids(u, 'variables')[0], 'variable')) variables[v.attrs.name ?? ''] = v.attrs.value ?? '';
  return { outcome: 'authorized', variables };
}

/** FreeSWITCH's two bindings against one base URL (e.g. http://127.0.0.1:8041/fs). */
export class XmlCurlClient {
  constructor(
    private readonly baseUrl: string,
    private readonly opts: { credentials?: string; timeoutMs?: number } = {},
  ) {}

  async dialplan(l: DialplanLookup): Promise<DialplanOutcome> {
    const answer = await postXmlCurl(`${this.baseUrl}/dialplan`, encodeFields(dialplanFields(l)), this.opts);
    return interpretDialplan(answer, l);
  }

  async authenticate(l: DirectoryLookup): Promise<DirectoryOutcome> {
    const fields = directoryFields(l);
    const answer = await postXmlCurl(`${this.baseUrl}/directory`, encodeFields(fields), this.opts);
    return interpretDirectory(answer, fields);
  }
}

/**
 * The channel variables FreeSWITCH puts on the INVITE leg of a device it authenticated through the directory
 * (connect-reply.raw): the authentication's own, then the directory answer's <variables>.
 */
export function deviceChannelVariables(auth: { user: string; domain: string; variables: Record<string, string> }): Record<string, string> {
  return {
    sofia_profile_name: 'devices',
    sip_authorized: 'true',
    sip_auth_username: auth.user,
    sip_auth_realm: auth.domain,
    user_name: auth.user,
    domain_name: auth.domain,
    requested_user_name: auth.user,
    requested_domain_name: auth.domain,
    number_alias: auth.user,
    sip_number_alias: auth.user,
    ...auth.variables,
  };
}
