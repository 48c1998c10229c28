import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomInt } from 'node:crypto';

/**
 * PINs are never stored in plain text. pin_hash = HMAC-SHA256(k1, pin) makes a PIN lookup one indexed equality
 * query; pin_cipher = AES-256-GCM(k2, pin) lets an operator export PINs explicitly. k1 and k2 derive from
 * CCARD_SECRET with HKDF, so one secret protects both and neither key is the secret itself.
 */
export interface PinKeys {
  hashKey: Buffer;
  cipherKey: Buffer;
}

export function derivePinKeys(secret: string): PinKeys {
  const ikm = Buffer.from(secret, 'utf8');
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', ikm, Buffer.from('ccard'), Buffer.from(info), 32));
  return { hashKey: derive('pin-hash'), cipherKey: derive('pin-cipher') };
}

export function hashPin(keys: PinKeys, pin: string): Buffer {
  return createHmac('sha256', keys.hashKey).update(pin, 'utf8').digest();
}

export function encryptPin(keys: PinKeys, pin: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.cipherKey, iv);
  const ct = Buffer.concat([cipher.update(pin, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
}

export function decryptPin(keys: PinKeys, blob: Buffer): string {
  const decipher = createDecipheriv('aes-256-gcm', keys.cipherKey, blob.subarray(0, 12));
  decipher.setAuthTag(blob.subarray(12, 28));
  return Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]).toString('utf8');
}

/** A PIN of `length` decimal digits from a cryptographically secure generator (no leading-zero bias). */
export function generatePin(length: number): string {
  let pin = '';
  for (let i = 0; i < length; i++) pin += String(randomInt(10));
  return pin;
}
