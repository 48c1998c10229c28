/**
 * Carrier-health and PIN-guard counters in the Prometheus registry: read at scrape time from the modules that keep
 * them, with the carrier label bounded (the first CARRIER_LABELS names, then "other").
 */
import { describe, expect, it } from 'vitest';
import { CarrierHealth } from '../../src/billing/carrier-health.ts';
import { createPinGuard } from '../../src/app/pin-guard.ts';
import { CARRIER_LABELS, registry } from '../../src/metrics/index.ts';

async function samples(name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const m = (await registry.getSingleMetric(name)!.get()) as { values: Array<{ labels: Record<string, string | number>; value: number }> };
  return m.values;
}
const total = (v: Array<{ value: number }>) => v.reduce((a, s) => a + s.value, 0);

describe('carrier and PIN-guard metrics', () => {
  it('count carrier failures and cool-downs per carrier, with at most CARRIER_LABELS carrier names', async () => {
    const failuresBefore = total(await samples('ccard_carrier_failures_total'));
    const cooldownsBefore = total(await samples('ccard_carrier_cooldowns_total'));
    const health = new CarrierHealth({ failures: 2, windowSec: 60, cooldownSec: 60 });
    health.failure('1', 'metrics-a');
    health.failure('1', 'metrics-a'); // the second within the window: a cool-down
    for (let i = 0; i < CARRIER_LABELS + 5; i++) health.failure(`x${i}`, `metrics-many-${i}`);
    const failures = await samples('ccard_carrier_failures_total');
    expect(total(failures) - failuresBefore).toBe(2 + CARRIER_LABELS + 5);
    expect(failures.find((s) => s.labels.carrier === 'metrics-a')?.value).toBe(2);
    expect(failures.length).toBeLessThanOrEqual(CARRIER_LABELS + 1);
    expect(failures.find((s) => s.labels.carrier === 'other')!.value).toBeGreaterThanOrEqual(5);
    const cooldowns = await samples('ccard_carrier_cooldowns_total');
    expect(total(cooldowns) - cooldownsBefore).toBe(1);
    expect(cooldowns.find((s) => s.labels.carrier === 'metrics-a')?.value).toBe(1);
    // A second scrape reads the same totals (set from the source, not added again).
    expect(total(await samples('ccard_carrier_failures_total')) - failuresBefore).toBe(2 + CARRIER_LABELS + 5);
  });

  it('count trust revoked and refusals of the PIN guard', async () => {
    const revokedBefore = total(await samples('ccard_pin_guard_trust_revoked_total'));
    const refusedBefore = total(await samples('ccard_pin_guard_refused_total'));
    const guard = createPinGuard({ maxFailures: 2, windowSec: 60, lockoutSec: 60, guardFailures: 100, trustSec: 60 }, { logger: { warn: () => {} } });
    await guard.succeed('15550001234'); // trusted
    await guard.fail('100', '15550001234');
    await guard.fail('100', '15550001234'); // the limit: trust revoked, locked
    expect(await guard.isLockedOut('100', '15550001234', async () => false)).toBe(true);
    expect(total(await samples('ccard_pin_guard_trust_revoked_total')) - revokedBefore).toBe(1);
    expect(total(await samples('ccard_pin_guard_refused_total')) - refusedBefore).toBe(1);
    const text = await registry.metrics();
    expect(text).toMatch(/^ccard_pin_guard_refused_total \d+$/m);
    expect(text).toMatch(/^ccard_carrier_cooldowns_total\{carrier="metrics-a"\} 1$/m);
  });
});
