import * as api from '../api/client';
import { dateTime } from '../lib/format';
import { useUrlState } from '../lib/url-state';
import { Empty, ErrorBox, Loading, PageHeader, Pager, TextField, useForm, useLoad } from '../components/ui';

const LIMIT = 50;
const show = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

export function AuditLogPage() {
  const [q, setQ] = useUrlState();
  const offset = Number.parseInt(q.offset ?? '0', 10) || 0;
  const query = { actor: q.actor, object: q.object, from: q.from, to: q.to, limit: LIMIT, offset };
  const { data, error } = useLoad(() => api.audit.list(query), [JSON.stringify(query)]);
  const f = useForm({ actor: q.actor ?? '', object: q.object ?? '', from: q.from ?? '', to: q.to ?? '' });
  return (
    <>
      <PageHeader title="Audit log" />
      <form
        className="inline-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setQ({ actor: f.values.actor.trim(), object: f.values.object.trim(), from: f.values.from, to: f.values.to, offset: undefined });
        }}
      >
        <TextField label="Who" value={f.values.actor} onChange={(e) => f.set('actor', e.target.value)} />
        <TextField label="Object" hint='e.g. card:100-000000001, or card' value={f.values.object} onChange={(e) => f.set('object', e.target.value)} />
        <TextField label="From" type="date" value={f.values.from} onChange={(e) => f.set('from', e.target.value)} />
        <TextField label="To" type="date" value={f.values.to} onChange={(e) => f.set('to', e.target.value)} />
        <button type="submit" className="primary">
          Search
        </button>
      </form>
      <ErrorBox error={error} />
      {!data && !error && <Loading />}
      {data && data.items.length === 0 && <Empty>Nothing recorded for this search.</Empty>}
      {data && data.items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Object</th>
                <th className="num">Result</th>
                <th>Before</th>
                <th>After</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((a) => (
                <tr key={a.id}>
                  <td>{dateTime(a.at)}</td>
                  <td>{a.actor}</td>
                  <td>{a.action}</td>
                  <td>{show(a.object)}</td>
                  <td className="num">{a.status}</td>
                  <td className="json">{show(a.before)}</td>
                  <td className="json">{show(a.after)}</td>
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
