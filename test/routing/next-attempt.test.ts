import { describe, expect, it } from 'vitest';
import { nextAttempt } from '../../src/flow/routing.ts';
import type { BridgeResult } from '../../src/flow/call.ts';
import type { RouteChoice } from '../../src/flow/services.ts';

const failed = (cause: string): BridgeResult => ({ disposition: cause, hangupCause: cause, answered: false, carrierCdr: undefined, callerHungUp: false });
const route = (more: boolean): RouteChoice => ({ carrierId: '7', carrier: 'acme', gateway: 'acme-gw', dialNumber: '4420', more });
const access = (failoverGateway: string | null) => ({ failoverGateway });

describe('nextAttempt', () => {
  it('congestion-class failures of a routed attempt go to the next carrier while there is one', () => {
    for (const cause of ['NORMAL_TEMPORARY_FAILURE', 'SWITCH_CONGESTION', 'GATEWAY_DOWN', 'NORMAL_CIRCUIT_CONGESTION', 'DESTINATION_OUT_OF_ORDER']) {
      expect(nextAttempt(failed(cause), { route: route(true) }, access('backup'), true)).toEqual({ kind: 'next_carrier', tried: '7' });
    }
    // the plan's last carrier: no failover gateway either (the plan decides)
    expect(nextAttempt(failed('NORMAL_TEMPORARY_FAILURE'), { route: route(false) }, access('backup'), false)).toEqual({ kind: 'none' });
  });

  it('busy, no answer and an invalid number never fail over', () => {
    for (const cause of ['USER_BUSY', 'NO_ANSWER', 'ALLOTTED_TIMEOUT', 'UNALLOCATED_NUMBER', 'NO_ROUTE_DESTINATION']) {
      expect(nextAttempt(failed(cause), { route: route(true) }, access('backup'), false).kind).toBe('none');
      expect(nextAttempt(failed(cause), {}, access('backup'), false).kind).toBe('none');
    }
  });

  it("an unrouted attempt goes to the access number's failover gateway, once", () => {
    expect(nextAttempt(failed('NORMAL_TEMPORARY_FAILURE'), {}, access('backup'), false)).toEqual({ kind: 'failover_gateway', gateway: 'backup' });
    expect(nextAttempt(failed('NORMAL_TEMPORARY_FAILURE'), {}, access('backup'), true).kind).toBe('none');
    expect(nextAttempt(failed('NORMAL_TEMPORARY_FAILURE'), {}, access(null), false).kind).toBe('none');
    expect(nextAttempt(undefined, {}, access('backup'), false).kind).toBe('none');
  });
});
