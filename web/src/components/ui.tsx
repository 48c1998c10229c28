/** Small building blocks every page uses: fields with their messages, buttons, dialogs, tables, paging. */
import { useCallback, useEffect, useId, useRef, useState, type ReactNode, type InputHTMLAttributes, type SelectHTMLAttributes } from 'react';
import { ApiError } from '../api/client';

/** Loads data for a page; reload() runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: ApiError | undefined; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error: toApiError(error), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function toApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, 'CLIENT', 'something went wrong in the page; reload and try again');
}

/**
 * A form's values, its messages per field and its general message. submit() runs the action; a server message
 * naming a field ("count: must be ...") lands next to that field, any other one above the buttons.
 */
export function useForm<V extends Record<string, string | boolean>>(initial: V) {
  const [values, setValues] = useState<V>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof V, v: string | boolean) => {
    setValues((s) => ({ ...s, [k]: v }));
    setErrors((e) => {
      const { [k as string]: _, ...rest } = e;
      return rest;
    });
  };
  const submit = async (check: (v: V) => Record<string, string>, action: (v: V) => Promise<unknown>, fieldAliases: Record<string, string> = {}) => {
    const local = check(values);
    setFormError(null);
    if (Object.keys(local).length) {
      setErrors(local);
      return false;
    }
    setBusy(true);
    try {
      await action(values);
      setErrors({});
      return true;
    } catch (e) {
      const err = toApiError(e);
      const field = err.field && (fieldAliases[err.field] ?? err.field);
      if (field && field in values) setErrors({ [field]: err.fieldMessage });
      else setFormError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { values, set, errors, setErrors, formError, setFormError, busy, submit };
}

type FieldProps = { label: string; error?: string | undefined; hint?: ReactNode; children?: ReactNode };

function FieldShell({ id, label, error, hint, children }: FieldProps & { id: string }) {
  return (
    <div className={`field${error ? ' has-error' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && !error && <div className="hint" id={`${id}-hint`}>{hint}</div>}
      {error && (
        <div className="field-error" id={`${id}-error`} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

export function TextField({ label, error, hint, ...input }: FieldProps & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  return (
    <FieldShell id={id} label={label} error={error} hint={hint}>
      <input
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined}
        {...input}
      />
    </FieldShell>
  );
}

export function SelectField({ label, error, hint, options, ...select }: FieldProps & SelectHTMLAttributes<HTMLSelectElement> & { options: Array<string | [string, string]> }) {
  const id = useId();
  return (
    <FieldShell id={id} label={label} error={error} hint={hint}>
      <select id={id} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : undefined} {...select}>
        {options.map((o) => {
          const [value, text] = Array.isArray(o) ? o : [o, o];
          return (
            <option key={value} value={value}>
              {text}
            </option>
          );
        })}
      </select>
    </FieldShell>
  );
}

export function TextAreaField({ label, error, hint, ...ta }: FieldProps & React.TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const id = useId();
  return (
    <FieldShell id={id} label={label} error={error} hint={hint}>
      <textarea id={id} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : undefined} {...ta} />
    </FieldShell>
  );
}

export function CheckField({ label, checked, onChange, hint }: { label: string; checked: boolean; onChange: (v: boolean) => void; hint?: string }) {
  const id = useId();
  return (
    <div className="field check">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <label htmlFor={id}>{label}</label>
      {hint && <div className="hint">{hint}</div>}
    </div>
  );
}

/** A message from the server that names no field; its details (CSV line errors) listed below it. */
export function ErrorBox({ error, title }: { error: ApiError | null | undefined; title?: string }) {
  if (!error) return null;
  return (
    <div className="error-box" role="alert">
      {title && <strong>{title}: </strong>}
      {error.message}
      {error.details.length > 0 && !(error.details.length === 1 && error.message.includes(error.details[0]!)) && (
        <ul className="details">
          {error.details.map((d, i) => (
            <li key={i}>{d}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Notice({ children, kind = 'ok' }: { children: ReactNode; kind?: 'ok' | 'warn' }) {
  return (
    <div className={`notice ${kind}`} role="status">
      {children}
    </div>
  );
}

export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const id = useId();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    ref.current?.querySelector<HTMLElement>('input, select, textarea, button:not(.close)')?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
      prev?.focus?.();
    };
  }, [onClose]);
  return (
    <div className="backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={`dialog${wide ? ' wide' : ''}`} role="dialog" aria-modal="true" aria-labelledby={id} ref={ref}>
        <header>
          <h2 id={id}>{title}</h2>
          <button type="button" className="close" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · ccard`;
  }, [title]);
  return (
    <div className="page-header">
      <h1>{title}</h1>
      <div className="actions">{children}</div>
    </div>
  );
}

export function Pager({ offset, limit, hasMore, count, onPage }: { offset: number; limit: number; hasMore: boolean; count: number; onPage: (offset: number) => void }) {
  if (offset === 0 && !hasMore) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <span>{count ? `${offset + 1}–${offset + count}` : 'no rows'}</span>
      <button type="button" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        Previous
      </button>
      <button type="button" disabled={!hasMore} onClick={() => onPage(offset + limit)}>
        Next
      </button>
    </nav>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="loading" aria-live="polite">
      {what}…
    </p>
  );
}

export function Status({ value }: { value: string }) {
  return <span className={`status status-${value}`}>{value}</span>;
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}
