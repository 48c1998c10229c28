/**
 * Calls from a device (a card's SIP account, issue 11). FreeSWITCH authenticated the device's INVITE against
 * ccard's directory, which put the card's identity on the channel as variables (cc_card_id, cc_device_id,
 * cc_device_user, cc_device_sig). ccard trusts them only together with variable_sip_authorized=true, a signature
 * that only its own directory can make, and a device still enabled on that card: never from SIP headers (X-…)
 * or the caller ID, which any caller sets.
 */
import type { Pool } from '../store/db.ts';
import type { PinKeys } from '../store/pin.ts';
import { verifyDeviceSignature } from '../store/devices.ts';
import type { AccessNumber, CallServices } from './services.ts';

/** The device variables of a call as they arrived (undefined: the call claims no device). */
export interface DeviceClaims {
  sipAuthorized: boolean;
  cardId: string;
  deviceId: string;
  user: string;
  /** variable_sip_auth_username: the account FreeSWITCH checked the digest of. */
  authUser: string;
  sig: string;
}

/** The claims of a connect reply / CHANNEL_DATA, read by header name. A call without ccard's variables has none. */
export function deviceClaimsFrom(get: (header: string) => string | undefined): DeviceClaims | undefined {
  const cardId = get('variable_cc_card_id');
  const deviceId = get('variable_cc_device_id');
  if (cardId === undefined && deviceId === undefined) return undefined;
  return {
    sipAuthorized: get('variable_sip_authorized') === 'true',
    cardId: cardId ?? '',
    deviceId: deviceId ?? '',
    user: get('variable_cc_device_user') ?? '',
    authUser: get('variable_sip_auth_username') ?? '',
    sig: get('variable_cc_device_sig') ?? '',
  };
}

export type DeviceCallResult =
  | { ok: true; cardId: string; access: AccessNumber }
  /** forged: claims without sip_authorized or a valid signature; device: disabled or removed; no_access: no CCARD_DEVICE_DID. */
  | { ok: false; reason: 'forged' | 'device' | 'no_access' };

/** The balance under which a device call hears "this call can last up to N minutes" (otherwise it is silent). */
export const DEVICE_LOW_SECONDS = 300;

/**
 * Checks a device call's claims and answers its card and the access number whose settings (gateway, language,
 * digit rules, prefixes, country code) device calls use: CCARD_DEVICE_DID.
 */
export function createDeviceCalls(deps: { pool: Pool; pinKeys: PinKeys; deviceDid: string | undefined; accessNumber: CallServices['accessNumber'] }) {
  return async (c: DeviceClaims): Promise<DeviceCallResult> => {
    if (!c.sipAuthorized || !/^\d{1,19}$/.test(c.cardId) || !/^\d{1,19}$/.test(c.deviceId) || c.user === '' || c.authUser !== c.user) {
      return { ok: false, reason: 'forged' };
    }
    if (!verifyDeviceSignature(deps.pinKeys, c.cardId, c.deviceId, c.user, c.sig)) return { ok: false, reason: 'forged' };
    const d = await deps.pool.query('SELECT 1 FROM devices WHERE id = $1 AND card_id = $2 AND username = $3 AND enabled', [c.deviceId, c.cardId, c.user]);
    if (!d.rowCount) return { ok: false, reason: 'device' };
    const access = deps.deviceDid ? await deps.accessNumber(deps.deviceDid) : undefined;
    if (!access) return { ok: false, reason: 'no_access' };
    return { ok: true, cardId: c.cardId, access };
  };
}
