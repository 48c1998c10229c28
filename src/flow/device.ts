/**
 * Calls from a device (a card's SIP account, issue 11). FreeSWITCH authenticated the device's INVITE against
 * ccard's directory, which put the card's identity on the channel as variables (cc_card_id, cc_device_id,
 * cc_device_user, cc_device_sig). ccard trusts them only together with variable_sip_authorized=true, a signature
 * that only its own directory can make, and a device still enabled on that card: never from SIP headers (X-…)
 * or the caller ID, which any caller sets.
 */
import { withTransaction, type Pool } from '../store/db.ts';
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
  /**
   * forged: claims without sip_authorized or a valid signature; device: disabled or removed; no_access: no usable
   * CCARD_DEVICE_DID; lines: the device already has `lines` calls in progress.
   */
  | { ok: false; reason: 'forged' | 'device' | 'no_access' | 'lines' };

/** The balance under which a device call hears "this call can last up to N minutes" (otherwise it is silent). */
export const DEVICE_LOW_SECONDS = 300;

/**
 * Checks a device call's claims and answers its card and the access number whose settings (gateway, language,
 * digit rules, prefixes, country code) device calls use: CCARD_DEVICE_DID.
 */
export function createDeviceCalls(deps: {
  pool: Pool;
  pinKeys: PinKeys;
  deviceDid: string | undefined;
  accessNumber: CallServices['accessNumber'];
  /** A device_calls row older than this is a leftover of a crash (the longest call plus its margin). */
  staleAfterSec: number;
}) {
  const check = async (c: DeviceClaims, ivrUuid: string): Promise<DeviceCallResult> => {
    if (!c.sipAuthorized || !/^\d{1,19}$/.test(c.cardId) || !/^\d{1,19}$/.test(c.deviceId) || c.user === '' || c.authUser !== c.user) {
      return { ok: false, reason: 'forged' };
    }
    if (!verifyDeviceSignature(deps.pinKeys, c.cardId, c.deviceId, c.user, c.sig)) return { ok: false, reason: 'forged' };
    const access = deps.deviceDid ? await deps.accessNumber(deps.deviceDid) : undefined;
    // The device's row serialises its calls: counting and taking a line are one step.
    const line = await withTransaction(deps.pool, async (q) => {
      const d = await q.query<{ lines: number }>('SELECT lines FROM devices WHERE id = $1 AND card_id = $2 AND username = $3 AND enabled FOR UPDATE', [
        c.deviceId,
        c.cardId,
        c.user,
      ]);
      if (!d.rowCount) return 'device' as const;
      if (!access) return 'no_access' as const;
      const busy = await q.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM device_calls WHERE device_id = $1 AND ivr_uuid <> $2 AND started_at > now() - make_interval(secs => $3)`,
        [c.deviceId, ivrUuid, deps.staleAfterSec],
      );
      if (busy.rows[0]!.n >= d.rows[0]!.lines) return 'lines' as const;
      await q.query('INSERT INTO device_calls (ivr_uuid, device_id) VALUES ($1, $2) ON CONFLICT (ivr_uuid) DO NOTHING', [ivrUuid, c.deviceId]);
      return 'ok' as const;
    });
    if (line !== 'ok') return { ok: false, reason: line };
    return { ok: true, cardId: c.cardId, access: access! };
  };
  return {
    deviceCall: check,
    /** Frees the line of a device call that ended (any call: nothing happens for a call that took no line). */
    deviceCallEnded: async (ivrUuid: string): Promise<void> => {
      await deps.pool.query('DELETE FROM device_calls WHERE ivr_uuid = $1', [ivrUuid]);
    },
  };
}
