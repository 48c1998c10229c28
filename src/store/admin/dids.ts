import { z } from 'zod';
import { ADMIN_SETTING_COLUMNS } from '../access-numbers.ts';
import type { AdminContext } from './context.ts';
import { conflict, invalid, notFound, pgCode } from './errors.ts';
import { booleanInput, parseInput, phoneInput, wholeNumber } from './input.ts';

const gateway = z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a FreeSWITCH gateway name (letters, digits, _ . -)');
const prefixes = z.array(z.string().trim().regex(/^\d{1,20}$/, 'must be digits')).max(1000);

const didFields = {
  language: z.enum(['en', 'es']),
  auth: z.enum(['pin', 'cli', 'cli-then-pin']),
  gateway,
  failoverGateway: gateway.nullable(),
  minDigits: wholeNumber(3, 20),
  maxDigits: wholeNumber(3, 20),
  allowPrefix: prefixes,
  denyPrefix: prefixes,
  countryCode: z.string().trim().regex(/^\d{1,4}$/, 'must be 1 to 4 digits'),
  nationalPrefix: z.string().trim().regex(/^\d{0,4}$/, 'must be 0 to 4 digits'),
  pinLength: wholeNumber(4, 20),
  pinTries: wholeNumber(1, 10),
  bindCli: booleanInput,
  maxCallsPerSession: wholeNumber(1, 100),
  voucherRecharge: booleanInput,
  enabled: booleanInput,
};

export const didAddSchema = z.object({
  did: phoneInput,
  ...didFields,
  gateway: didFields.gateway,
  language: didFields.language.optional(),
  auth: didFields.auth.optional(),
  failoverGateway: didFields.failoverGateway.optional(),
  minDigits: didFields.minDigits.optional(),
  maxDigits: didFields.maxDigits.optional(),
  allowPrefix: prefixes.optional(),
  denyPrefix: prefixes.optional(),
  countryCode: didFields.countryCode.optional(),
  nationalPrefix: didFields.nationalPrefix.optional(),
  pinLength: didFields.pinLength.optional(),
  pinTries: didFields.pinTries.optional(),
  bindCli: didFields.bindCli.optional(),
  maxCallsPerSession: didFields.maxCallsPerSession.optional(),
  voucherRecharge: didFields.voucherRecharge.optional(),
  enabled: didFields.enabled.optional(),
});
export type DidAddInput = z.input<typeof didAddSchema>;
export const didEditSchema = z.object(didFields).partial().strict();
export type DidEditInput = z.input<typeof didEditSchema>;

// The settings' columns come from the one mapping the call flow also reads (store/access-numbers.ts).
const COLUMNS: Record<keyof typeof didFields, string> = { ...ADMIN_SETTING_COLUMNS, enabled: 'enabled' };

export interface Did {
  did: string;
  language: string;
  auth: string;
  gateway: string;
  failoverGateway: string | null;
  minDigits: number;
  maxDigits: number;
  allowPrefix: string[];
  denyPrefix: string[];
  countryCode: string;
  nationalPrefix: string;
  pinLength: number;
  pinTries: number;
  bindCli: boolean;
  maxCallsPerSession: number;
  voucherRecharge: boolean;
  enabled: boolean;
  createdAt: string;
}

type DidRow = Record<string, unknown> & { did: string; created_at: Date };

function toDid(r: DidRow): Did {
  const out: Record<string, unknown> = { did: r.did };
  for (const [k, col] of Object.entries(COLUMNS)) out[k] = r[col];
  out.createdAt = r.created_at.toISOString();
  return out as unknown as Did;
}

function mapDbError(err: unknown, did: string): never {
  const code = pgCode(err);
  if (code === '23505') throw conflict(`access number ${did} already exists`);
  if (code === '23514') throw invalid(`invalid settings for access number ${did}: ${(err as Error).message}`);
  throw err;
}

function checkDigits(min: number | undefined, max: number | undefined) {
  if (min !== undefined && max !== undefined && min > max) throw invalid('minDigits must not exceed maxDigits');
}

export async function addDid(ctx: AdminContext, raw: DidAddInput): Promise<Did> {
  const i = parseInput(didAddSchema, raw);
  checkDigits(i.minDigits, i.maxDigits);
  const cols = ['did'];
  const vals: unknown[] = [i.did];
  for (const [k, col] of Object.entries(COLUMNS)) {
    const v = (i as Record<string, unknown>)[k];
    if (v !== undefined) {
      cols.push(col);
      vals.push(v);
    }
  }
  try {
    const r = await ctx.pool.query<DidRow>(
      `INSERT INTO access_numbers (${cols.join(', ')}) VALUES (${vals.map((_, n) => `$${n + 1}`).join(', ')}) RETURNING *`,
      vals,
    );
    return toDid(r.rows[0]!);
  } catch (err) {
    mapDbError(err, i.did);
  }
}

export async function listDids(ctx: AdminContext): Promise<Did[]> {
  const r = await ctx.pool.query<DidRow>('SELECT * FROM access_numbers ORDER BY did');
  return r.rows.map(toDid);
}

export async function getDid(ctx: AdminContext, did: string): Promise<Did> {
  const d = parseInput(phoneInput, did, 'did');
  const r = await ctx.pool.query<DidRow>('SELECT * FROM access_numbers WHERE did = $1', [d]);
  if (!r.rowCount) throw notFound(`unknown access number ${d}`);
  return toDid(r.rows[0]!);
}

export async function editDid(ctx: AdminContext, did: string, raw: DidEditInput): Promise<Did> {
  const d = parseInput(phoneInput, did, 'did');
  const i = parseInput(didEditSchema, raw);
  checkDigits(i.minDigits, i.maxDigits);
  const sets: string[] = [];
  const vals: unknown[] = [d];
  for (const [k, col] of Object.entries(COLUMNS)) {
    const v = (i as Record<string, unknown>)[k];
    if (v !== undefined) {
      vals.push(v);
      sets.push(`${col} = $${vals.length}`);
    }
  }
  if (!sets.length) throw invalid('nothing to change: give at least one setting');
  try {
    const r = await ctx.pool.query<DidRow>(`UPDATE access_numbers SET ${sets.join(', ')} WHERE did = $1 RETURNING *`, vals);
    if (!r.rowCount) throw notFound(`unknown access number ${d}`);
    return toDid(r.rows[0]!);
  } catch (err) {
    if (err instanceof Error && 'httpStatus' in err) throw err;
    mapDbError(err, d);
  }
}

export async function removeDid(ctx: AdminContext, did: string): Promise<void> {
  const d = parseInput(phoneInput, did, 'did');
  const r = await ctx.pool.query('DELETE FROM access_numbers WHERE did = $1', [d]);
  if (!r.rowCount) throw notFound(`unknown access number ${d}`);
}
