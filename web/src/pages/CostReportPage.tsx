import * as api from '../api/client';
import type { CostBucket } from '../api/types';
import { formatMicros, toMicros } from '../lib/money';
import { duration } from '../lib/format';
import { useUrlState } from '../lib/url-state';
import { Empty, ErrorBox, Loading, PageHeader, SelectField, TextField, useForm, useLoad } from '../components/ui';

const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

export function CostReportPage() {
  const [q, setQ] = useUrlState();
  const by = (q.by as 'card' | 'series' | 'destination') ?? 'series';
  const from = q.from ?? daysAgo(6);
  const to = q.to ?? today();
  const interval = q.interval === 'hour' ? 'hour' : 'day';
  const scope = { card: q.card, series: q.series };
  const rows = useLoad(() => api.reports.costs({ by, from, to, ...scope }), [by, from, to, q.card, q.series]);
  const series = useLoad(() => api.reports.timeSeries({ from, to, interval, ...scope }), [from, to, interval, q.card, q.series]);
  const f = useForm({ by, from, to, interval, card: q.card ?? '', series: q.series ?? '' });
  return (
    <>
      <PageHeader title="Cost report" />
      <form
        className="inline-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(
            (v) => ({ ...(v.from > v.to && { to: 'must not be before "from"' }) }),
            async (v) => setQ({ by: v.by, from: v.from, to: v.to, interval: v.interval, card: v.card.trim(), series: v.series.trim() }),
          );
        }}
      >
        <SelectField label="Group by" value={f.values.by} onChange={(e) => f.set('by', e.target.value)} options={['series', 'card', 'destination']} />
        <TextField label="From" type="date" value={f.values.from} onChange={(e) => f.set('from', e.target.value)} />
        <TextField label="To" type="date" value={f.values.to} error={f.errors.to} onChange={(e) => f.set('to', e.target.value)} />
        <SelectField label="Chart per" value={f.values.interval} onChange={(e) => f.set('interval', e.target.value)} options={['day', 'hour']} />
        <TextField label="Series" value={f.values.series} onChange={(e) => f.set('series', e.target.value)} />
        <TextField label="Card" value={f.values.card} onChange={(e) => f.set('card', e.target.value)} />
        <button type="submit" className="primary">
          Show
        </button>
      </form>
      <ErrorBox error={f.formError} />

      <section className="card-section" aria-labelledby="chart-h">
        <h2 id="chart-h">
          Calls and revenue per {interval}, {from} to {to}
        </h2>
        <ErrorBox error={series.error} title="The chart is not available" />
        {!series.data && !series.error && <Loading />}
        {series.data && <Summary buckets={series.data} />}
        {series.data && <Chart buckets={series.data} interval={interval} />}
      </section>

      <section aria-labelledby="by-h">
        <h2 id="by-h">By {by}</h2>
        <ErrorBox error={rows.error} />
        {rows.data && rows.data.length === 0 && <Empty>No calls in this period.</Empty>}
        {rows.data && rows.data.length > 0 && (
          <div className="table-wrap">
            <table aria-label={`Costs by ${by}`}>
              <thead>
                <tr>
                  <th>{by === 'card' ? 'Card' : by === 'series' ? 'Series' : 'Destination'}</th>
                  <th className="num">Calls</th>
                  <th className="num">Billed minutes</th>
                  <th className="num">Total cost</th>
                </tr>
              </thead>
              <tbody>
                {rows.data.map((r) => (
                  <tr key={`${r.key}-${r.currency}`}>
                    <td>{r.key}</td>
                    <td className="num">{r.calls}</td>
                    <td className="num">{r.billedMinutes}</td>
                    <td className="num">
                      {r.totalCost.value} {r.currency}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

function Summary({ buckets }: { buckets: CostBucket[] }) {
  let calls = 0;
  let answered = 0;
  let seconds = 0;
  let revenue = 0n;
  for (const b of buckets) {
    calls += b.calls;
    answered += b.answered;
    seconds += b.billedSeconds;
    revenue += toMicros(b.revenue.value) ?? 0n;
  }
  const asr = calls ? `${Math.round((answered * 1000) / calls) / 10}%` : '—';
  return (
    <dl className="kpis">
      <div>
        <dt>Calls</dt>
        <dd>{calls}</dd>
      </div>
      <div>
        <dt>Revenue</dt>
        <dd>{formatMicros(revenue)}</dd>
      </div>
      <div>
        <dt>ASR</dt>
        <dd>{asr}</dd>
      </div>
      <div>
        <dt>Average duration</dt>
        <dd>{answered ? duration(seconds / answered) : '—'}</dd>
      </div>
    </dl>
  );
}

/**
 * Hand-written SVG: a bar per bucket for the calls, a line for the revenue. Heights of the revenue line come from
 * BigInt micro-units (value * height / max), so no amount ever becomes a float.
 */
function Chart({ buckets, interval }: { buckets: CostBucket[]; interval: 'day' | 'hour' }) {
  if (buckets.length === 0) return <Empty>No calls in this period.</Empty>;
  const W = 720;
  const H = 240;
  const pad = { l: 40, r: 56, t: 12, b: 36 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const maxCalls = Math.max(1, ...buckets.map((b) => b.calls));
  const rev = buckets.map((b) => toMicros(b.revenue.value) ?? 0n);
  const maxRev = rev.reduce((a, b) => (b > a ? b : a), 1n);
  const step = iw / buckets.length;
  const barW = Math.max(2, step * 0.6);
  const revY = (m: bigint) => pad.t + ih - Number((m * BigInt(ih)) / maxRev);
  const label = (iso: string) => (interval === 'hour' ? iso.slice(11, 13) + 'h' : iso.slice(5, 10));
  const every = Math.ceil(buckets.length / 12);
  const line = rev.map((m, i) => `${i ? 'L' : 'M'}${(pad.l + step * i + step / 2).toFixed(1)},${revY(m).toFixed(1)}`).join(' ');
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Calls and revenue per ${interval}`}>
        {[0, 0.5, 1].map((p) => (
          <g key={p}>
            <line x1={pad.l} x2={W - pad.r} y1={pad.t + ih * (1 - p)} y2={pad.t + ih * (1 - p)} className="gridline" />
            <text x={pad.l - 6} y={pad.t + ih * (1 - p) + 4} textAnchor="end" className="axis">
              {Math.round(maxCalls * p)}
            </text>
            <text x={W - pad.r + 6} y={pad.t + ih * (1 - p) + 4} className="axis rev">
              {formatMicros((maxRev * BigInt(Math.round(p * 2))) / 2n)}
            </text>
          </g>
        ))}
        {buckets.map((b, i) => {
          const h = (b.calls / maxCalls) * ih;
          return (
            <g key={b.start}>
              <rect className="bar" x={pad.l + step * i + (step - barW) / 2} y={pad.t + ih - h} width={barW} height={h}>
                <title>{`${b.start}: ${b.calls} calls, ${b.revenue.value} revenue`}</title>
              </rect>
              {i % every === 0 && (
                <text x={pad.l + step * i + step / 2} y={H - pad.b + 16} textAnchor="middle" className="axis">
                  {label(b.start)}
                </text>
              )}
            </g>
          );
        })}
        <path d={line} className="revline" />
      </svg>
      <figcaption>
        <span className="key bar-key" /> calls <span className="key rev-key" /> revenue
      </figcaption>
    </figure>
  );
}
