import { createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Pool } from './db.ts';
import type { PinKeys } from './pin.ts';

/** md5(username:realm:password), lowercase hex: the digest's A1, what a directory user's `a1-hash` param holds. */
export function a1Hash(username: string, realm: string, password: string): string {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest('hex');
}

/** Letters and digits without the look-alikes (0/O, 1/I/l): read aloud or typed from a screen without mistakes. */
export const UNAMBIGUOUS = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz';

export function randomString(length: number, alphabet = UNAMBIGUOUS): string {
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

/** A fresh device password: 20 characters of a 55-letter alphabet (~115 bits). */
export function generateDevicePassword(): string {
  return randomString(20);
}

/** A SIP username: 8 digits, first not 0 (dialpads and softphones type it easily). */
export function generateDeviceUsername(): string {
  return String(randomInt(10_000_000, 100_000_000));
}

/**
 * The signature ccard puts beside the card id in a device's directory variables. The call flow trusts a device
 * call only if the channel carries sip_authorized=true and this signature matches the card, device and username:
 * a variable that did not come from ccard's own directory answer cannot carry it.
 */
export function deviceSignature(keys: PinKeys, cardId: string, deviceId: string, username: string): string {
  return createHmac('sha256', keys.hashKey).update(`ccard-device:${cardId}:${deviceId}:${username}`).digest('hex').slice(0, 32);
}

export function verifyDeviceSignature(keys: PinKeys, cardId: string, deviceId: string, username: string, sig: string): boolean {
  const want = Buffer.from(deviceSignature(keys, cardId, deviceId, username));
  const got = Buffer.from(sig);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Card statuses whose devices may register and call ('pending' activates on the first call, as on an access number). */
export const DEVICE_CARD_STATUSES = ['active', 'pending'] as const;

export interface DirectoryDevice {
  deviceId: string;
  cardId: string;
  username: string;
  realm: string;
  a1Hash: string;
  lines: number;
}

/**
 * The device a directory lookup asks for, or null: unknown user, another domain, a disabled device, a card not
 * usable (disabled, expired by status or by date, or its series deleted) all read the same.
 */
export async function findDirectoryDevice(pool: Pool, username: string, domain: string): Promise<DirectoryDevice | null> {
  if (!/^[0-9]{6,20}$/.test(username) || !/^[A-Za-z0-9.:-]{1,253}$/.test(domain)) return null;
  const r = await pool.query<{ id: bigint; card_id: bigint; username: string; realm: string; a1_hash: string; lines: number }>(
    `SELECT d.id, d.card_id, d.username, d.realm, d.a1_hash, d.lines
       FROM devices d JOIN cards c ON c.id = d.card_id JOIN series s ON s.id = c.series_id
      WHERE d.username = $1 AND lower(d.realm) = lower($2) AND d.enabled
        AND c.status = ANY($3) AND (c.expires_at IS NULL OR c.expires_at > now()) AND s.status <> 'deleted'`,
    [username, domain, DEVICE_CARD_STATUSES],
  );
  const d = r.rows[0];
  if (!d) return null;
  return { deviceId: d.id.toString(), cardId: d.card_id.toString(), username: d.username, realm: d.realm, a1Hash: d.a1_hash, lines: d.lines };
}
