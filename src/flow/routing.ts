import { classifyBridge } from './bridge-outcome.ts';
import type { BridgeResult } from './call.ts';
import type { RouteChoice } from './services.ts';

/**
 * Failover between attempts. A congestion-class failure (bridge-outcome.ts: 503, gateway down, circuit congestion,
 * out of order) tries again with a fresh reservation; busy, no answer and an invalid number never do (the callee
 * answered for every carrier). A routed attempt (a routing plan chose its carrier) goes to the plan's next carrier
 * while there is one; an unrouted attempt goes to the access number's failover gateway, once.
 */
export type Failover = { kind: 'none' } | { kind: 'next_carrier'; tried: string } | { kind: 'failover_gateway'; gateway: string };

export function nextAttempt(
  bridge: BridgeResult | undefined,
  last: { route?: RouteChoice | undefined } | undefined,
  access: { failoverGateway: string | null },
  onFailover: boolean,
): Failover {
  if (!bridge || classifyBridge(bridge) !== 'congestion') return { kind: 'none' };
  if (last?.route) return last.route.more ? { kind: 'next_carrier', tried: last.route.carrierId } : { kind: 'none' };
  if (!onFailover && access.failoverGateway) return { kind: 'failover_gateway', gateway: access.failoverGateway };
  return { kind: 'none' };
}
