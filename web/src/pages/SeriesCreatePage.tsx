import { useEffect, useState } from 'react';
import * as api from '../api/client';
import type { Job, SeriesCreateBody } from '../api/types';
import { moneyProblem } from '../lib/money';
import { navigate } from '../lib/router';
import { CheckField, ErrorBox, PageHeader, SelectField, TextAreaField, TextField, useForm, useLoad } from '../components/ui';

const WHOLE = /^\d+$/;
const initial = {
  name: '',
  number: '',
  count: '',
  balance: '0',
  currency: '',
  pinLength: '10',
  status: 'pending',
  selfcare: false,
  notes: '',
  rateTable: '',
  taxProfile: '',
  activationFee: '0',
  maintenanceFee: '0',
  maintenanceHours: '',
  expiryDate: '',
  expiryDays: '',
  maxCalls: '1',
};
type V = typeof initial;

/** The same rules as the server (and the CLI); the server checks again and its message lands on the same field. */
function check(v: V): Record<string, string> {
  const e: Record<string, string> = {};
  if (!v.name.trim()) e.name = 'is required';
  if (!/^\d{1,9}$/.test(v.number.trim())) e.number = 'must be 1 to 9 digits';
  if (!WHOLE.test(v.count.trim()) || v.count.trim() === '0') e.count = 'must be a whole number of at least 1';
  const money: Array<keyof V> = ['balance', 'activationFee', 'maintenanceFee'];
  for (const k of money) {
    const p = moneyProblem(String(v[k]), { allowZero: true });
    if (p) e[k] = p;
  }
  if (v.currency.trim() && !/^[A-Za-z]{3}$/.test(v.currency.trim())) e.currency = 'must be a 3-letter ISO code';
  if (!WHOLE.test(v.pinLength) || +v.pinLength < 8 || +v.pinLength > 20) e.pinLength = 'must be a whole number from 8 to 20';
  if (!v.rateTable) e.rateTable = 'is required';
  if (v.maintenanceHours.trim() && !WHOLE.test(v.maintenanceHours.trim())) e.maintenanceHours = 'must be a whole number of hours';
  if (v.expiryDays.trim() && !WHOLE.test(v.expiryDays.trim())) e.expiryDays = 'must be a whole number of days';
  if (!WHOLE.test(v.maxCalls.trim()) || +v.maxCalls < 1 || +v.maxCalls > 1000) e.maxCalls = 'must be a whole number from 1 to 1000';
  return e;
}

const int = (s: string) => Number.parseInt(s.trim(), 10);

export function body(v: V): SeriesCreateBody {
  const opt = (s: string) => (s.trim() ? s.trim() : undefined);
  const optInt = (s: string) => (s.trim() ? int(s) : undefined);
  return {
    name: v.name.trim(),
    number: v.number.trim(),
    count: int(v.count),
    balance: v.balance.trim() || '0',
    currency: opt(v.currency),
    pinLength: int(v.pinLength),
    status: v.status as 'pending' | 'active' | 'disabled',
    rateTable: v.rateTable,
    taxProfile: opt(v.taxProfile),
    activationFee: v.activationFee.trim() || '0',
    maintenanceFee: v.maintenanceFee.trim() || '0',
    maintenanceHours: optInt(v.maintenanceHours),
    expiryDate: opt(v.expiryDate),
    expiryDays: optInt(v.expiryDays),
    maxCalls: int(v.maxCalls),
    selfcare: v.selfcare,
    notes: v.notes,
  };
}

export function SeriesCreatePage() {
  const f = useForm<V>(initial);
  const lists = useLoad(() => Promise.all([api.rates.tables(), api.tax.list().catch(() => [])]), []);
  const [progress, setProgress] = useState<{ text: string; done?: number; total?: number } | null>(null);
  const tables = lists.data?.[0] ?? [];
  const taxes = lists.data?.[1] ?? [];
  useEffect(() => {
    if (tables.length && !f.values.rateTable) f.set('rateTable', tables[0]!.name);
  }, [tables.length]);

  const create = async (v: V) => {
    setProgress({ text: `Generating ${v.count.trim()} cards…` });
    try {
      const job = await api.series.create(body(v));
      await follow(job.id, setProgress);
      navigate(`/cards?series=${encodeURIComponent(v.number.trim())}`);
    } finally {
      setProgress(null);
    }
  };
  const onSubmit = (e: React.FormEvent) => {
    e.preventDefault();
    void f.submit(check, create);
  };
  const field = (k: keyof V, label: string, extra: Record<string, unknown> = {}) => (
    <TextField label={label} value={String(f.values[k])} error={f.errors[k]} onChange={(e) => f.set(k, e.target.value)} {...extra} />
  );

  return (
    <>
      <PageHeader title="New series" />
      <form className="form" onSubmit={onSubmit} noValidate>
        <fieldset>
          <legend>Series</legend>
          <div className="grid">
            {field('name', 'Name')}
            {field('number', 'Series number', { inputMode: 'numeric', hint: 'the serial prefix, 1–9 digits' })}
            {field('count', 'Number of cards', { inputMode: 'numeric' })}
            <SelectField label="Initial status" value={f.values.status} onChange={(e) => f.set('status', e.target.value)} options={['pending', 'active', 'disabled']} error={f.errors.status} />
          </div>
        </fieldset>
        <fieldset>
          <legend>Money</legend>
          <div className="grid">
            {field('balance', 'Balance', { inputMode: 'decimal' })}
            {field('currency', 'Currency', { hint: "blank: the rate table's currency", maxLength: 3 })}
            <SelectField
              label="Rate table"
              value={f.values.rateTable}
              error={f.errors.rateTable}
              onChange={(e) => f.set('rateTable', e.target.value)}
              options={tables.length ? tables.map((t) => t.name) : [['', 'no rate tables yet']]}
            />
            <SelectField
              label="Tax profile"
              value={f.values.taxProfile}
              error={f.errors.taxProfile}
              onChange={(e) => f.set('taxProfile', e.target.value)}
              options={[['', 'none'], ...taxes.map((t): [string, string] => [t.name, `${t.name} (${t.percent}%)`])]}
            />
            {field('activationFee', 'Activation fee', { inputMode: 'decimal' })}
            {field('maintenanceFee', 'Maintenance fee', { inputMode: 'decimal' })}
            {field('maintenanceHours', 'Maintenance every (hours)', { inputMode: 'numeric' })}
          </div>
        </fieldset>
        <fieldset>
          <legend>Cards</legend>
          <div className="grid">
            {field('pinLength', 'PIN length', { inputMode: 'numeric', hint: '8 to 20 digits' })}
            {field('maxCalls', 'Simultaneous calls', { inputMode: 'numeric' })}
            {field('expiryDate', 'Expiry date', { type: 'date' })}
            {field('expiryDays', 'Expires days after first use', { inputMode: 'numeric' })}
          </div>
          <CheckField label="Cardholders may use self-care (/my)" checked={Boolean(f.values.selfcare)} onChange={(v) => f.set('selfcare', v)} />
          <TextAreaField label="Notes" value={f.values.notes} error={f.errors.notes} onChange={(e) => f.set('notes', e.target.value)} rows={3} />
        </fieldset>
        <ErrorBox error={f.formError} />
        {progress && <Progress {...progress} />}
        <div className="buttons">
          <button type="submit" className="primary" disabled={f.busy}>
            {f.busy ? 'Creating…' : 'Create series'}
          </button>
          {!progress && (
            <button type="button" onClick={() => history.back()}>
              Cancel
            </button>
          )}
        </div>
      </form>
    </>
  );
}

const PHASES: Record<string, string> = { queued: 'Waiting', generate: 'Generating', check: 'Checking PINs', insert: 'Inserting cards', ledger: 'Writing the ledger' };

function Progress({ text, done, total }: { text: string; done?: number; total?: number }) {
  return (
    <div className="progress" role="status" aria-live="polite">
      <span>{text}</span>
      <progress max={total ?? undefined} value={done ?? undefined} aria-label="Generation progress" />
    </div>
  );
}

/** The series is generated by a background job (the server stays responsive): poll it until it ends. */
async function follow(id: string, show: (p: { text: string; done?: number; total?: number }) => void): Promise<Job> {
  for (;;) {
    const j = await api.jobs.get(id);
    if (j.status === 'done') return j;
    if (j.status === 'failed') throw new api.ApiError(400, 'JOB_FAILED', j.error ?? 'the generation failed');
    show({ text: `${PHASES[j.phase] ?? j.phase}: ${j.done.toLocaleString('en')} of ${j.total.toLocaleString('en')} cards`, done: j.done, total: j.total });
    await new Promise((r) => setTimeout(r, 500));
  }
}
