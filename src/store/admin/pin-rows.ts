import { encryptPin, generatePin, hashPin, type PinKeys } from '../pin.ts';

/**
 * COPY text rows "n<TAB>pin_hash<TAB>pin_cipher" for fresh PINs numbered start..end. In COPY text format a
 * backslash is written twice, so bytea hex input "\x.." becomes "\\x..".
 */
export function pinRows(keys: PinKeys, start: number, end: number, pinLength: number): string {
  let text = '';
  for (let n = start; n <= end; n++) {
    const pin = generatePin(pinLength);
    text += `${n}\t\\\\x${hashPin(keys, pin).toString('hex')}\t\\\\x${encryptPin(keys, pin).toString('hex')}\n`;
  }
  return text;
}
