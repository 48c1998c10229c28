import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { registry } from '../../src/metrics/index.ts';

/** The shipped Grafana dashboard and Prometheus alert rules only use metrics ccard exports. */
const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(m.name + s);
  }
  return names;
}

const used = (text: string) => new Set([...text.matchAll(/\bccard_[a-z0-9_]+/g)].map((m) => m[0]));

describe('ops/ files', () => {
  it('the Grafana dashboard is valid JSON whose every query names an exported metric', async () => {
    const text = read('ops/grafana/ccard-dashboard.json');
    const dash = JSON.parse(text) as { panels: Array<{ type: string; targets?: Array<{ expr: string }> }> };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(15);
    const names = await exported();
    for (const m of used(exprs.join('\n'))) expect(names, m).toContain(m);
    expect(used(exprs.join('\n'))).toContain('ccard_calls_unbilled');
  });

  it('the dashboard shows every metric ccard itself defines, and no panel reuses a query refId', async () => {
    const dash = JSON.parse(read('ops/grafana/ccard-dashboard.json')) as {
      panels: Array<{ id: number; targets?: Array<{ expr: string; refId: string }> }>;
    };
    for (const p of dash.panels) {
      const ids = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(ids).size, `panel ${p.id} refIds ${ids.join(',')}`).toBe(ids.length);
    }
    const shown = used(dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr).join('\n'));
    // Node.js process defaults (prom-client's collectDefaultMetrics) are shown selectively; ccard's own are not.
    const own = (await registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((n) => !n.startsWith('ccard_process_') && !n.startsWith('ccard_nodejs_'));
    expect(own.length).toBeGreaterThan(15);
    const missing = own.filter((n) => ![...shown].some((s) => s === n || s.startsWith(`${n}_`)));
    expect(missing).toEqual([]);
  });

  it('the alert rules cover unbilled calls, readiness, backend errors and debit latency with exported metrics', async () => {
    const text = read('ops/prometheus/ccard-alerts.yml');
    const alerts = [...text.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]);
    expect(alerts).toEqual(expect.arrayContaining(['CcardUnbilledCalls', 'CcardNotReady', 'CcardBackendErrors', 'CcardDebitSlow']));
    const names = await exported();
    const metrics = [...used(text)];
    expect(metrics.length).toBeGreaterThan(5);
    for (const m of metrics) expect(names, m).toContain(m);
  });
});
