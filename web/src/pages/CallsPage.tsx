import * as api from '../api/client';
import { dateTime, dayAfter, duration } from '../lib/format';
import { Link } from '../lib/router';
import { useUrlState } from '../lib/url-state';
import { Empty, ErrorBox, Loading, PageHeader, Pager, TextField, useForm, useLoad } from '../components/ui';

const LIMIT = 50;
const FILTERS = ['card', 'series', 'from', 'to'] as const;

export function CallsPage() {
  const [q, setQ] = useUrlState();
  const offset = Number.parseInt(q.offset ?? '0', 10) || 0;
  const filter = Object.fromEntries(FILTERS.map((k) => [k, q[k]]));
  const query = { ...filter, to: dayAfter(filter.to), limit: LIMIT, offset };
  const { data, error } = useLoad(() => api.cdrs.search(query), [JSON.stringify(query)]);
  const f = useForm(Object.fromEntries(FILTERS.map((k) => [k, q[k] ?? ''])) as Record<(typeof FILTERS)[number], string>);
  const check = (v: typeof f.values) => ({
    ...(v.card.trim() && !/^[0-9-]{1,20}$/.test(v.card.trim()) && { card: 'must be a card serial' }),
    ...(v.series.trim() && !/^\d{1,9}$/.test(v.series.trim()) && { series: 'must be 1 to 9 digits' }),
    ...(v.from && v.to && v.from > v.to && { to: 'must not be before "from"' }),
  });
  return (
    <>
      <PageHeader title="Calls">
        <a className="button" href={api.cdrs.exportUrl({ ...filter, to: dayAfter(filter.to) })} download>
          Download CSV
        </a>
      </PageHeader>
      <form
        className="inline-form"
        role="search"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(check, async (v) => setQ({ ...Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x.trim() || undefined])), offset: undefined }));
        }}
      >
        <TextField label="Card" value={f.values.card} error={f.errors.card} onChange={(e) => f.set('card', e.target.value)} />
        <TextField label="Series" value={f.values.series} error={f.errors.series} onChange={(e) => f.set('series', e.target.value)} />
        <TextField label="From" type="date" value={f.values.from} error={f.errors.from} onChange={(e) => f.set('from', e.target.value)} />
        <TextField label="To" type="date" value={f.values.to} error={f.errors.to} onChange={(e) => f.set('to', e.target.value)} />
        <button type="submit" className="primary">
          Search
        </button>
      </form>
      <ErrorBox error={f.formError ?? error} />
      {!data && !error && <Loading />}
      {data && data.items.length === 0 && <Empty>No calls match this search.</Empty>}
      {data && data.items.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Calls">
            <thead>
              <tr>
                <th>Answered</th>
                <th>Card</th>
                <th>Access number</th>
                <th>Caller ID</th>
                <th>Destination</th>
                <th className="num">Billed</th>
                <th className="num">Cost</th>
                <th>Hangup</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((c) => (
                <tr key={c.callId}>
                  <td>{dateTime(c.answeredAt ?? c.createdAt)}</td>
                  <td>
                    <Link to={`/cards/${encodeURIComponent(c.serial)}`}>{c.serial}</Link>
                  </td>
                  <td>{c.did ?? '—'}</td>
                  <td>{c.callerId ?? '—'}</td>
                  <td>{c.destination}</td>
                  <td className="num">{duration(c.billedSeconds)}</td>
                  <td className="num">{c.cost.value}</td>
                  <td>{c.hangupCause ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && <Pager offset={offset} limit={LIMIT} hasMore={data.hasMore} count={data.items.length} onPage={(o) => setQ({ offset: o ? String(o) : undefined })} />}
    </>
  );
}
