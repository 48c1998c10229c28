import { useState } from 'react';
import * as api from '../api/client';
import type { Role } from '../api/types';
import { dateTime } from '../lib/format';
import { useSession } from '../session';
import { Empty, ErrorBox, Loading, Notice, PageHeader, SelectField, TextField, toApiError, useForm, useLoad } from '../components/ui';

export function OperatorsPage() {
  const me = useSession();
  const { data, error, reload } = useLoad(() => api.operators.list(), []);
  const f = useForm({ login: '', role: 'operator', password: '' });
  const [notice, setNotice] = useState<React.ReactNode>(null);
  const [actionError, setActionError] = useState<api.ApiError | null>(null);
  const add = () =>
    f.submit(
      (v) => ({
        ...(!/^[a-z0-9_.@-]{2,64}$/i.test(v.login.trim()) && { login: 'letters, digits, _ . @ - (2 to 64)' }),
        ...(v.password && v.password.length < 12 && { password: 'at least 12 characters, or leave blank for a generated one' }),
      }),
      async (v) => {
        const r = await api.operators.add(v.login.trim(), v.role as Role, v.password);
        setNotice(
          r.password ? (
            <>
              Operator {v.login.trim()} added. One-time password: <code className="secret">{r.password}</code> (shown once)
            </>
          ) : (
            `Operator ${v.login.trim()} added`
          ),
        );
        f.set('login', '');
        f.set('password', '');
        reload();
      },
    );
  const act = async (fn: () => Promise<unknown>, msg: string) => {
    setActionError(null);
    try {
      await fn();
      setNotice(msg);
      reload();
    } catch (e) {
      setActionError(toApiError(e));
    }
  };
  return (
    <>
      <PageHeader title="Operators" />
      <form
        className="inline-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void add();
        }}
      >
        <TextField label="Login" value={f.values.login} error={f.errors.login} onChange={(e) => f.set('login', e.target.value)} />
        <SelectField label="Role" value={f.values.role} onChange={(e) => f.set('role', e.target.value)} options={['viewer', 'operator', 'admin']} />
        <TextField label="Password" type="password" autoComplete="new-password" hint="blank: a one-time password is generated" value={f.values.password} error={f.errors.password} onChange={(e) => f.set('password', e.target.value)} />
        <button type="submit" className="primary" disabled={f.busy}>
          Add operator
        </button>
      </form>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={f.formError ?? error ?? actionError} />
      {!data && !error && <Loading />}
      {data && data.length === 0 && <Empty>No operators.</Empty>}
      {data && data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Login</th>
              <th>Role</th>
              <th>Created</th>
              <th className="num">Sessions</th>
              <th>Locked until</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {data.map((o) => (
              <tr key={o.login}>
                <td>{o.login}</td>
                <td>
                  <select
                    aria-label={`Role of ${o.login}`}
                    value={o.role}
                    disabled={o.login === me.login}
                    onChange={(e) => void act(() => api.operators.edit(o.login, { role: e.target.value as Role }), `${o.login} is now ${e.target.value}`)}
                  >
                    <option value="viewer">viewer</option>
                    <option value="operator">operator</option>
                    <option value="admin">admin</option>
                  </select>
                </td>
                <td>{dateTime(o.createdAt)}</td>
                <td className="num">{o.activeSessions}</td>
                <td>{dateTime(o.lockedUntil)}</td>
                <td className="row-actions">
                  {o.login !== me.login && (
                    <button type="button" className="danger" onClick={() => confirm(`Remove operator ${o.login}?`) && void act(() => api.operators.remove(o.login), `${o.login} removed`)}>
                      Remove
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
