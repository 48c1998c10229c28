/** Cardholder self-care at /my: log in with the card's serial and PIN; balance, calls, ledger, prices, caller IDs. */
import { useEffect, useState } from 'react';
import * as api from '../api/client';
import { dateTime, date, duration } from '../lib/format';
import { Empty, ErrorBox, Loading, Notice, Pager, TextField, toApiError, useForm, useLoad } from '../components/ui';

export function SelfcareApp() {
  const [loggedIn, setLoggedIn] = useState(() => !!api.selfcare.token);
  useEffect(() => {
    document.title = 'My card';
    api.setUnauthorizedHandler(() => {});
  }, []);
  return (
    <div className="my">
      <header className="my-top">
        <span className="brand">My calling card</span>
        {loggedIn && (
          <button
            type="button"
            className="link"
            onClick={() => {
              api.selfcare.logout();
              setLoggedIn(false);
            }}
          >
            Log out
          </button>
        )}
      </header>
      <main>{loggedIn ? <MyCardPage onExpired={() => setLoggedIn(false)} /> : <MyLoginPage onLogin={() => setLoggedIn(true)} />}</main>
    </div>
  );
}

function MyLoginPage({ onLogin }: { onLogin: () => void }) {
  const f = useForm({ serial: '', pin: '' });
  return (
    <form
      className="my-card login"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void f.submit(
          (v) => ({
            ...(!/^[0-9-]{4,20}$/.test(v.serial.trim()) && { serial: 'enter the serial number printed on your card' }),
            ...(!/^\d{4,20}$/.test(v.pin.trim()) && { pin: 'enter your PIN (digits only)' }),
          }),
          async (v) => {
            await api.selfcare.login(v.serial.trim(), v.pin.trim());
            onLogin();
          },
        );
      }}
    >
      <h1>Sign in</h1>
      <TextField label="Serial number" inputMode="numeric" autoComplete="username" value={f.values.serial} error={f.errors.serial} onChange={(e) => f.set('serial', e.target.value)} />
      <TextField label="PIN" type="password" inputMode="numeric" autoComplete="current-password" value={f.values.pin} error={f.errors.pin} onChange={(e) => f.set('pin', e.target.value)} />
      <ErrorBox error={f.formError} />
      <button type="submit" className="primary block" disabled={f.busy}>
        {f.busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}

function MyCardPage({ onExpired }: { onExpired: () => void }) {
  const me = useLoad(() => api.selfcare.me(), []);
  const [offset, setOffset] = useState(0);
  const calls = useLoad(() => api.selfcare.calls({ limit: 20, offset }), [offset]);
  const ledger = useLoad(() => api.selfcare.ledger({ limit: 20 }), []);
  useEffect(() => {
    if (me.error?.status === 401) {
      api.selfcare.logout();
      onExpired();
    }
  }, [me.error, onExpired]);
  const c = me.data;
  return (
    <>
      <ErrorBox error={me.error} />
      {!c && !me.error && <Loading />}
      {c && (
        <section className="my-card balance" aria-label="Balance">
          <div className="label">Balance</div>
          <div className="amount">
            {c.balance.value} <span>{c.currency}</span>
          </div>
          <div className="meta">
            Card {c.serial} · {c.status} · {c.expiresAt ? `expires ${date(c.expiresAt)}` : 'no expiry date'}
          </div>
        </section>
      )}
      <PriceLookup />
      <section className="my-card" aria-labelledby="my-calls-h">
        <h2 id="my-calls-h">Calls</h2>
        <ErrorBox error={calls.error} />
        {calls.data && calls.data.items.length === 0 && <Empty>No calls yet.</Empty>}
        {calls.data && calls.data.items.length > 0 && (
          <>
            <ul className="my-list" aria-label="Calls">
              {calls.data.items.map((x, i) => (
                <li key={`${x.answeredAt}-${i}`}>
                  <div>
                    <strong>{x.destination}</strong>
                    <small>
                      {dateTime(x.answeredAt)} · {duration(x.billedSeconds)}
                    </small>
                  </div>
                  <span className="cost">{x.cost.value}</span>
                </li>
              ))}
            </ul>
            <Pager offset={offset} limit={20} hasMore={calls.data.hasMore} count={calls.data.items.length} onPage={setOffset} />
          </>
        )}
      </section>
      {ledger.error?.status !== 404 && (
      <section className="my-card" aria-labelledby="my-ledger-h">
        <h2 id="my-ledger-h">Payments and charges</h2>
        {ledger.error ? (
          <ErrorBox error={ledger.error} />
        ) : !ledger.data ? (
          <Loading />
        ) : ledger.data.items.length === 0 ? (
          <Empty>Nothing yet.</Empty>
        ) : (
          <ul className="my-list" aria-label="Ledger">
            {ledger.data.items.map((e, i) => (
              <li key={`${e.createdAt}-${i}`}>
                <div>
                  <strong>{REASONS[e.reason] ?? e.reason}</strong>
                  <small>
                    {dateTime(e.createdAt)}
                    {e.note ? ` · ${e.note}` : ''}
                  </small>
                </div>
                <span className="cost">{e.amount.value}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      )}
      <CallerIds />
    </>
  );
}

const REASONS: Record<string, string> = {
  initial: 'Initial balance',
  topup: 'Top-up',
  adjustment: 'Adjustment',
  call: 'Call',
  activation: 'Activation fee',
  maintenance: 'Maintenance fee',
};

function PriceLookup() {
  const f = useForm({ number: '' });
  const [price, setPrice] = useState<Awaited<ReturnType<typeof api.selfcare.rate>> | null>(null);
  return (
    <section className="my-card" aria-labelledby="price-h">
      <h2 id="price-h">What does a call cost?</h2>
      <form
        noValidate
        className="row-form"
        onSubmit={(e) => {
          e.preventDefault();
          setPrice(null);
          void f.submit(
            (v) => ({ ...(!/^\+?\d{3,20}$/.test(v.number.replace(/[\s-]/g, '')) && { number: 'enter a phone number, country code first' }) }),
            async (v) => setPrice(await api.selfcare.rate(v.number.replace(/[\s-]/g, ''))),
          );
        }}
      >
        <TextField label="Number to call" inputMode="tel" value={f.values.number} error={f.errors.number} onChange={(e) => f.set('number', e.target.value)} />
        <button type="submit" disabled={f.busy}>
          Look up
        </button>
      </form>
      <ErrorBox error={f.formError} />
      {price && (
        <p className="price" role="status">
          {price.destination || `+${price.prefix}`}:{' '}
          <strong>
            {price.ratePerMinute} {price.currency}
          </strong>{' '}
          per minute
          {/^0(\.0+)?$/.test(price.connectFee) ? '' : `, plus ${price.connectFee} to connect`}
          {/^0(\.0+)?$/.test(price.taxPercent) ? '' : `, plus ${price.taxPercent}% tax`}. Billed per {price.initialIncrement} s, then per{' '}
          {price.subsequentIncrement} s.
        </p>
      )}
    </section>
  );
}

function CallerIds() {
  const list = useLoad(() => api.selfcare.callerIds(), []);
  const f = useForm({ callerId: '' });
  const [notice, setNotice] = useState<string | null>(null);
  const [err, setErr] = useState<api.ApiError | null>(null);
  // Nothing to offer when no access number identifies callers by caller ID.
  if (list.data && !list.data.pinlessAvailable && list.data.items.length === 0) return null;
  const unbind = async (cid: string) => {
    try {
      await api.selfcare.unbind(cid);
      setNotice(`${cid} removed`);
      list.reload();
    } catch (e) {
      setErr(toApiError(e));
    }
  };
  return (
    <section className="my-card" aria-labelledby="cid-h">
      <h2 id="cid-h">Phones that call without a PIN</h2>
      <ErrorBox error={list.error ?? err} />
      {notice && <Notice>{notice}</Notice>}
      {list.data && list.data.items.length === 0 && <Empty>None yet.</Empty>}
      {list.data && list.data.items.length > 0 && (
        <ul className="my-list" aria-label="Phones without PIN">
          {list.data.items.map((c) => (
            <li key={c.callerId}>
              <strong>{c.callerId}</strong>
              <button type="button" className="link danger" onClick={() => void unbind(c.callerId)}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        noValidate
        className="row-form"
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(
            (v) => ({ ...(!/^\+?\d{3,20}$/.test(v.callerId.replace(/[\s-]/g, '')) && { callerId: 'enter your phone number, country code first' }) }),
            async (v) => {
              await api.selfcare.bind(v.callerId.replace(/[\s-]/g, ''));
              setNotice(`${v.callerId} added`);
              f.set('callerId', '');
              list.reload();
            },
          );
        }}
      >
        <TextField label="Add a phone number" inputMode="tel" hint={list.data ? `up to ${list.data.max} numbers` : undefined} value={f.values.callerId} error={f.errors.callerId} onChange={(e) => f.set('callerId', e.target.value)} />
        <button type="submit" disabled={f.busy}>
          Add
        </button>
      </form>
      <ErrorBox error={f.formError} />
    </section>
  );
}
