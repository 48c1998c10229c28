import { useEffect } from 'react';
import * as api from '../api/client';
import type { SeriesEditBody } from '../api/types';
import { moneyProblem } from '../lib/money';
import { navigate } from '../lib/router';
import { CheckField, ErrorBox, Loading, PageHeader, SelectField, TextAreaField, TextField, useForm, useLoad } from '../components/ui';

const empty = { name: '', status: 'active', notes: '', activationFee: '', maintenanceFee: '', maintenanceHours: '', expiryDate: '', expiryDays: '', maxCalls: '', selfcare: false };
type V = typeof empty;

export function SeriesEditPage({ number }: { number: string }) {
  const { data: x, error } = useLoad(() => api.series.get(number), [number]);
  const f = useForm<V>(empty);
  useEffect(() => {
    if (!x) return;
    for (const [k, v] of Object.entries({
      name: x.name,
      status: x.status,
      notes: x.notes,
      activationFee: x.activationFee.value,
      maintenanceFee: x.maintenanceFee.value,
      maintenanceHours: x.maintenanceHours?.toString() ?? '',
      expiryDate: x.expiryDate?.slice(0, 10) ?? '',
      expiryDays: x.expiryDays?.toString() ?? '',
      maxCalls: String(x.maxCalls),
      selfcare: x.selfcare,
    }))
      f.set(k as keyof V, v);
  }, [x]);

  const check = (v: V) => {
    const e: Record<string, string> = {};
    if (!v.name.trim()) e.name = 'is required';
    for (const k of ['activationFee', 'maintenanceFee'] as const) {
      const p = moneyProblem(v[k], { allowZero: true, required: true });
      if (p) e[k] = p;
    }
    if (v.maintenanceHours.trim() && !/^\d+$/.test(v.maintenanceHours.trim())) e.maintenanceHours = 'must be a whole number of hours';
    if (v.expiryDays.trim() && !/^\d+$/.test(v.expiryDays.trim())) e.expiryDays = 'must be a whole number of days';
    if (!/^\d+$/.test(v.maxCalls.trim())) e.maxCalls = 'must be a whole number from 1 to 1000';
    return e;
  };
  const save = async (v: V) => {
    const int = (x: string) => (x.trim() ? Number.parseInt(x.trim(), 10) : null);
    const b: SeriesEditBody = {
      name: v.name.trim(),
      status: v.status as SeriesEditBody['status'],
      notes: v.notes,
      activationFee: v.activationFee.trim(),
      maintenanceFee: v.maintenanceFee.trim(),
      maintenanceHours: int(v.maintenanceHours),
      expiryDate: v.expiryDate || null,
      expiryDays: int(v.expiryDays),
      maxCalls: int(v.maxCalls) ?? undefined,
      selfcare: v.selfcare,
    };
    await api.series.edit(number, b);
    navigate(`/series/${encodeURIComponent(number)}`);
  };
  const field = (k: keyof V, label: string, extra: Record<string, unknown> = {}) => (
    <TextField label={label} value={String(f.values[k])} error={f.errors[k]} onChange={(e) => f.set(k, e.target.value)} {...extra} />
  );
  return (
    <>
      <PageHeader title={`Edit series ${number}`} />
      <ErrorBox error={error} />
      {!x && !error && <Loading />}
      {x && (
        <form
          className="form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void f.submit(check, save);
          }}
        >
          <p className="muted">
            {x.count.toLocaleString('en')} cards · the number of cards never changes. Rate table {x.rateTable}, currency {x.currency}.
          </p>
          <div className="grid">
            {field('name', 'Name')}
            <SelectField label="Status" value={f.values.status} onChange={(e) => f.set('status', e.target.value)} options={['active', 'stopped', 'deleted']} error={f.errors.status} />
            {field('activationFee', 'Activation fee', { inputMode: 'decimal' })}
            {field('maintenanceFee', 'Maintenance fee', { inputMode: 'decimal' })}
            {field('maintenanceHours', 'Maintenance every (hours)', { inputMode: 'numeric' })}
            {field('expiryDate', 'Expiry date', { type: 'date' })}
            {field('expiryDays', 'Expires days after first use', { inputMode: 'numeric' })}
            {field('maxCalls', 'Simultaneous calls', { inputMode: 'numeric' })}
          </div>
          <CheckField label="Cardholders may use self-care (/my)" checked={Boolean(f.values.selfcare)} onChange={(v) => f.set('selfcare', v)} />
          <TextAreaField label="Notes" value={f.values.notes} error={f.errors.notes} onChange={(e) => f.set('notes', e.target.value)} rows={3} />
          <ErrorBox error={f.formError} />
          <div className="buttons">
            <button type="submit" className="primary" disabled={f.busy}>
              Save
            </button>
            <button type="button" onClick={() => history.back()}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </>
  );
}
