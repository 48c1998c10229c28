import { z } from 'zod';
import type { PoolClient } from 'pg';
import { withTransaction } from '../db.ts';
import { a1Hash, generateDevicePassword, generateDeviceUsername } from '../devices.ts';
import type { AdminContext } from './context.ts';
import { recordAudit } from './audit.ts';
import { conflict, invalid, notFound, pgCode } from './errors.ts';
import { booleanInput, parseInput, serialInput, wholeNumber } from './input.ts';

const nameInput = z.string().trim().regex(/^[A-Za-z0-9 _.-]{1,64}$/, 'must be 1 to 64 letters, digits, spaces, _ . -');
export const usernameInput = z.string().trim().regex(/^[0-9]{6,20}$/, 'must be the device\'s SIP user (6 to 20 digits)');

export const deviceAddSchema = z.object({
  serial: serialInput,
  name: nameInput.optional(),
  lines: wholeNumber(1, 100).optional(),
});
export type DeviceAddInput = z.input<typeof deviceAddSchema>;
export const deviceEditSchema = z.object({ name: nameInput, lines: wholeNumber(1, 100), enabled: booleanInput }).partial().strict();
export type DeviceEditInput = z.input<typeof deviceEditSchema>;

export interface Device {
  username: string;
  name: string;
  serial: string;
  realm: string;
  lines: number;
  enabled: boolean;
  passwordSetAt: string;
  createdAt: string;
}

/** A device with its password: the only time the password exists in clear. */
export interface DeviceWithPassword extends Device {
  password: string;
}

type Row = { id: bigint; card_id: bigint; username: string; name: string; serial: string; realm: string; lines: number; enabled: boolean; password_set_at: Date; created_at: Date };

const SELECT = `SELECT d.id, d.card_id, d.username, d.name, c.serial, d.realm, d.lines, d.enabled, d.password_set_at, d.created_at
  FROM devices d JOIN cards c ON c.id = d.card_id`;

const toDevice = (r: Row): Device => ({
  username: r.username,
  name: r.name,
  serial: r.serial,
  realm: r.realm,
  lines: r.lines,
  enabled: r.enabled,
  passwordSetAt: r.password_set_at.toISOString(),
  createdAt: r.created_at.toISOString(),
});

/** Actors of /v1 requests ("operator:alice", "apikey:ci"; "api" from older callers): the API's audit hook records those. */
const recordedByApi = (actor: string) => actor === 'api' || /^(operator|apikey):/.test(actor);

/**
 * A security-relevant device event: a row in device_audit (device and card ids, client address) and, unless the
 * API's audit hook already records the request (a /v1 write, with its request, before and after), one in the
 * console's audit log too, so `ccard audit list` and GET /v1/audit show provisioning redemptions (actor
 * `provision:<address>`, failures with status 404) and CLI changes (actor `cli:local`). See docs/design.md.
 */
export async function auditDevice(
  q: Pick<PoolClient, 'query'>,
  e: { action: string; deviceId?: bigint | string | null; cardId?: bigint | string | null; actor?: string; ip?: string; detail?: Record<string, unknown> },
): Promise<void> {
  const actor = e.actor ?? '';
  await q.query('INSERT INTO device_audit (action, device_id, card_id, actor, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)', [
    e.action,
    e.deviceId ?? null,
    e.cardId ?? null,
    actor,
    e.ip ?? '',
    JSON.stringify(e.detail ?? {}),
  ]);
  if (recordedByApi(actor)) return;
  const username =
    typeof e.detail?.username === 'string'
      ? e.detail.username
      : e.deviceId != null
        ? (await q.query<{ username: string }>('SELECT username FROM devices WHERE id = $1', [e.deviceId])).rows[0]?.username
        : undefined;
  await recordAudit(
    { pool: q as AdminContext['pool'] },
    {
      actor: actor.includes(':') ? actor : `${actor || 'system'}:${e.ip || 'local'}`,
      action: e.action,
      object: username ? `device:${username}` : null,
      status: e.action.endsWith('.failed') ? 404 : 200,
      request: { ...(e.ip ? { ip: e.ip } : {}), ...e.detail },
    },
  );
}

/** Adds a SIP account to a card; answers its generated username and password (shown once, stored as an A1 hash). */
export async function addDevice(ctx: AdminContext, raw: DeviceAddInput, realm: string, actor = 'operator'): Promise<DeviceWithPassword> {
  const i = parseInput(deviceAddSchema, raw);
  return withTransaction(ctx.pool, async (c) => {
    const card = await c.query<{ id: bigint }>('SELECT id FROM cards WHERE serial = $1', [i.serial]);
    if (!card.rowCount) throw notFound(`unknown card ${i.serial}`);
    const cardId = card.rows[0]!.id;
    let name = i.name;
    if (name === undefined) {
      const n = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM devices WHERE card_id = $1', [cardId]);
      name = `device-${Number(n.rows[0]!.n) + 1}`;
    }
    const password = generateDevicePassword();
    for (let attempt = 0; ; attempt++) {
      const username = generateDeviceUsername();
      await c.query('SAVEPOINT add_device');
      try {
        const r = await c.query<{ id: bigint }>(
          'INSERT INTO devices (card_id, username, name, realm, a1_hash, lines) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
          [cardId, username, name, realm, a1Hash(username, realm, password), i.lines ?? 1],
        );
        await auditDevice(c, { action: 'device.add', deviceId: r.rows[0]!.id, cardId, actor });
        const row = (await c.query<Row>(`${SELECT} WHERE d.id = $1`, [r.rows[0]!.id])).rows[0]!;
        return { ...toDevice(row), password };
      } catch (err) {
        await c.query('ROLLBACK TO SAVEPOINT add_device');
        if (pgCode(err) !== '23505') throw err;
        const taken = await c.query('SELECT 1 FROM devices WHERE card_id = $1 AND name = $2', [cardId, name]);
        if (taken.rowCount) throw conflict(`card ${i.serial} already has a device named "${name}"`);
        if (attempt >= 10) throw err; // username collisions ten times in a row: something else is wrong
      }
    }
  });
}

export async function listDevices(ctx: AdminContext, serial?: string): Promise<Device[]> {
  const s = serial === undefined ? undefined : parseInput(serialInput, serial, 'serial');
  const r = await ctx.pool.query<Row>(`${SELECT} ${s ? 'WHERE c.serial = $1' : ''} ORDER BY c.serial, d.name`, s ? [s] : []);
  return r.rows.map(toDevice);
}

export async function getDevice(ctx: AdminContext, username: string): Promise<Device> {
  const u = parseInput(usernameInput, username, 'device');
  const r = await ctx.pool.query<Row>(`${SELECT} WHERE d.username = $1`, [u]);
  if (!r.rowCount) throw notFound(`unknown device ${u}`);
  return toDevice(r.rows[0]!);
}

export async function editDevice(ctx: AdminContext, username: string, raw: DeviceEditInput, actor = 'operator'): Promise<Device> {
  const u = parseInput(usernameInput, username, 'device');
  const i = parseInput(deviceEditSchema, raw);
  const sets: string[] = [];
  const vals: unknown[] = [u];
  for (const [k, col] of [['name', 'name'], ['lines', 'lines'], ['enabled', 'enabled']] as const) {
    if (i[k] !== undefined) {
      vals.push(i[k]);
      sets.push(`${col} = $${vals.length}`);
    }
  }
  if (!sets.length) throw invalid('nothing to change: give --name, --lines, --enable or --disable');
  try {
    await withTransaction(ctx.pool, async (c) => {
      const r = await c.query<{ id: bigint; card_id: bigint }>(`UPDATE devices SET ${sets.join(', ')} WHERE username = $1 RETURNING id, card_id`, vals);
      if (!r.rowCount) throw notFound(`unknown device ${u}`);
      await auditDevice(c, { action: 'device.edit', deviceId: r.rows[0]!.id, cardId: r.rows[0]!.card_id, actor, detail: { ...i } });
    });
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`the card already has a device named "${i.name}"`);
    throw err;
  }
  return getDevice(ctx, u);
}

export async function removeDevice(ctx: AdminContext, username: string, actor = 'operator'): Promise<void> {
  const u = parseInput(usernameInput, username, 'device');
  await withTransaction(ctx.pool, async (c) => {
    const r = await c.query<{ id: bigint; card_id: bigint }>('DELETE FROM devices WHERE username = $1 RETURNING id, card_id', [u]);
    if (!r.rowCount) throw notFound(`unknown device ${u}`);
    await auditDevice(c, { action: 'device.remove', deviceId: r.rows[0]!.id, cardId: r.rows[0]!.card_id, actor, detail: { username: u } });
  });
}

/** Sets a fresh password (the old one stops working at the device's next REGISTER/INVITE). */
export async function resetDevicePassword(
  ctx: AdminContext | { pool: AdminContext['pool'] },
  username: string,
  realm: string,
  audit: { actor?: string; ip?: string; action?: string } = {},
  client?: PoolClient,
): Promise<DeviceWithPassword> {
  const u = parseInput(usernameInput, username, 'device');
  const run = async (c: PoolClient) => {
    const password = generateDevicePassword();
    const r = await c.query<{ id: bigint; card_id: bigint }>(
      'UPDATE devices SET a1_hash = $2, realm = $3, password_set_at = now() WHERE username = $1 RETURNING id, card_id',
      [u, a1Hash(u, realm, password), realm],
    );
    if (!r.rowCount) throw notFound(`unknown device ${u}`);
    await auditDevice(c, { action: audit.action ?? 'device.reset_password', deviceId: r.rows[0]!.id, cardId: r.rows[0]!.card_id, actor: audit.actor ?? 'operator', ip: audit.ip ?? '' });
    const row = (await c.query<Row>(`${SELECT} WHERE d.id = $1`, [r.rows[0]!.id])).rows[0]!;
    return { ...toDevice(row), password };
  };
  return client ? run(client) : withTransaction(ctx.pool, run);
}
