import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AdminContext } from './context.ts';
import { conflict, notFound, pgCode } from './errors.ts';
import { parseInput } from './input.ts';

const nameInput = z.string().trim().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . @ -');

export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** Creates a key; the key itself is returned once and only its SHA-256 is stored. */
export async function createApiKey(ctx: AdminContext, name: string, reseller?: string): Promise<{ name: string; key: string; reseller?: string }> {
  const n = parseInput(nameInput, name, 'name');
  const key = `ccard_${randomBytes(24).toString('base64url')}`;
  let resellerId: string | null = null;
  if (reseller !== undefined) {
    const r = await ctx.pool.query<{ id: string }>('SELECT id::text AS id FROM resellers WHERE name = $1', [reseller.trim()]);
    if (!r.rows[0]) throw notFound(`unknown reseller "${reseller.trim()}"`);
    resellerId = r.rows[0].id;
  }
  try {
    await ctx.pool.query('INSERT INTO api_keys (name, key_hash, reseller_id) VALUES ($1, $2, $3)', [n, hashApiKey(key), resellerId]);
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`an API key named "${n}" already exists`);
    throw err;
  }
  return { name: n, key, ...(reseller !== undefined && { reseller: reseller.trim() }) };
}

export async function listApiKeys(ctx: AdminContext): Promise<Array<{ name: string; createdAt: string; revokedAt: string | null }>> {
  const r = await ctx.pool.query<{ name: string; created_at: Date; revoked_at: Date | null }>(
    'SELECT name, created_at, revoked_at FROM api_keys ORDER BY name',
  );
  return r.rows.map((x) => ({ name: x.name, createdAt: x.created_at.toISOString(), revokedAt: x.revoked_at?.toISOString() ?? null }));
}

export async function revokeApiKey(ctx: AdminContext, name: string): Promise<void> {
  const n = parseInput(nameInput, name, 'name');
  const r = await ctx.pool.query('UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL', [n]);
  if (!r.rowCount) throw notFound(`no active API key named "${n}"`);
}

/** The active key's name and the reseller it acts for (null: the operator), or null when the key is not valid. */
export async function apiKeyPrincipal(ctx: Pick<AdminContext, 'pool'>, key: string): Promise<{ name: string; resellerId: string | null } | null> {
  const r = await ctx.pool.query<{ name: string; reseller_id: string | null }>(
    'SELECT name, reseller_id::text AS reseller_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
    [hashApiKey(key)],
  );
  return r.rows[0] ? { name: r.rows[0].name, resellerId: r.rows[0].reseller_id } : null;
}

/** The name of the active key, or null. */
export async function verifyApiKey(ctx: Pick<AdminContext, 'pool'>, key: string): Promise<string | null> {
  const r = await ctx.pool.query<{ name: string }>('SELECT name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL', [
    hashApiKey(key),
  ]);
  return r.rows[0]?.name ?? null;
}
