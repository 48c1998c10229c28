import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { withTransaction } from '../db.ts';
import { randomString } from '../devices.ts';
import type { PinKeys } from '../pin.ts';
import type { AdminContext } from './context.ts';
import { addDevice, auditDevice, resetDevicePassword } from './devices.ts';
import { AdminError, invalid } from './errors.ts';
import { parseInput, serialInput, wholeNumber } from './input.ts';

/** Upper-case letters and digits without 0/O, 1/I (and no lower case): typed on a phone keyboard without doubt. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
/** 10 characters of 32 = 50 bits; shown as XXXXX-XXXXX. */
const CODE_LENGTH = 10;

/** A code as typed: case, spaces and dashes do not matter; the look-alikes O, I, L count as 0, 1, 1 (not in codes). */
export function normaliseCode(typed: string): string {
  return typed.toUpperCase().replace(/[\s-]/g, '');
}

function codeHash(keys: PinKeys, code: string): Buffer {
  return createHmac('sha256', keys.hashKey).update(`ccard-provision:${code}`).digest();
}

const durationInput = z
  .string()
  .trim()
  .regex(/^\d{1,4}[mhd]$/, 'must be a duration such as 30m, 12h or 7d')
  .transform((s) => Number(s.slice(0, -1)) * { m: 60, h: 3600, d: 86_400 }[s.at(-1) as 'm' | 'h' | 'd'])
  .refine((sec) => sec >= 60 && sec <= 90 * 86_400, 'must be between 1 minute and 90 days');

export const provisionCreateSchema = z.object({
  serial: serialInput,
  device: z.string().trim().regex(/^[A-Za-z0-9 _.-]{1,64}$/, 'must be a device name').optional(),
  expires: durationInput.default(7 * 86_400),
  uses: wholeNumber(1, 100).default(1),
});
export type ProvisionCreateInput = z.input<typeof provisionCreateSchema>;

export interface ProvisionCode {
  /** As shown to the cardholder: XXXXX-XXXXX. */
  code: string;
  serial: string;
  device: { username: string; name: string };
  uses: number;
  expiresAt: string;
}

/** Issues a provisioning code for a card's device (the named one, created when the card has none by that name). */
export async function createProvisionCode(ctx: AdminContext, raw: ProvisionCreateInput, realm: string, actor = 'operator'): Promise<ProvisionCode> {
  const i = parseInput(provisionCreateSchema, raw);
  let dev = i.device
    ? (
        await ctx.pool.query<{ id: bigint; username: string; name: string }>(
          'SELECT d.id, d.username, d.name FROM devices d JOIN cards c ON c.id = d.card_id WHERE c.serial = $1 AND d.name = $2',
          [i.serial, i.device],
        )
      ).rows[0]
    : undefined;
  if (!dev) {
    const added = await addDevice(ctx, { serial: i.serial, ...(i.device && { name: i.device }) }, realm, actor);
    dev = (await ctx.pool.query<{ id: bigint; username: string; name: string }>('SELECT id, username, name FROM devices WHERE username = $1', [added.username])).rows[0]!;
  }
  const code = randomString(CODE_LENGTH, CODE_ALPHABET);
  const r = await ctx.pool.query<{ expires_at: Date }>(
    `INSERT INTO provisioning_codes (code_hash, device_id, uses_left, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
    [codeHash(ctx.pinKeys, code), dev.id, i.uses, i.expires],
  );
  await auditDevice(ctx.pool, { action: 'provision.create', deviceId: dev.id, actor, detail: { uses: i.uses } });
  return {
    code: `${code.slice(0, 5)}-${code.slice(5)}`,
    serial: i.serial,
    device: { username: dev.username, name: dev.name },
    uses: i.uses,
    expiresAt: r.rows[0]!.expires_at.toISOString(),
  };
}

export const brandSchema = z
  .object({
    name: z.string().trim().max(100),
    logoUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })]),
    primaryColor: z.string().trim().regex(/^(#[0-9A-Fa-f]{6})?$/, 'must be #RRGGBB'),
    secondaryColor: z.string().trim().regex(/^(#[0-9A-Fa-f]{6})?$/, 'must be #RRGGBB'),
    supportNumber: z.string().trim().regex(/^(\+?[0-9 ()-]{3,30})?$/, 'must be a phone number'),
    topupUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })]),
    sipProxy: z.string().trim().regex(/^([A-Za-z0-9.-]{1,253}(:\d{1,5})?)?$/, 'must be host or host:port'),
    sipTransport: z.enum(['udp', 'tcp', 'tls']),
  })
  .partial()
  .strict();
export type BrandInput = z.input<typeof brandSchema>;
export type Brand = Required<z.output<typeof brandSchema>>;

const BRAND_COLUMNS = {
  name: 'name',
  logoUrl: 'logo_url',
  primaryColor: 'primary_color',
  secondaryColor: 'secondary_color',
  supportNumber: 'support_number',
  topupUrl: 'topup_url',
  sipProxy: 'sip_proxy',
  sipTransport: 'sip_transport',
} as const;

export async function getBrand(ctx: Pick<AdminContext, 'pool'>): Promise<Brand> {
  const r = await ctx.pool.query<Record<string, string>>('SELECT * FROM brand');
  const row = r.rows[0] ?? {};
  const out: Record<string, string> = {};
  for (const [k, col] of Object.entries(BRAND_COLUMNS)) out[k] = row[col] ?? (k === 'sipTransport' ? 'udp' : '');
  return out as Brand;
}

export async function setBrand(ctx: AdminContext, raw: BrandInput): Promise<Brand> {
  const i = parseInput(brandSchema, raw);
  const entries = Object.entries(i).filter(([, v]) => v !== undefined) as Array<[keyof typeof BRAND_COLUMNS, string]>;
  if (!entries.length) throw invalid('nothing to change: give at least one setting');
  const cols = entries.map(([k]) => BRAND_COLUMNS[k]);
  await ctx.pool.query(
    `INSERT INTO brand (id, ${cols.join(', ')}) VALUES (true, ${cols.map((_, n) => `$${n + 1}`).join(', ')})
     ON CONFLICT (id) DO UPDATE SET ${cols.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, updated_at = now()`,
    entries.map(([, v]) => v),
  );
  return getBrand(ctx);
}

export interface Provisioning {
  brand: Omit<Brand, 'sipProxy' | 'sipTransport'>;
  sip: { user: string; password: string; domain: string; proxy: string; transport: string };
}

/** What every unknown, used, expired or revoked code gets: one answer, no oracle. */
export const BAD_CODE = () => new AdminError('NOT_FOUND', 'unknown, used or expired provisioning code');

/**
 * Redeems a code: one use taken (row lock, so two redemptions of a one-use code cannot both succeed), a fresh
 * password set for the device (the only place it exists in clear is the answer), audited with the client address.
 */
export async function redeemProvisionCode(ctx: AdminContext, typed: unknown, ip: string, realm: string): Promise<Provisioning> {
  const code = typeof typed === 'string' ? normaliseCode(typed) : '';
  const valid = code.length === CODE_LENGTH && [...code].every((c) => CODE_ALPHABET.includes(c));
  const result = valid
    ? await withTransaction(ctx.pool, async (c) => {
        const r = await c.query<{ id: bigint; username: string; device_id: bigint; card_id: bigint }>(
          `SELECT p.id, d.username, d.id AS device_id, d.card_id FROM provisioning_codes p JOIN devices d ON d.id = p.device_id
            WHERE p.code_hash = $1 AND p.uses_left > 0 AND p.expires_at > now() AND d.enabled FOR UPDATE OF p`,
          [codeHash(ctx.pinKeys, code)],
        );
        const row = r.rows[0];
        if (!row) return null;
        await c.query('UPDATE provisioning_codes SET uses_left = uses_left - 1 WHERE id = $1', [row.id]);
        return resetDevicePassword(ctx, row.username, realm, { actor: 'provision', ip, action: 'provision.redeem' }, c);
      })
    : null;
  if (!result) {
    await auditDevice(ctx.pool, { action: 'provision.failed', actor: 'provision', ip });
    throw BAD_CODE();
  }
  const brand = await getBrand(ctx);
  const { sipProxy, sipTransport, ...visible } = brand;
  return {
    brand: visible,
    sip: { user: result.username, password: result.password, domain: result.realm, proxy: sipProxy || result.realm, transport: sipTransport },
  };
}

