/**
 * Carrier health: congestion-class failures per carrier within a sliding window; `failures` of them within
 * `windowSec` put the carrier in a cool-down of `cooldownSec`, during which routing skips it (the next carrier of
 * the plan takes its calls). Per process: each ccard process learns from the calls it places.
 */
export interface CarrierHealthConfig {
  failures: number;
  windowSec: number;
  cooldownSec: number;
}

export const DEFAULT_CARRIER_HEALTH: CarrierHealthConfig = { failures: 5, windowSec: 60, cooldownSec: 120 };

type LogFn = (obj: object, msg?: string) => void;

/** Counters for the metrics endpoint (src/metrics/guards.ts): totals since start, by carrier name. */
const failureTotals = new Map<string, number>();
const cooldownTotals = new Map<string, number>();

/** Congestion-class failures counted per carrier since the process started (a Prometheus counter's value). */
export function carrierFailureTotals(): ReadonlyMap<string, number> {
  return failureTotals;
}

/** Cool-downs started per carrier since the process started (a Prometheus counter's value). */
export function carrierCooldownTotals(): ReadonlyMap<string, number> {
  return cooldownTotals;
}

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

export class CarrierHealth {
  private readonly failuresAt = new Map<string, number[]>();
  private readonly coolUntil = new Map<string, number>();

  constructor(
    private readonly cfg: CarrierHealthConfig = DEFAULT_CARRIER_HEALTH,
    private readonly log: { warn: LogFn; info: LogFn } = { warn: () => {}, info: () => {} },
    private readonly now: () => number = Date.now,
  ) {}

  /** True while the carrier is in its cool-down. */
  cooling(carrierId: string): boolean {
    const until = this.coolUntil.get(carrierId);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.coolUntil.delete(carrierId);
    this.log.info({ carrierId }, 'carrier cool-down over');
    return false;
  }

  /** A congestion-class failure (the carrier or the path to it failed, not the callee). */
  failure(carrierId: string, name: string): void {
    const t = this.now();
    bump(failureTotals, name);
    const recent = (this.failuresAt.get(carrierId) ?? []).filter((at) => at > t - this.cfg.windowSec * 1000);
    recent.push(t);
    if (recent.length >= this.cfg.failures && !this.cooling(carrierId)) {
      this.coolUntil.set(carrierId, t + this.cfg.cooldownSec * 1000);
      this.failuresAt.delete(carrierId);
      bump(cooldownTotals, name);
      this.log.warn(
        { carrierId, carrier: name, failures: recent.length, windowSec: this.cfg.windowSec, cooldownSec: this.cfg.cooldownSec },
        'carrier failing: skipped for a cool-down',
      );
      return;
    }
    this.failuresAt.set(carrierId, recent);
  }

  /** An answered call: the carrier works, its failure count starts again. */
  success(carrierId: string): void {
    this.failuresAt.delete(carrierId);
  }
}
