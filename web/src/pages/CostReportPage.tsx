import * as api from '../api/client';
import type { CostPoint, CostTrendQuery } from '../api/types';
import { formatMicros, toMicros } from '../lib/money';
import { dayAfter, duration } from '../lib/format';
import { oneOf, useUrlState } from '../lib/url-state';
import { Empty, ErrorBox, Loading, PageHeader, SelectField, TextField, useForm, useLoad } from '../components/ui';

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const today = () => day(Date.now());

export function CostReportPage() {
  const [q, setQ] = useUrlState();
  const by = oneOf(q.by, ['series', 'card', 'destination'] as const) ?? 'series';
  const from = q.from ?? day(Date.now() - 6 * 86_400_000);
  const to = q.to ?? today();
  const interval = q.interval === 'hour' ? 'hour' : 'day';
  const query: CostTrendQuery = { by, from, to: dayAfter(to)!, interval, card: q.card, series: q.series };
  const report = useLoad(() => api.reports.trend(query), [JSON.stringify(query)]);
  const f = useForm({ by, from, to, interval, card: q.card ?? '', series: q.series ?? '' });
  const groupLabel = by === 'card' ? 'Card' : by === 'series' ? 'Series' : 'Destination';
  // one chart per currency (a report over series in several currencies never adds them up)
  const currencies = [...new Set((report.data?.series ?? []).map((p) => p.currency))];
  return (
    <>
      <PageHeader title="Cost report" />
      <form
        className="inline-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(
            (v) => ({
              ...(!v.from && { from: 'choose a date' }),
              ...(!v.to && { to: 'choose a date' }),
              ...(v.from && v.to && v.from > v.to && { to: 'must not be before "From"' }),
              ...(v.series.trim() && !/^\d{1,9}$/.test(v.series.trim()) && { series: 'must be 1 to 9 digits' }),
              ...(v.card.trim() && !/^[0-9-]{1,20}$/.test(v.card.trim()) && { card: 'must be a card serial' }),
            }),
            async (v) => setQ({ by: v.by, from: v.from, to: v.to, interval: v.interval, card: v.card.trim(), series: v.series.trim() }),
          );
        }}
      >
        <SelectField label="Group by" value={f.values.by} onChange={(e) => f.set('by', e.target.value)} options={['series', 'card', 'destination']} />
        <TextField label="From" type="date" value={f.values.from} error={f.errors.from} onChange={(e) => f.set('from', e.target.value)} />
        <TextField label="To" type="date" value={f.values.to} error={f.errors.to} onChange={(e) => f.set('to', e.target.value)} />
        <SelectField label="Chart per" value={f.values.interval} onChange={(e) => f.set('interval', e.target.value)} options={['day', 'hour']} />
        <TextField label="Series" value={f.values.series} error={f.errors.series} onChange={(e) => f.set('series', e.target.value)} />
        <TextField label="Card" value={f.values.card} error={f.errors.card} onChange={(e) => f.set('card', e.target.value)} />
        <button type="submit" className="primary">
          Show
        </button>
      </form>
      <ErrorBox error={f.formError ?? report.error} />
      {!report.data && !report.error && <Loading />}

      {report.data && currencies.length === 0 && <Empty>No calls in this period.</Empty>}
      {currencies.map((cur) => {
        const points = report.data!.series.filter((p) => p.currency === cur);
        return (
          <section key={cur} className="card-section" aria-label={`Calls and revenue in ${cur}`}>
            <h2>
              Calls and revenue per {interval} ({cur}), {from} to {to}
            </h2>
            <Summary points={points} />
            <Chart points={points} interval={interval} currency={cur} />
          </section>
        );
      })}

      {report.data && report.data.groups.length > 0 && (
        <section aria-labelledby="by-h">
          <h2 id="by-h">By {by}</h2>
          <div className="table-wrap">
            <table aria-label={`Costs by ${by}`}>
              <thead>
                <tr>
                  <th>{groupLabel}</th>
                  {by !== 'card' && <th>Name</th>}
                  <th className="num">Calls</th>
                  <th className="num">Billed minutes</th>
                  <th className="num">Total cost</th>
                </tr>
              </thead>
              <tbody>
                {report.data.groups.map((r) => (
                  <tr key={`${r.key}-${r.currency}`}>
                    <td>{r.key || '—'}</td>
                    {by !== 'card' && <td>{r.name ?? '—'}</td>}
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
        </section>
      )}
    </>
  );
}

function Summary({ points }: { points: CostPoint[] }) {
  let attempts = 0;
  let answered = 0;
  let talk = 0;
  let revenue = 0n;
  for (const p of points) {
    attempts += p.attempts;
    answered += p.answered;
    talk += p.averageSeconds * p.answered;
    revenue += toMicros(p.revenue.value) ?? 0n;
  }
  return (
    <dl className="kpis">
      <div>
        <dt>Calls</dt>
        <dd>{attempts}</dd>
      </div>
      <div>
        <dt>Revenue</dt>
        <dd>{formatMicros(revenue)}</dd>
      </div>
      <div>
        <dt>ASR</dt>
        <dd>{attempts ? `${Math.round((answered * 1000) / attempts) / 10}%` : '—'}</dd>
      </div>
      <div>
        <dt>Average duration</dt>
        <dd>{answered ? duration(talk / answered) : '—'}</dd>
      </div>
    </dl>
  );
}

/**
 * Hand-written SVG: a bar per day or hour for the calls, a line for the revenue. The revenue line's heights come
 * from BigInt micro-units (value * height / max), so no amount ever becomes a float.
 */
function Chart({ points, interval, currency }: { points: CostPoint[]; interval: 'day' | 'hour'; currency: string }) {
  const W = 760;
  const H = 240;
  const pad = { l: 40, r: 64, t: 12, b: 36 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const maxCalls = Math.max(1, ...points.map((p) => p.attempts));
  const rev = points.map((p) => toMicros(p.revenue.value) ?? 0n);
  const maxRev = rev.reduce((a, b) => (b > a ? b : a), 0n) || 1n;
  const step = iw / Math.max(1, points.length);
  const barW = Math.max(2, Math.min(48, step * 0.6));
  const x = (i: number) => pad.l + step * i + step / 2;
  const revY = (m: bigint) => pad.t + ih - Number((m * BigInt(ih)) / maxRev);
  const label = (iso: string) => (interval === 'hour' ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}h` : iso.slice(5, 10));
  const every = Math.ceil(points.length / 10);
  const line = rev.map((m, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${revY(m).toFixed(1)}`).join(' ');
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Calls and revenue per ${interval} in ${currency}`}>
        {[0, 0.5, 1].map((p) => (
          <g key={p}>
            <line x1={pad.l} x2={W - pad.r} y1={pad.t + ih * (1 - p)} y2={pad.t + ih * (1 - p)} className="gridline" />
            <text x={pad.l - 6} y={pad.t + ih * (1 - p) + 4} textAnchor="end" className="axis">
              {p === 0.5 && maxCalls % 2 ? '' : String((maxCalls * p * 2) / 2)}
            </text>
            <text x={W - pad.r + 6} y={pad.t + ih * (1 - p) + 4} className="axis rev">
              {formatMicros((maxRev * BigInt(p * 2)) / 2n)}
            </text>
          </g>
        ))}
        {points.map((p, i) => {
          const h = (p.attempts / maxCalls) * ih;
          return (
            <g key={p.at}>
              <rect className="bar" x={x(i) - barW / 2} y={pad.t + ih - h} width={barW} height={h}>
                <title>{`${label(p.at)}: ${p.attempts} calls, ${p.answered} answered, ${p.revenue.value} ${currency}`}</title>
              </rect>
              {i % every === 0 && (
                <text x={x(i)} y={H - pad.b + 16} textAnchor="middle" className="axis">
                  {label(p.at)}
                </text>
              )}
            </g>
          );
        })}
        <path d={line} className="revline" />
        {rev.map((m, i) => (
          <circle key={i} cx={x(i)} cy={revY(m)} r={2.5} className="revdot" />
        ))}
      </svg>
      <figcaption>
        <span className="key bar-key" /> calls <span className="key rev-key" /> revenue ({currency})
      </figcaption>
    </figure>
  );
}
