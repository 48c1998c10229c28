import type { AccessNumber } from '../flow/services.ts';

/**
 * The access_numbers row, mapped once. Each setting has one column, the name the call flow reads it by
 * (AccessNumber) and the name operators set it by (the `did` CLI options and the API's DID fields, which are public
 * and differ for some). Both the flow's query (src/app/call-services.ts) and the admin store (store/admin/dids.ts)
 * are derived from this table, so a new setting is added here once and reaches both.
 */
export const ACCESS_NUMBER_SETTINGS = {
  language: { column: 'language', admin: 'language' },
  authMode: { column: 'auth_mode', admin: 'auth' },
  gateway: { column: 'gateway', admin: 'gateway' },
  failoverGateway: { column: 'failover_gateway', admin: 'failoverGateway' },
  minDigits: { column: 'min_digits', admin: 'minDigits' },
  maxDigits: { column: 'max_digits', admin: 'maxDigits' },
  allowedPrefixes: { column: 'allowed_prefixes', admin: 'allowPrefix' },
  deniedPrefixes: { column: 'denied_prefixes', admin: 'denyPrefix' },
  countryCode: { column: 'country_code', admin: 'countryCode' },
  nationalPrefix: { column: 'national_prefix', admin: 'nationalPrefix' },
  pinLength: { column: 'pin_length', admin: 'pinLength' },
  pinTries: { column: 'pin_tries', admin: 'pinTries' },
  bindCliAfterPin: { column: 'bind_cli_after_pin', admin: 'bindCli' },
  maxCallsPerSession: { column: 'max_calls_per_session', admin: 'maxCallsPerSession' },
  voucherRecharge: { column: 'voucher_recharge', admin: 'voucherRecharge' },
} as const satisfies Record<Exclude<keyof AccessNumber, 'did' | 'cliCardId'>, { column: string; admin: string }>;

type Setting = keyof typeof ACCESS_NUMBER_SETTINGS;
const SETTINGS = Object.entries(ACCESS_NUMBER_SETTINGS) as Array<[Setting, (typeof ACCESS_NUMBER_SETTINGS)[Setting]]>;

/** Admin field name -> column, for every setting (the admin store adds `enabled`, which the flow only filters by). */
export const ADMIN_SETTING_COLUMNS = Object.fromEntries(SETTINGS.map(([, s]) => [s.admin, s.column])) as {
  [K in Setting as (typeof ACCESS_NUMBER_SETTINGS)[K]['admin']]: (typeof ACCESS_NUMBER_SETTINGS)[K]['column'];
};

/** The flow's read of an enabled access number ($1 = did); cli_card_id is NULL here (see ACCESS_WITH_CLI_SELECT). */
export const ACCESS_SELECT = `
  SELECT did, ${SETTINGS.map(([, s]) => s.column).join(', ')}, NULL::text AS cli_card_id
    FROM access_numbers WHERE did = $1 AND enabled`;
/** The same, plus the card bound to the caller ID ($2; pinless), in the same round trip. */
export const ACCESS_WITH_CLI_SELECT = ACCESS_SELECT.replace(
  'NULL::text AS cli_card_id',
  '(SELECT card_id::text FROM caller_ids WHERE caller_id = $2) AS cli_card_id',
);

/** A row of ACCESS_SELECT as the call flow sees it; cliCardId only when it was looked up. */
export function toAccessNumber(row: Record<string, unknown>, withCli: boolean): AccessNumber {
  const out: Record<string, unknown> = { did: row.did };
  for (const [name, s] of SETTINGS) out[name] = row[s.column];
  if (withCli) out.cliCardId = row.cli_card_id;
  return out as unknown as AccessNumber;
}
