import { useState } from 'react';
import * as api from '../api/client';
import { useSession } from '../session';
import { Empty, ErrorBox, Loading, Notice, PageHeader, TextField, toApiError, useForm, useLoad } from '../components/ui';

export function TaxProfilesPage() {
  const s = useSession();
  const { data, error, reload } = useLoad(() => api.tax.list(), []);
  const f = useForm({ name: '', percent: '' });
  const [notice, setNotice] = useState<string | null>(null);
  const [removeError, setRemoveError] = useState<api.ApiError | null>(null);
  const add = () =>
    f.submit(
      (v) => ({
        ...(!v.name.trim() && { name: 'is required' }),
        ...(!/^\d{1,3}(\.\d{1,4})?$/.test(v.percent.trim()) && { percent: 'a percentage from 0 to 100, at most 4 decimals (e.g. 7.25)' }),
      }),
      async (v) => {
        await api.tax.add({ name: v.name.trim(), percent: v.percent.trim() } as never);
        setNotice(`Tax profile ${v.name.trim()} added`);
        f.set('name', '');
        f.set('percent', '');
        reload();
      },
    );
  const remove = async (name: string) => {
    try {
      await api.tax.remove(name);
      setNotice(`Tax profile ${name} removed`);
      reload();
    } catch (e) {
      setRemoveError(toApiError(e));
    }
  };
  return (
    <>
      <PageHeader title="Tax profiles" />
      {s.isAdmin && (
        <form
          className="inline-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void add();
          }}
        >
          <TextField label="Name" value={f.values.name} error={f.errors.name} onChange={(e) => f.set('name', e.target.value)} />
          <TextField label="Percent" inputMode="decimal" value={f.values.percent} error={f.errors.percent} onChange={(e) => f.set('percent', e.target.value)} />
          <button type="submit" className="primary" disabled={f.busy}>
            Add
          </button>
        </form>
      )}
      <ErrorBox error={f.formError ?? error ?? removeError} />
      {notice && <Notice>{notice}</Notice>}
      {!data && !error && <Loading />}
      {data && data.length === 0 && <Empty>No tax profiles.</Empty>}
      {data && data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th className="num">Percent</th>
              {s.isAdmin && <th aria-label="Actions" />}
            </tr>
          </thead>
          <tbody>
            {data.map((t) => (
              <tr key={t.name}>
                <td>{t.name}</td>
                <td className="num">{t.percent}%</td>
                {s.isAdmin && (
                  <td className="row-actions">
                    <button type="button" className="danger" onClick={() => void remove(t.name)}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
