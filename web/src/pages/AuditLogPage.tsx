import * as api from '../api/client';
import { dateTime, dayAfter } from '../lib/format';
import { useUrlState } from '../lib/url-state';
import { Empty, ErrorBox, Loading, PageHeader, Pager, TextField, useForm, useLoad } from '../components/ui';

const LIMIT = 50;
const show = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value in one short line: amounts by their decimal string, long values cut. */
function short(v: unknown): string {
  if (v === undefined || v === null) return '—';
  if (isObj(v) && typeof v.value === 'string' && 'micros' in v) return v.value;
  if (Array.isArray(v)) return `${v.length} item${v.length === 1 ? '' : 's'}`;
  const t = typeof v === 'string' ? v : JSON.stringify(v);
  return t.length > 48 ? `${t.slice(0, 47)}…` : t;
}

/** What changed: "status: pending → disabled" for each field that differs (or the new record's fields). */
function changes(before: unknown, after: unknown): string[] {
  if (Array.isArray(before) || Array.isArray(after)) {
    const n = Array.isArray(after) ? after.length : (before as unknown[]).length;
    return [`${n} record${n === 1 ? '' : 's'}`];
  }
  if (isObj(before) && isObj(after)) {
    // "after" is the route's answer: compare the fields both sides have (a top-up answers the move, not the card)
    const common = Object.keys(before).filter((k) => k in after);
    const out = common.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).map((k) => `${k}: ${short(before[k])} → ${short(after[k])}`);
    if (out.length) return out;
  }
  const one = isObj(after) ? after : isObj(before) ? before : null;
  if (one) return Object.entries(one).slice(0, 6).map(([k, v]) => `${k}: ${short(v)}`);
  return before == null && after == null ? [] : [`${short(before)} → ${short(after)}`];
}

export function AuditLogPage() {
  const [q, setQ] = useUrlState();
  const offset = Number.parseInt(q.offset ?? '0', 10) || 0;
  const query = { actor: q.actor, object: q.object, from: q.from, to: dayAfter(q.to), limit: LIMIT, offset };
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
                <th>Change</th>
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
                  <td className="change">
                    {changes(a.before, a.after).map((line, i) => (
                      <div key={i}>{line}</div>
                    ))}
                    {(a.before !== null || a.after !== null || a.request !== null) && (
                      <details>
                        <summary>details</summary>
                        <pre>{JSON.stringify({ request: a.request, before: a.before, after: a.after }, null, 2)}</pre>
                      </details>
                    )}
                  </td>
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
