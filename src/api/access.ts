import type { Role } from '../store/admin/operators.ts';

/**
 * Who may call what, for operator sessions (an API key may call everything: it is the automation's credential,
 * created by someone who has the server's database, and it predates roles).
 *
 * - viewer: every read, except the admin's pages (operators, API keys, audit log), and its own preferences.
 * - operator: also changes cards (status, limits, top-up, adjust, bulk edit), series, access numbers and caller IDs,
 *   devices, provisioning codes and vouchers (create, redeem), and exports PINs and voucher numbers (with
 *   confirm=pins / confirm=numbers, audited).
 * - admin: also operators, API keys, rate tables, tax profiles, the brand, carriers, routing plans and resellers.
 *
 * A route may name its role itself (route config `role`); otherwise these rules decide. An unknown write route
 * needs admin, so a route added later without thought fails closed.
 */
const ADMIN_AREAS = ['/v1/operators', '/v1/api-keys', '/v1/rates', '/v1/tax-profiles'];
const ADMIN_READS = ['/v1/operators', '/v1/api-keys', '/v1/audit'];
const OPERATOR_AREAS = ['/v1/series', '/v1/cards', '/v1/dids', '/v1/caller-ids', '/v1/jobs', '/v1/devices', '/v1/provision-codes', '/v1/vouchers'];

const under = (url: string, areas: string[]) => areas.some((a) => url === a || url.startsWith(`${a}/`));

export function requiredRole(method: string, routeUrl: string, query: Record<string, unknown> = {}): Role {
  const read = method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
  if (read) {
    if (under(routeUrl, ADMIN_READS)) return 'admin';
    if (routeUrl === '/v1/cards/export' && isTrue(query.withPins)) return 'operator';
    if (routeUrl === '/v1/vouchers/:batch/export' && isTrue(query.withNumbers)) return 'operator';
    return 'viewer';
  }
  if (routeUrl === '/v1/me/preferences') return 'viewer';
  if (under(routeUrl, ADMIN_AREAS)) return 'admin';
  if (under(routeUrl, OPERATOR_AREAS)) return 'operator';
  return 'admin';
}

export const isTrue = (v: unknown) => v === true || (typeof v === 'string' && ['true', '1', 'yes'].includes(v));
