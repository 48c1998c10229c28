import { useState } from 'react';
import * as api from '../api/client';
import { dateTime } from '../lib/format';
import { Empty, ErrorBox, Loading, Notice, PageHeader, TextField, toApiError, useForm, useLoad } from '../components/ui';

export function ApiKeysPage() {
  const { data, error, reload } = useLoad(() => api.apiKeys.list(), []);
  const f = useForm({ name: '' });
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [actionError, setActionError] = useState<api.ApiError | null>(null);
  const create = () =>
    f.submit(
      (v) => ({ ...(!/^[\w.-]{1,64}$/.test(v.name.trim()) && { name: 'letters, digits, _ . - (up to 64)' }) }),
      async (v) => {
        setCreated(await api.apiKeys.create(v.name.trim()));
        f.set('name', '');
        reload();
      },
    );
  const revoke = async (name: string) => {
    if (!confirm(`Revoke API key ${name}? Scripts using it stop working.`)) return;
    try {
      await api.apiKeys.revoke(name);
      reload();
    } catch (e) {
      setActionError(toApiError(e));
    }
  };
  return (
    <>
      <PageHeader title="API keys" />
      <form
        className="inline-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <TextField label="Name" value={f.values.name} error={f.errors.name} onChange={(e) => f.set('name', e.target.value)} />
        <button type="submit" className="primary" disabled={f.busy}>
          Create key
        </button>
      </form>
      {created && (
        <Notice kind="warn">
          Key <strong>{created.name}</strong>: <code className="secret">{created.key}</code> — copy it now, it is not shown again.
        </Notice>
      )}
      <ErrorBox error={f.formError ?? error ?? actionError} />
      {!data && !error && <Loading />}
      {data && data.length === 0 && <Empty>No API keys.</Empty>}
      {data && data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Created</th>
              <th>Revoked</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {data.map((k) => (
              <tr key={k.name}>
                <td>{k.name}</td>
                <td>{dateTime(k.createdAt)}</td>
                <td>{dateTime(k.revokedAt)}</td>
                <td className="row-actions">
                  {!k.revokedAt && (
                    <button type="button" className="danger" onClick={() => void revoke(k.name)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
