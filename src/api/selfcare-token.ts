import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { PinKeys } from '../store/pin.ts';

/**
 * Self-care session tokens: base64url(JSON {sub, serial, exp}) "." base64url(HMAC-SHA256). The HMAC key is derived
 * (HKDF) from the PIN hash key, itself derived from CCARD_SECRET, so no extra secret or package is needed.
 */
export interface SelfcareClaims {
  sub: string;
  serial: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export function selfcareTokenKey(keys: PinKeys): Buffer {
  return Buffer.from(hkdfSync('sha256', keys.hashKey, Buffer.from('ccard'), Buffer.from('selfcare-token'), 32));
}

const mac = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest();

export function signSelfcareToken(key: Buffer, claims: SelfcareClaims): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${body}.${mac(key, body).toString('base64url')}`;
}

/** The claims of a valid, unexpired token; otherwise null. */
export function verifySelfcareToken(key: Buffer, token: string, nowSeconds = Math.floor(Date.now() / 1000)): SelfcareClaims | null {
  const [body, sig, extra] = token.split('.');
  if (!body || !sig || extra !== undefined) return null;
  const given = Buffer.from(sig, 'base64url');
  const expected = mac(key, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as SelfcareClaims;
    if (typeof c.sub !== 'string' || typeof c.serial !== 'string' || typeof c.exp !== 'number') return null;
    return c.exp > nowSeconds ? c : null;
  } catch {
    return null;
  }
}
