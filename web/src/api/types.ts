/**
 * Response shapes of the API. The server's OpenAPI document types every request (schema.d.ts, generated) but
 * documents only error responses, so the answers are written here from the server's JSON helpers (cardJson,
 * seriesJson, cdrJson, ...). Money is always { value: decimal string, micros: integer string }: never a number.
 */
import type { paths } from './schema';

export interface Amount {
  value: string;
  micros: string;
}
export interface Page<T> {
  items: T[];
  hasMore: boolean;
}

export interface Series {
  id: string;
  number: string;
  name: string;
  count: number;
  currency: string;
  initialBalance: Amount;
  pinLength: number;
  initialStatus: string;
  rateTable: string;
  taxProfile: string | null;
  activationFee: Amount;
  maintenanceFee: Amount;
  maintenanceHours: number | null;
  expiryDate: string | null;
  expiryDays: number | null;
  maxCalls: number;
  selfcare: boolean;
  status: string;
  notes: string;
  createdAt: string;
}
export interface SeriesDetail extends Series {
  cardsByStatus: Record<string, number>;
  totalBalance: Amount;
}

export interface Card {
  serial: string;
  series: string;
  status: string;
  currency: string;
  balance: Amount;
  creditLimit: Amount;
  maxCalls: number;
  maxCallsOverride: number | null;
  rateTable: string;
  rateTableOverride: string | null;
  activatedAt: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
  note?: string;
}
export interface MoneyMove {
  serial: string;
  kind: 'topup' | 'adjustment';
  amount: Amount;
  balance: Amount;
  ref: string;
  applied: boolean;
}

export interface Did {
  did: string;
  [k: string]: unknown;
}
export interface CallerId {
  callerId: string;
  serial: string;
  [k: string]: unknown;
}
export interface RateTable {
  name: string;
  currency?: string;
  rates?: number;
  [k: string]: unknown;
}
export interface TaxProfile {
  name: string;
  percent: string;
  [k: string]: unknown;
}
export interface Cdr {
  callId: string;
  serial: string;
  series: string;
  did: string | null;
  callerId: string | null;
  destination: string;
  prefix: string | null;
  billsec: number;
  billedSeconds: number;
  cost: Amount;
  uncollected: Amount;
  hangupCause: string | null;
  answeredAt: string | null;
  endedAt: string | null;
  source: string;
  createdAt: string;
}


/** Answers the server documents (the console's endpoints): straight from the OpenAPI document. */
type Content<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: infer R }
  ? R extends { 200: infer A } ? Content<A> : R extends { 201: infer A } ? Content<A> : R extends { 202: infer A } ? Content<A> : never
  : never;
export type Me = Ok<'/auth/me', 'get'>;
export type Role = Me['role'];
export type CardGridPage = Ok<'/v1/cards/grid', 'get'>;
export type BulkResult = Ok<'/v1/cards/bulk', 'post'>;
export type CardOverview = Ok<'/v1/cards/{serial}/overview', 'get'>;
export type Job = Ok<'/v1/jobs/{id}', 'get'>;
export type LiveCalls = Ok<'/v1/calls/active', 'get'>;
export type LiveCall = LiveCalls['items'][number];
export type CostTrend = Ok<'/v1/reports/cost-trend', 'get'>;
export type CostPoint = CostTrend['series'][number];
export type Operator = Ok<'/v1/operators/{login}', 'get'>;
export type OperatorAdded = Ok<'/v1/operators', 'post'>;
export type ApiKey = Ok<'/v1/api-keys', 'get'>['items'][number];
export type ApiKeyCreated = Ok<'/v1/api-keys', 'post'>;
export type AuditPage = Ok<'/v1/audit', 'get'>;
export type AuditEntry = AuditPage['items'][number];
export type Preferences = Ok<'/v1/me/preferences', 'get'>;
export type MyLedger = Ok<'/selfcare/ledger', 'get'>;
export type MyRate = Ok<'/selfcare/rate', 'get'>;
export type MyCallerIds = Ok<'/selfcare/caller-ids', 'get'>;

/** Request bodies, straight from the OpenAPI document. */
type JsonBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { requestBody?: { content: { 'application/json': infer B } } }
  ? B
  : never;
export type SeriesCreateBody = JsonBody<'/v1/series', 'post'>;
export type SeriesEditBody = JsonBody<'/v1/series/{number}', 'patch'>;
export type CardBulkBody = JsonBody<'/v1/cards/bulk', 'post'>;
export type DidAddBody = JsonBody<'/v1/dids', 'post'>;
export type TaxAddBody = JsonBody<'/v1/tax-profiles', 'post'>;
type Query<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } } ? NonNullable<Q> : never;
export type CardGridQuery = Query<'/v1/cards/grid'>;
export type CdrQuery = Query<'/v1/cdrs'>;
export type CostTrendQuery = Query<'/v1/reports/cost-trend'>;
export type AuditQuery = Query<'/v1/audit'>;

/** Selfcare */
export interface MyCard {
  serial: string;
  status: string;
  currency: string;
  balance: Amount;
  expiresAt: string | null;
  lastUsedAt: string | null;
}
export interface MyCall {
  destination: string;
  answeredAt: string | null;
  endedAt: string | null;
  billedSeconds: number;
  cost: Amount;
}
