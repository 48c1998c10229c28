import { z } from 'zod';
import type { AdminContext } from './context.ts';
import { invalid } from './errors.ts';
import { dateInput, pageInput, parseInput } from './input.ts';

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  object: string | null;
  status: number;
  request: unknown;
  before: unknown;
  after: unknown;
}

export interface AuditRecord {
  actor: string;
  action: string;
  object: string | null;
  status: number;
  request?: unknown;
  before?: unknown;
  after?: unknown;
}

// `code`: a provisioning code (a credential for fresh SIP credentials); error bodies are never recorded.
const SECRET_KEYS = /^(password|pin|key|token|code|csrf.*)$/i;

/** Removes secrets from what is stored: passwords, PINs, API keys and tokens become "[redacted]". */
export function redact(v: unknown, depth = 0): unknown {
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.slice(0, 1000).map((x) => redact(x, depth + 1));
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, SECRET_KEYS.test(k) ? '[redacted]' : redact(x, depth + 1)]),
  );
}

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(redact(v), (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));

export async function recordAudit(ctx: Pick<AdminContext, 'pool'>, e: AuditRecord): Promise<void> {
  await ctx.pool.query(
    'INSERT INTO audit_log (actor, action, object, status, request, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [e.actor, e.action, e.object, e.status, json(e.request), json(e.before), json(e.after)],
  );
}

export const auditFilterSchema = z.object({
  actor: z.string().trim().min(1).max(200).optional(),
  /** An object ("card:300-000000001") or its kind ("card"). */
  object: z.string().trim().min(1).max(200).optional(),
  from: dateInput.optional(),
  to: dateInput.optional(),
  ...pageInput,
});
export type AuditFilterInput = z.input<typeof auditFilterSchema>;

/** Newest first. `actor` matches "operator:alice" exactly or every actor named alice ("alice"). */
export async function listAudit(ctx: AdminContext, raw: AuditFilterInput): Promise<{ items: AuditEntry[]; hasMore: boolean }> {
  const f = parseInput(auditFilterSchema, raw);
  if (f.from && f.to && f.from >= f.to) throw invalid('"from" must be before "to"');
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, ...v: unknown[]) => {
    let s = sql;
    for (const x of v) {
      params.push(x);
      s = s.replace('?', `$${params.length}`);
    }
    conds.push(s);
  };
  if (f.actor) add(f.actor.includes(':') ? 'actor = ?' : `split_part(actor, ':', 2) = ?`, f.actor);
  if (f.object) add(f.object.includes(':') ? 'object = ?' : `split_part(object, ':', 1) = ?`, f.object);
  if (f.from) add('at >= ?', f.from);
  if (f.to) add('at < ?', f.to);
  const r = await ctx.pool.query<{ id: bigint; at: Date; actor: string; action: string; object: string | null; status: number; request: unknown; before: unknown; after: unknown }>(
    `SELECT id, at, actor, action, object, status, request, before, after FROM audit_log
     ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${f.limit + 1} OFFSET ${f.offset}`,
    params,
  );
  return {
    items: r.rows.slice(0, f.limit).map((x) => ({
      id: x.id.toString(),
      at: x.at.toISOString(),
      actor: x.actor,
      action: x.action,
      object: x.object,
      status: x.status,
      request: x.request,
      before: x.before,
      after: x.after,
    })),
    hasMore: r.rows.length > f.limit,
  };
}
