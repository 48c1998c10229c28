/**
 * The cards grid: the server pages, sorts and filters (never all rows here). Filters, sort, page and columns are
 * in the URL; the chosen columns are also saved per operator (preferences) and used when the URL names none.
 */
import { useEffect, useMemo, useState } from 'react';
import * as api from '../api/client';
import type { Card, CardGridQuery, Preferences } from '../api/types';
import { moneyProblem } from '../lib/money';
import { dateTime } from '../lib/format';
import { Link } from '../lib/router';
import { oneOf, useUrlState } from '../lib/url-state';
import { useSession } from '../session';
import { Dialog, Empty, ErrorBox, Loading, Notice, PageHeader, Pager, SelectField, Status, TextField, toApiError, useForm, useLoad } from '../components/ui';

interface Column {
  key: string;
  label: string;
  num?: boolean;
  sortable?: boolean;
  render: (c: Card) => React.ReactNode;
}
const COLUMNS: Column[] = [
  { key: 'serial', label: 'Serial', sortable: true, render: (c) => <Link to={`/cards/${encodeURIComponent(c.serial)}`}>{c.serial}</Link> },
  { key: 'series', label: 'Series', render: (c) => c.series },
  { key: 'status', label: 'Status', render: (c) => <Status value={c.status} /> },
  { key: 'balance', label: 'Balance', num: true, sortable: true, render: (c) => `${c.balance.value} ${c.currency}` },
  { key: 'creditLimit', label: 'Credit limit', num: true, render: (c) => c.creditLimit.value },
  { key: 'rateTable', label: 'Rate table', render: (c) => c.rateTable + (c.rateTableOverride ? ' (own)' : '') },
  { key: 'maxCalls', label: 'Simultaneous calls', num: true, render: (c) => String(c.maxCalls) + (c.maxCallsOverride !== null ? ' (own)' : '') },
  { key: 'lastUsedAt', label: 'Last used', sortable: true, render: (c) => dateTime(c.lastUsedAt) },
  { key: 'expiresAt', label: 'Expires', render: (c) => dateTime(c.expiresAt) },
  { key: 'activatedAt', label: 'Activated', render: (c) => dateTime(c.activatedAt) },
  { key: 'createdAt', label: 'Created', render: (c) => dateTime(c.createdAt) },
];
const DEFAULT_COLS = ['serial', 'series', 'status', 'balance', 'rateTable', 'lastUsedAt', 'expiresAt'];
const FILTERS = ['series', 'status', 'serial', 'minBalance', 'maxBalance', 'lastUsedAfter', 'lastUsedBefore'] as const;
const LIMIT = 50;

export function CardsPage() {
  const s = useSession();
  const [q, setQ] = useUrlState();
  const [savedCols, setSavedCols] = useState<string[] | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [dialog, setDialog] = useState<null | 'columns' | 'edit' | 'pins'>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    api.preferences.get().then(
      (p) => setSavedCols(p.cardColumns ?? []),
      () => setSavedCols([]),
    );
  }, [s.login]);
  const cols = useMemo(() => {
    const keys = q.cols ? q.cols.split(',') : savedCols?.length ? savedCols : DEFAULT_COLS;
    return keys.map((k) => COLUMNS.find((c) => c.key === k)).filter((c): c is Column => !!c);
  }, [q.cols, savedCols]);

  const offset = Number.parseInt(q.offset ?? '0', 10) || 0;
  const filter = Object.fromEntries(FILTERS.map((k) => [k, q[k]]));
  // sort in the URL: "balance" ascending, "-balance" descending
  const sortKey = oneOf(q.sort?.replace(/^-/, ''), ['serial', 'balance', 'lastUsedAt'] as const);
  const query: CardGridQuery = {
    ...filter,
    status: filter.status as CardGridQuery['status'], // the server names a bad one
    sort: sortKey,
    dir: sortKey ? (q.sort!.startsWith('-') ? 'desc' : 'asc') : undefined,
    limit: LIMIT,
    offset,
  };
  const { data, error, reload } = useLoad(() => api.cards.grid(query), [JSON.stringify(query)]);
  useEffect(() => setSelected(new Set()), [JSON.stringify(query)]); // a new search clears the selection

  const sortBy = (key: string) => {
    const cur = q.sort ?? '';
    setQ({ sort: cur === key ? `-${key}` : key, offset: undefined });
  };
  const ariaSort = (key: string) => (q.sort === key ? 'ascending' : q.sort === `-${key}` ? 'descending' : undefined);
  const rows = data?.items ?? [];
  const allSelected = rows.length > 0 && rows.every((r) => selected.has(r.serial));
  const toggle = (serial: string) =>
    setSelected((sel) => {
      const n = new Set(sel);
      if (n.has(serial)) n.delete(serial);
      else n.add(serial);
      return n;
    });

  const saveColumns = async (keys: string[]) => {
    setSavedCols(keys);
    setQ({ cols: keys.join(',') }, { replace: true });
    await api.preferences.set({ cardColumns: keys as NonNullable<Preferences['cardColumns']> }).catch((e: unknown) => setNotice(`These columns are used here but could not be saved: ${toApiError(e).message}`));
  };

  return (
    <>
      <PageHeader title="Cards">
        <button type="button" onClick={() => setDialog('columns')}>
          Columns
        </button>
        <a className="button" href={api.cards.exportUrl(filter, 'csv')} download>
          Download CSV
        </a>
        <a className="button" href={api.cards.exportUrl(filter, 'xlsx')} download>
          Download XLSX
        </a>
        {s.canChange && (
          <button type="button" onClick={() => setDialog('pins')}>
            Export with PINs…
          </button>
        )}
      </PageHeader>
      <SearchForm key={JSON.stringify(filter)} q={q} onSearch={(f) => setQ({ ...f, offset: undefined })} />
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} />
      {s.canChange && (
        <div className="bulkbar">
          <span>{selected.size ? `${selected.size} selected` : 'Select cards to edit them together'}</span>
          <button type="button" className="primary" disabled={!selected.size} onClick={() => setDialog('edit')}>
            Edit selected
          </button>
        </div>
      )}
      {!data && !error && <Loading />}
      {data && rows.length === 0 && <Empty>No cards match this search.</Empty>}
      {data && rows.length > 0 && (
        <p className="count" role="status">
          {data.totalExact ? '' : 'about '}
          {data.total.toLocaleString('en')} card{data.total === 1 ? '' : 's'}
        </p>
      )}
      {data && rows.length > 0 && (
        <div className="table-wrap">
          <table className="grid-table">
            <thead>
              <tr>
                {s.canChange && (
                  <th className="sel">
                    <input
                      type="checkbox"
                      aria-label="Select all cards on this page"
                      checked={allSelected}
                      onChange={() => setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.serial)))}
                    />
                  </th>
                )}
                {cols.map((c) => (
                  <th key={c.key} className={c.num ? 'num' : undefined} aria-sort={ariaSort(c.key)}>
                    {c.sortable ? (
                      <button type="button" className="sort" onClick={() => sortBy(c.key)}>
                        {c.label}
                        <span aria-hidden="true">{q.sort === c.key ? ' ▲' : q.sort === `-${c.key}` ? ' ▼' : ''}</span>
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.serial} className={selected.has(r.serial) ? 'selected' : undefined}>
                  {s.canChange && (
                    <td className="sel">
                      <input type="checkbox" aria-label={`Select card ${r.serial}`} checked={selected.has(r.serial)} onChange={() => toggle(r.serial)} />
                    </td>
                  )}
                  {cols.map((c) => (
                    <td key={c.key} className={c.num ? 'num' : undefined}>
                      {c.render(r)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && <Pager offset={offset} limit={LIMIT} hasMore={data.hasMore} count={rows.length} onPage={(o) => setQ({ offset: o ? String(o) : undefined })} />}
      {dialog === 'columns' && <ColumnsDialog current={cols.map((c) => c.key)} onClose={() => setDialog(null)} onSave={(k) => void saveColumns(k).then(() => setDialog(null))} />}
      {dialog === 'edit' && (
        <EditSelectedDialog
          serials={[...selected]}
          onClose={() => setDialog(null)}
          onDone={(n) => {
            setDialog(null);
            setNotice(`${n} card${n === 1 ? '' : 's'} updated`);
            setSelected(new Set());
            reload();
          }}
        />
      )}
      {dialog === 'pins' && <PinExportDialog filter={filter} onClose={() => setDialog(null)} />}
    </>
  );
}

function SearchForm({ q, onSearch }: { q: Record<string, string>; onSearch: (f: Record<string, string | undefined>) => void }) {
  const init = Object.fromEntries(FILTERS.map((k) => [k, q[k] ?? ''])) as Record<(typeof FILTERS)[number], string>;
  const f = useForm(init);
  const [open, setOpen] = useState(FILTERS.some((k) => k !== 'serial' && q[k]));
  const check = (v: typeof init) => {
    const e: Record<string, string> = {};
    if (v.serial && !/^[0-9-]{1,20}$/.test(v.serial.trim())) e.serial = 'digits only: a serial or its beginning';
    if (v.series && !/^\d{1,9}$/.test(v.series.trim())) e.series = 'must be 1 to 9 digits';
    for (const k of ['minBalance', 'maxBalance'] as const) {
      const p = moneyProblem(v[k], { allowNegative: true, allowZero: true });
      if (p) e[k] = p;
    }
    return e;
  };
  return (
    <form
      className="search"
      role="search"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void f.submit(check, async (v) => onSearch(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x.trim() || undefined]))));
      }}
    >
      <div className="search-row">
        <TextField label="Serial" placeholder="serial or its beginning" value={f.values.serial} error={f.errors.serial} onChange={(e) => f.set('serial', e.target.value)} />
        <button type="submit" className="primary">
          Search
        </button>
        <button type="button" className="link" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? 'Fewer filters' : 'Advanced search'}
        </button>
      </div>
      {open && (
        <div className="grid">
          <TextField label="Series number" value={f.values.series} error={f.errors.series} onChange={(e) => f.set('series', e.target.value)} />
          <SelectField
            label="Status"
            value={f.values.status}
            onChange={(e) => f.set('status', e.target.value)}
            options={[['', 'any'], 'pending', 'active', 'disabled', 'expired']}
          />
          <TextField label="Balance from" inputMode="decimal" value={f.values.minBalance} error={f.errors.minBalance} onChange={(e) => f.set('minBalance', e.target.value)} />
          <TextField label="Balance to" inputMode="decimal" value={f.values.maxBalance} error={f.errors.maxBalance} onChange={(e) => f.set('maxBalance', e.target.value)} />
          <TextField label="Last used after" type="date" value={f.values.lastUsedAfter} onChange={(e) => f.set('lastUsedAfter', e.target.value)} />
          <TextField label="Last used before" type="date" value={f.values.lastUsedBefore} onChange={(e) => f.set('lastUsedBefore', e.target.value)} />
        </div>
      )}
    </form>
  );
}

function ColumnsDialog({ current, onClose, onSave }: { current: string[]; onClose: () => void; onSave: (keys: string[]) => void }) {
  const [order, setOrder] = useState<string[]>([...current, ...COLUMNS.map((c) => c.key).filter((k) => !current.includes(k))]);
  const [shown, setShown] = useState<Set<string>>(new Set(current));
  const move = (i: number, d: -1 | 1) =>
    setOrder((o) => {
      const n = [...o];
      const j = i + d;
      if (j < 0 || j >= n.length) return o;
      [n[i], n[j]] = [n[j]!, n[i]!];
      return n;
    });
  const label = (k: string) => COLUMNS.find((c) => c.key === k)!.label;
  return (
    <Dialog title="Columns" onClose={onClose}>
      <ol className="column-list">
        {order.map((k, i) => (
          <li key={k}>
            <label>
              <input
                type="checkbox"
                checked={shown.has(k)}
                onChange={() =>
                  setShown((s) => {
                    const n = new Set(s);
                    if (n.has(k)) n.delete(k);
                    else n.add(k);
                    return n;
                  })
                }
              />
              {label(k)}
            </label>
            <span>
              <button type="button" aria-label={`Move ${label(k)} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                ↑
              </button>
              <button type="button" aria-label={`Move ${label(k)} down`} disabled={i === order.length - 1} onClick={() => move(i, 1)}>
                ↓
              </button>
            </span>
          </li>
        ))}
      </ol>
      <div className="buttons">
        <button type="button" className="primary" disabled={shown.size === 0} onClick={() => onSave(order.filter((k) => shown.has(k)))}>
          Save columns
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

/** Applies the same change to every selected card, one request each, and reports the cards that refused. */
export function EditSelectedDialog({ serials, onClose, onDone }: { serials: string[]; onClose: () => void; onDone: (n: number) => void }) {
  const tables = useLoad(() => api.rates.tables(), []);
  const f = useForm({ status: '', maxCalls: '', creditLimit: '', rateTable: '' });
  const check = (v: typeof f.values) => {
    const e: Record<string, string> = {};
    if (!v.status && !v.maxCalls.trim() && !v.creditLimit.trim() && !v.rateTable) e.status = 'choose at least one change';
    if (v.maxCalls.trim() && v.maxCalls.trim() !== 'series' && !/^\d+$/.test(v.maxCalls.trim())) e.maxCalls = 'a whole number from 1 to 1000, or "series"';
    const p = moneyProblem(v.creditLimit, { allowZero: true });
    if (p) e.creditLimit = p;
    return e;
  };
  const apply = async (v: typeof f.values) => {
    const r = await api.cards.bulk({
      serials,
      ...(v.status && { status: v.status as Card['status'] }),
      ...(v.maxCalls.trim() && { maxCalls: v.maxCalls.trim() === 'series' ? 'series' : Number.parseInt(v.maxCalls.trim(), 10) }),
      ...(v.creditLimit.trim() && { creditLimit: v.creditLimit.trim() }),
      ...(v.rateTable && { rateTable: v.rateTable }),
    } as never);
    if (r.failed.length) {
      throw new api.ApiError(400, 'PARTIAL', `${r.updated.length} of ${serials.length} cards updated; these were refused:`, r.failed.map((x) => `${x.serial}: ${x.message}`));
    }
    onDone(r.updated.length);
  };
  return (
    <Dialog title={serials.length === 1 ? `Edit card ${serials[0]}` : `Edit ${serials.length} selected cards`} onClose={onClose}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(check, apply);
        }}
      >
        <p className="muted">Leave a field blank to keep each card's value.</p>
        <SelectField label="Status" value={f.values.status} error={f.errors.status} onChange={(e) => f.set('status', e.target.value)} options={[['', 'keep'], 'active', 'disabled', 'pending', 'expired']} />
        <TextField label="Simultaneous calls" hint='a number, or "series"' value={f.values.maxCalls} error={f.errors.maxCalls} onChange={(e) => f.set('maxCalls', e.target.value)} />
        <TextField label="Credit limit" inputMode="decimal" value={f.values.creditLimit} error={f.errors.creditLimit} onChange={(e) => f.set('creditLimit', e.target.value)} />
        <SelectField
          label="Rate table"
          value={f.values.rateTable}
          error={f.errors.rateTable}
          onChange={(e) => f.set('rateTable', e.target.value)}
          options={[['', 'keep'], ['series', "the series' table"], ...(tables.data ?? []).map((t) => t.name)]}
        />
        <ErrorBox error={f.formError} />
        <div className="buttons">
          <button type="submit" className="primary" disabled={f.busy}>
            {f.busy ? 'Applying…' : serials.length === 1 ? 'Save' : 'Apply to selected'}
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function PinExportDialog({ filter, onClose }: { filter: Record<string, string | undefined>; onClose: () => void }) {
  const [confirmed, setConfirmed] = useState(false);
  return (
    <Dialog title="Export with PINs" onClose={onClose}>
      <p>
        The file will hold the <strong>PIN of every card</strong> in this search. Anyone with the file can make calls on these cards. The export is
        recorded in the audit log under your name.
      </p>
      <label className="confirm">
        <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} />I understand; export the PINs
      </label>
      <div className="buttons">
        {confirmed ? (
          <a className="button primary" href={api.cards.exportUrl(filter, 'csv', true)} download onClick={() => setTimeout(onClose, 100)}>
            Download CSV with PINs
          </a>
        ) : (
          <button type="button" className="primary" disabled>
            Download CSV with PINs
          </button>
        )}
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}
