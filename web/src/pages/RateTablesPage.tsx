import { useState } from 'react';
import * as api from '../api/client';
import { useUrlState } from '../lib/url-state';
import { useSession } from '../session';
import { CheckField, Empty, ErrorBox, Loading, Notice, PageHeader, Pager, TextField, useForm, useLoad } from '../components/ui';

interface RateRow {
  prefix: string;
  destination: string;
  rate: string;
  connectFee: string;
  initialIncrement: number;
  subsequentIncrement: number;
}

export function RateTablesPage() {
  const s = useSession();
  const [q, setQ] = useUrlState();
  const tables = useLoad(() => api.rates.tables(), []);
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <>
      <PageHeader title="Rate tables" />
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={tables.error} />
      {!tables.data && !tables.error && <Loading />}
      {tables.data && tables.data.length === 0 && <Empty>No rate tables yet: import a CSV to create one.</Empty>}
      {tables.data && tables.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Currency</th>
              <th className="num">Decimals</th>
              <th>Rounding</th>
              <th className="num">Rates</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {tables.data.map((t) => (
              <tr key={t.name}>
                <td>
                  <button type="button" className="link" onClick={() => setQ({ table: t.name, offset: undefined })}>
                    {t.name}
                  </button>
                </td>
                <td>{t.currency}</td>
                <td className="num">{String(t.decimals ?? '')}</td>
                <td>{String(t.rounding ?? '')}</td>
                <td className="num">{String(t.rateCount ?? '')}</td>
                <td className="row-actions">
                  <a className="button" href={api.rates.exportUrl(t.name)} download={`${t.name}.csv`}>
                    Export CSV
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {s.isAdmin && (
        <ImportForm
          tables={(tables.data ?? []).map((t) => t.name)}
          onImported={(msg) => {
            setNotice(msg);
            tables.reload();
          }}
        />
      )}
      {q.table && <Rates table={q.table} offset={Number.parseInt(q.offset ?? '0', 10) || 0} onPage={(o) => setQ({ offset: o ? String(o) : undefined })} />}
    </>
  );
}

function ImportForm({ tables, onImported }: { tables: string[]; onImported: (msg: string) => void }) {
  const f = useForm({ table: '', merge: false, fileName: '' });
  const [csv, setCsv] = useState<string | null>(null);
  const onFile = async (file: File | undefined) => {
    f.set('fileName', file?.name ?? '');
    setCsv(file ? await file.text() : null);
  };
  const check = (v: typeof f.values) => ({
    ...(!/^[A-Za-z0-9_.-]{1,64}$/.test(v.table.trim()) && { table: 'a table name: letters, digits, _ . -' }),
    ...(csv === null && { fileName: 'choose a CSV file' }),
  });
  const upload = async (v: typeof f.values) => {
    const r = await api.rates.import(v.table.trim(), csv!, Boolean(v.merge));
    const n = (r.imported ?? r.rates ?? r.count) as number | undefined;
    onImported(`Rate table ${v.table.trim()} imported${n !== undefined ? `: ${n} rates` : ''}`);
  };
  return (
    <section className="card-section" aria-labelledby="import-h">
      <h2 id="import-h">Import a rate CSV</h2>
      <p className="muted">
        Columns: prefix, destination, rate, connect_fee, initial_increment, subsequent_increment, effective_from, effective_to. All or nothing: one bad
        line and nothing changes.
      </p>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(check, upload, { csv: 'fileName', table: 'table' });
        }}
      >
        <div className="grid">
          <TextField label="Rate table" list="rate-table-names" hint="an existing table, or a new name" value={f.values.table} error={f.errors.table} onChange={(e) => f.set('table', e.target.value)} />
          <datalist id="rate-table-names">
            {tables.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
          <TextField label="CSV file" type="file" accept=".csv,text/csv" error={f.errors.fileName} onChange={(e) => void onFile(e.target.files?.[0])} />
        </div>
        <CheckField label="Merge into the table (keep rates the file does not mention)" checked={Boolean(f.values.merge)} onChange={(v) => f.set('merge', v)} />
        <ErrorBox error={f.formError} title="The file was not imported" />
        <div className="buttons">
          <button type="submit" className="primary" disabled={f.busy}>
            {f.busy ? 'Importing…' : 'Import'}
          </button>
        </div>
      </form>
    </section>
  );
}

function Rates({ table, offset, onPage }: { table: string; offset: number; onPage: (o: number) => void }) {
  const { data, error } = useLoad(() => api.rates.rates(table, { limit: 100, offset }) as Promise<{ items: RateRow[]; hasMore: boolean }>, [table, offset]);
  return (
    <section aria-labelledby="rates-h">
      <h2 id="rates-h">Rates of {table}</h2>
      <ErrorBox error={error} />
      {data && (
        <>
          <table aria-label={`Rates of ${table}`}>
            <thead>
              <tr>
                <th>Prefix</th>
                <th>Destination</th>
                <th className="num">Rate / min</th>
                <th className="num">Connect fee</th>
                <th className="num">Increments</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((r) => (
                <tr key={r.prefix}>
                  <td>{r.prefix}</td>
                  <td>{r.destination}</td>
                  <td className="num">{r.rate}</td>
                  <td className="num">{r.connectFee}</td>
                  <td className="num">
                    {r.initialIncrement}/{r.subsequentIncrement}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager offset={offset} limit={100} hasMore={data.hasMore} count={data.items.length} onPage={onPage} />
        </>
      )}
    </section>
  );
}
