/**
 * The one module that talks to the server. Pages call these functions; they never build URLs or call fetch.
 * Operators: the session cookie (HttpOnly, set by POST /auth/login) rides along; every state-changing request
 * carries the session's CSRF token as X-CSRF-Token. Cardholders: a bearer token from POST /selfcare/login, kept in
 * sessionStorage (gone when the tab closes).
 */
import type * as T from './types';

/** A failed request: the server's { error: { code, message, details } }, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
  /** The field a message names ("count: must be a whole number" -> "count"), if any. */
  get field(): string | undefined {
    const m = /^([A-Za-z][\w.]*): /.exec(this.message);
    return m?.[1]?.split('.')[0];
  }
  /** The message without its field prefix, to show next to that field. */
  get fieldMessage(): string {
    return this.field ? this.message.slice(this.message.indexOf(': ') + 2) : this.message;
  }
}

let csrfToken = '';
let onUnauthorized: () => void = () => {};
/** Called when the session is gone (401 on an operator request): the app shows the login page. */
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

type Params = Record<string, string | number | boolean | undefined | null>;
export function queryString(q: Params = {}): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

interface RequestOptions {
  query?: Params;
  body?: unknown;
  /** A raw text body (rate CSV) with its content type. */
  text?: { body: string; type: string };
  headers?: Record<string, string>;
  bearer?: string;
}

async function request<R>(method: string, path: string, o: RequestOptions = {}): Promise<R> {
  const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
  let body: BodyInit | undefined;
  if (o.text) {
    headers['content-type'] = o.text.type;
    body = o.text.body;
  } else if (o.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.body);
  }
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  if (o.bearer) headers.authorization = `Bearer ${o.bearer}`;
  let res: Response;
  try {
    res = await fetch(path + queryString(o.query), { method, headers, body, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'NETWORK', 'the server cannot be reached; check the connection and try again');
  }
  if (res.status === 204) return undefined as R;
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string; details?: string[] } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `the server answered ${res.status}`, e?.details ?? []);
    if (res.status === 401 && !o.bearer && !path.startsWith('/auth/login')) onUnauthorized();
    throw err;
  }
  return json as R;
}

const enc = encodeURIComponent;

// ---- operator session ----
export const auth = {
  async login(login: string, password: string): Promise<T.Me> {
    return rememberMe(await request<T.Me>('POST', '/auth/login', { body: { login, password } }));
  },
  async me(): Promise<T.Me> {
    return rememberMe(await request<T.Me>('GET', '/auth/me'));
  },
  async logout(everywhere = false): Promise<void> {
    await request('POST', everywhere ? '/auth/logout-all' : '/auth/logout', { body: {} });
    csrfToken = '';
  },
};
/** /auth/me and /auth/login answer the operator and the session's CSRF token, which every write then carries. */
function rememberMe(me: T.Me): T.Me {
  csrfToken = me.csrfToken;
  return me;
}

// ---- series ----
export const series = {
  list: () => request<{ items: T.Series[] }>('GET', '/v1/series').then((r) => r.items),
  get: (n: string) => request<T.SeriesDetail>('GET', `/v1/series/${enc(n)}`),
  /** Starts generating the series in the background (any size): follow the job with jobs.get. */
  create: (b: T.SeriesCreateBody) => request<T.Job>('POST', '/v1/jobs/series', { body: b }),
  edit: (n: string, b: T.SeriesEditBody) => request<T.Series>('PATCH', `/v1/series/${enc(n)}`, { body: b }),
};

export const jobs = {
  get: (id: string) => request<T.Job>('GET', `/v1/jobs/${enc(id)}`),
};

// ---- cards ----
export const cards = {
  /** The grid: the server filters, sorts (serial, balance, lastUsedAt) and pages, and counts the matches. */
  grid: (q: T.CardGridQuery) => request<T.CardGridPage>('GET', '/v1/cards/grid', { query: q as Params }),
  bulk: (b: T.CardBulkBody) => request<T.BulkResult>('POST', '/v1/cards/bulk', { body: b }),
  overview: (serial: string) => request<T.CardOverview>('GET', `/v1/cards/${enc(serial)}/overview`),
  setStatus: (serial: string, status: string) => request<T.Card>('POST', `/v1/cards/${enc(serial)}/status`, { body: { status } }),
  /** idempotencyKey: made once per dialog, so a double click or a retry credits once. */
  topUp: (serial: string, amount: string, reason: string, idempotencyKey: string) =>
    request<T.MoneyMove>('POST', `/v1/cards/${enc(serial)}/topup`, { body: { amount, reason }, headers: { 'idempotency-key': idempotencyKey } }),
  adjust: (serial: string, amount: string, reason: string, idempotencyKey: string) =>
    request<T.MoneyMove>('POST', `/v1/cards/${enc(serial)}/adjust`, { body: { amount, reason }, headers: { 'idempotency-key': idempotencyKey } }),
  /** A link that downloads the current search (the browser streams it to disk). */
  exportUrl: (q: Params, format: 'csv' | 'xlsx', withPins = false) =>
    `/v1/cards/export${queryString({ ...q, limit: undefined, offset: undefined, sort: undefined, dir: undefined, format, withPins: withPins || undefined, confirm: withPins ? 'pins' : undefined })}`,
};

// ---- access numbers, caller ids, rates, tax ----
export const dids = {
  list: () => request<{ items: T.Did[] }>('GET', '/v1/dids').then((r) => r.items),
  add: (b: T.DidAddBody) => request<T.Did>('POST', '/v1/dids', { body: b }),
  edit: (did: string, b: Record<string, unknown>) => request<T.Did>('PATCH', `/v1/dids/${enc(did)}`, { body: b }),
  remove: (did: string) => request<void>('DELETE', `/v1/dids/${enc(did)}`),
};
export const callerIds = {
  list: (serial?: string) => request<{ items: T.CallerId[] }>('GET', '/v1/caller-ids', { query: { serial } }).then((r) => r.items),
  add: (callerId: string, serial: string) => request<T.CallerId>('POST', '/v1/caller-ids', { body: { callerId, serial } }),
  remove: (callerId: string) => request<void>('DELETE', `/v1/caller-ids/${enc(callerId)}`),
};
export const rates = {
  tables: () => request<{ items: T.RateTable[] }>('GET', '/v1/rates').then((r) => r.items),
  rates: (table: string, q: Params) => request<Record<string, unknown>>('GET', `/v1/rates/${enc(table)}`, { query: q }),
  import: (table: string, csv: string, merge: boolean) =>
    request<Record<string, unknown>>('PUT', `/v1/rates/${enc(table)}`, { text: { body: csv, type: 'text/csv' }, query: { merge: merge || undefined } }),
  exportUrl: (table: string) => `/v1/rates/${enc(table)}/export`,
};
export const tax = {
  list: () => request<{ items: T.TaxProfile[] }>('GET', '/v1/tax-profiles').then((r) => r.items),
  add: (b: T.TaxAddBody) => request<T.TaxProfile>('POST', '/v1/tax-profiles', { body: b }),
  remove: (name: string) => request<void>('DELETE', `/v1/tax-profiles/${enc(name)}`),
};

// ---- calls ----
export const cdrs = {
  search: (q: T.CdrQuery) => request<T.Page<T.Cdr>>('GET', '/v1/cdrs', { query: q as Params }),
  exportUrl: (q: Params) => `/v1/cdrs/export${queryString({ ...q, limit: undefined, offset: undefined })}`,
};
export const reports = {
  /** Groups by card, series or destination, and the per-day or per-hour series for the chart. */
  trend: (q: T.CostTrendQuery) => request<T.CostTrend>('GET', '/v1/reports/cost-trend', { query: q as Params }),
};
export const live = {
  /** Server-sent events: an event "calls" with every call in progress, each second. */
  subscribe(onCalls: (calls: T.LiveCall[]) => void, onState: (connected: boolean) => void): () => void {
    const es = new EventSource('/v1/calls/live', { withCredentials: true });
    es.onopen = () => onState(true);
    es.onerror = () => onState(false);
    const handle = (ev: MessageEvent<string>) => {
      try {
        onCalls((JSON.parse(ev.data) as T.LiveCalls).items);
      } catch {
        /* a malformed event is skipped; the next one carries the whole list */
      }
    };
    es.addEventListener('calls', handle as EventListener);
    return () => es.close();
  },
};

// ---- administration ----
export const operators = {
  list: () => request<{ items: T.Operator[] }>('GET', '/v1/operators').then((r) => r.items),
  add: (login: string, role: T.Role, password: string) =>
    request<T.OperatorAdded>('POST', '/v1/operators', { body: { login, role, ...(password && { password }) } }),
  edit: (login: string, b: { role?: T.Role; password?: string }) => request<T.Operator>('PATCH', `/v1/operators/${enc(login)}`, { body: b }),
  remove: (login: string) => request<void>('DELETE', `/v1/operators/${enc(login)}`),
};
export const apiKeys = {
  list: () => request<{ items: T.ApiKey[] }>('GET', '/v1/api-keys').then((r) => r.items),
  create: (name: string) => request<T.ApiKeyCreated>('POST', '/v1/api-keys', { body: { name } }),
  revoke: (name: string) => request<void>('DELETE', `/v1/api-keys/${enc(name)}`),
};
export const audit = {
  list: (q: T.AuditQuery) => request<T.AuditPage>('GET', '/v1/audit', { query: q as Params }),
};
/** The operator's own settings (the card grid's columns, its page size), kept on the server. */
export const preferences = {
  get: () => request<T.Preferences>('GET', '/v1/me/preferences'),
  set: (p: T.Preferences) => request<T.Preferences>('PUT', '/v1/me/preferences', { body: p }),
};

// ---- cardholder self-care ----
const TOKEN = 'ccard.selfcare';
export const selfcare = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN);
  },
  async login(serial: string, pin: string): Promise<void> {
    const r = await request<{ token: string; expiresAt: string }>('POST', '/selfcare/login', { body: { serial, pin } });
    sessionStorage.setItem(TOKEN, r.token);
  },
  logout(): void {
    sessionStorage.removeItem(TOKEN);
  },
  me: () => request<T.MyCard>('GET', '/selfcare/me', { bearer: selfcare.token ?? '' }),
  calls: (q: Params) => request<T.Page<T.MyCall>>('GET', '/selfcare/calls', { query: q, bearer: selfcare.token ?? '' }),
  ledger: (q: Params) => request<T.MyLedger>('GET', '/selfcare/ledger', { query: q, bearer: selfcare.token ?? '' }),
  /** What a call to this number costs per minute with this card. */
  rate: (number: string) => request<T.MyRate>('GET', '/selfcare/rate', { query: { number }, bearer: selfcare.token ?? '' }),
  callerIds: () => request<T.MyCallerIds>('GET', '/selfcare/caller-ids', { bearer: selfcare.token ?? '' }),
  bind: (callerId: string) => request<unknown>('POST', '/selfcare/caller-ids', { body: { callerId }, bearer: selfcare.token ?? '' }),
  unbind: (callerId: string) => request<void>('DELETE', `/selfcare/caller-ids/${enc(callerId)}`, { bearer: selfcare.token ?? '' }),
};
