import { useState } from 'react';
import * as api from '../api/client';
import type { Did } from '../api/types';
import { useSession } from '../session';
import { CheckField, Dialog, Empty, ErrorBox, Loading, Notice, PageHeader, SelectField, TextField, toApiError, useForm, useLoad } from '../components/ui';

const blank = {
  did: '',
  gateway: 'carrier',
  failoverGateway: '',
  language: 'en',
  auth: 'pin',
  countryCode: '1',
  nationalPrefix: '',
  minDigits: '',
  maxDigits: '',
  allowPrefix: '',
  denyPrefix: '',
  pinLength: '',
  pinTries: '',
  maxCallsPerSession: '',
  bindCli: false,
  enabled: true,
};
type V = typeof blank;
const list = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

export function AccessNumbersPage() {
  const s = useSession();
  const { data, error, reload } = useLoad(() => api.dids.list(), []);
  const [editing, setEditing] = useState<Did | 'new' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [removeError, setRemoveError] = useState<api.ApiError | null>(null);
  const remove = async (did: string) => {
    if (!confirm(`Remove access number ${did}?`)) return;
    try {
      await api.dids.remove(did);
      setNotice(`Access number ${did} removed`);
      reload();
    } catch (e) {
      setRemoveError(toApiError(e));
    }
  };
  return (
    <>
      <PageHeader title="Access numbers">
        {s.canChange && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            Add access number
          </button>
        )}
      </PageHeader>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error ?? removeError} />
      {!data && !error && <Loading />}
      {data && data.length === 0 && <Empty>No access numbers yet.</Empty>}
      {data && data.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Number</th>
                <th>Auth</th>
                <th>Language</th>
                <th>Gateway</th>
                <th>Country</th>
                <th>Enabled</th>
                {s.canChange && <th aria-label="Actions" />}
              </tr>
            </thead>
            <tbody>
              {data.map((d) => (
                <tr key={d.did}>
                  <td>{d.did}</td>
                  <td>{String(d.auth)}</td>
                  <td>{String(d.language)}</td>
                  <td>
                    {String(d.gateway)}
                    {d.failoverGateway ? ` → ${String(d.failoverGateway)}` : ''}
                  </td>
                  <td>+{String(d.countryCode)}</td>
                  <td>{d.enabled ? 'yes' : 'no'}</td>
                  {s.canChange && (
                    <td className="row-actions">
                      <button type="button" onClick={() => setEditing(d)}>
                        Edit
                      </button>
                      <button type="button" className="danger" onClick={() => void remove(d.did)}>
                        Remove
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && (
        <DidDialog
          did={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={(d) => {
            setEditing(null);
            setNotice(`Access number ${d} saved`);
            reload();
          }}
        />
      )}
    </>
  );
}

function DidDialog({ did, onClose, onSaved }: { did: Did | null; onClose: () => void; onSaved: (did: string) => void }) {
  const f = useForm<V>(
    did
      ? {
          did: did.did,
          gateway: String(did.gateway ?? ''),
          failoverGateway: String(did.failoverGateway ?? ''),
          language: String(did.language),
          auth: String(did.auth),
          countryCode: String(did.countryCode ?? ''),
          nationalPrefix: String(did.nationalPrefix ?? ''),
          minDigits: String(did.minDigits ?? ''),
          maxDigits: String(did.maxDigits ?? ''),
          allowPrefix: ((did.allowPrefix as string[]) ?? []).join(', '),
          denyPrefix: ((did.denyPrefix as string[]) ?? []).join(', '),
          pinLength: String(did.pinLength ?? ''),
          pinTries: String(did.pinTries ?? ''),
          maxCallsPerSession: String(did.maxCallsPerSession ?? ''),
          bindCli: Boolean(did.bindCli),
          enabled: Boolean(did.enabled),
        }
      : blank,
  );
  const check = (v: V) => {
    const e: Record<string, string> = {};
    if (!/^\+?\d{3,20}$/.test(v.did.trim())) e.did = 'must be a phone number (digits, optionally with +)';
    if (!v.gateway.trim()) e.gateway = 'is required';
    for (const k of ['minDigits', 'maxDigits', 'pinLength', 'pinTries', 'maxCallsPerSession'] as const)
      if (v[k].trim() && !/^\d+$/.test(v[k].trim())) e[k] = 'must be a whole number';
    for (const k of ['allowPrefix', 'denyPrefix'] as const) if (list(v[k]).some((p) => !/^\d{1,20}$/.test(p))) e[k] = 'digits only, separated by commas';
    return e;
  };
  const save = async (v: V) => {
    const opt = (x: string) => (x.trim() ? x.trim() : undefined);
    const b: Record<string, unknown> = {
      gateway: v.gateway.trim(),
      failoverGateway: opt(v.failoverGateway) ?? null,
      language: v.language,
      auth: v.auth,
      countryCode: opt(v.countryCode),
      nationalPrefix: v.nationalPrefix.trim(),
      minDigits: opt(v.minDigits),
      maxDigits: opt(v.maxDigits),
      allowPrefix: list(v.allowPrefix),
      denyPrefix: list(v.denyPrefix),
      pinLength: opt(v.pinLength),
      pinTries: opt(v.pinTries),
      maxCallsPerSession: opt(v.maxCallsPerSession),
      bindCli: v.bindCli,
      enabled: v.enabled,
    };
    for (const k of Object.keys(b)) if (b[k] === undefined) delete b[k];
    if (did) await api.dids.edit(did.did, b);
    else {
      if (b.failoverGateway === null) delete b.failoverGateway;
      await api.dids.add({ did: v.did.trim(), ...b } as never);
    }
    onSaved(v.did.trim());
  };
  const field = (k: keyof V, label: string, extra: Record<string, unknown> = {}) => (
    <TextField label={label} value={String(f.values[k])} error={f.errors[k]} onChange={(e) => f.set(k, e.target.value)} {...extra} />
  );
  return (
    <Dialog title={did ? `Edit access number ${did.did}` : 'Add access number'} onClose={onClose} wide>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(check, save);
        }}
      >
        <div className="grid">
          {field('did', 'Number', { disabled: !!did, inputMode: 'tel' })}
          <SelectField label="Authentication" value={f.values.auth} onChange={(e) => f.set('auth', e.target.value)} options={[['pin', 'PIN'], ['cli', 'caller ID'], ['cli-then-pin', 'caller ID, then PIN']]} error={f.errors.auth} />
          <SelectField label="Language" value={f.values.language} onChange={(e) => f.set('language', e.target.value)} options={[['en', 'English'], ['es', 'Spanish']]} error={f.errors.language} />
          {field('gateway', 'Gateway')}
          {field('failoverGateway', 'Failover gateway')}
          {field('countryCode', 'Country code')}
          {field('nationalPrefix', 'National prefix')}
          {field('minDigits', 'Minimum digits')}
          {field('maxDigits', 'Maximum digits')}
          {field('allowPrefix', 'Allowed prefixes', { hint: 'blank: all' })}
          {field('denyPrefix', 'Denied prefixes', { hint: 'e.g. 1900' })}
          {field('pinLength', 'PIN length')}
          {field('pinTries', 'PIN tries')}
          {field('maxCallsPerSession', 'Calls per session')}
        </div>
        <CheckField label="Offer to bind the caller ID after a PIN" checked={Boolean(f.values.bindCli)} onChange={(v) => f.set('bindCli', v)} />
        <CheckField label="Enabled" checked={Boolean(f.values.enabled)} onChange={(v) => f.set('enabled', v)} />
        <ErrorBox error={f.formError} />
        <div className="buttons">
          <button type="submit" className="primary" disabled={f.busy}>
            Save
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
