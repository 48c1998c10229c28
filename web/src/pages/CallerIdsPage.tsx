import { useState } from 'react';
import * as api from '../api/client';
import { dateTime } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../session';
import { Empty, ErrorBox, Loading, Notice, PageHeader, TextField, toApiError, useForm, useLoad } from '../components/ui';

export function CallerIdsPage() {
  const s = useSession();
  const { data, error, reload } = useLoad(() => api.callerIds.list(), []);
  const f = useForm({ callerId: '', serial: '' });
  const [notice, setNotice] = useState<string | null>(null);
  const [removeError, setRemoveError] = useState<api.ApiError | null>(null);
  const add = () =>
    f.submit(
      (v) => ({
        ...(!/^\+?\d{3,20}$/.test(v.callerId.trim()) && { callerId: 'must be a phone number' }),
        ...(!/^[0-9-]{1,20}$/.test(v.serial.trim()) && { serial: 'must be a card serial' }),
      }),
      async (v) => {
        await api.callerIds.add(v.callerId.trim(), v.serial.trim());
        setNotice(`Caller ID ${v.callerId.trim()} bound to card ${v.serial.trim()}`);
        f.set('callerId', '');
        reload();
      },
    );
  const remove = async (cid: string) => {
    try {
      await api.callerIds.remove(cid);
      setNotice(`Caller ID ${cid} unbound`);
      reload();
    } catch (e) {
      setRemoveError(toApiError(e));
    }
  };
  return (
    <>
      <PageHeader title="Caller IDs" />
      <p className="muted">A caller ID bound to a card calls without a PIN on access numbers that allow it.</p>
      {s.canChange && (
        <form
          className="inline-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void add();
          }}
        >
          <TextField label="Caller ID" inputMode="tel" value={f.values.callerId} error={f.errors.callerId} onChange={(e) => f.set('callerId', e.target.value)} />
          <TextField label="Card serial" value={f.values.serial} error={f.errors.serial} onChange={(e) => f.set('serial', e.target.value)} />
          <button type="submit" className="primary" disabled={f.busy}>
            Bind
          </button>
        </form>
      )}
      <ErrorBox error={f.formError ?? error ?? removeError} />
      {notice && <Notice>{notice}</Notice>}
      {!data && !error && <Loading />}
      {data && data.length === 0 && <Empty>No caller IDs bound.</Empty>}
      {data && data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Caller ID</th>
              <th>Card</th>
              <th>Since</th>
              {s.canChange && <th aria-label="Actions" />}
            </tr>
          </thead>
          <tbody>
            {data.map((c) => (
              <tr key={c.callerId}>
                <td>{c.callerId}</td>
                <td>
                  <Link to={`/cards/${encodeURIComponent(c.serial)}`}>{c.serial}</Link>
                </td>
                <td>{dateTime(c.createdAt as string)}</td>
                {s.canChange && (
                  <td className="row-actions">
                    <button type="button" className="danger" onClick={() => void remove(c.callerId)}>
                      Unbind
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
