import { useState } from 'react';
import * as api from '../api/client';
import { moneyProblem } from '../lib/money';
import { dateTime, duration, newKey } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../session';
import { EditSelectedDialog } from './CardsPage';
import { Dialog, Empty, ErrorBox, Loading, Notice, PageHeader, Status, TextField, toApiError, useForm, useLoad } from '../components/ui';

export function CardPage({ serial }: { serial: string }) {
  const s = useSession();
  // One request for the page: the card, its latest ledger rows and calls, its live holds and caller IDs.
  const card = useLoad(() => api.cards.overview(serial), [serial]);
  const [dialog, setDialog] = useState<null | 'topup' | 'adjust' | 'limits'>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [statusError, setStatusError] = useState<api.ApiError | null>(null);
  const c = card.data?.card;
  const o = card.data;

  const done = (msg: string) => {
    setDialog(null);
    setNotice(msg);
    card.reload();
  };
  const setStatus = async (status: string) => {
    setStatusError(null);
    try {
      await api.cards.setStatus(serial, status);
      setNotice(`Card ${serial} is now ${status}`);
      card.reload();
    } catch (e) {
      setStatusError(toApiError(e));
    }
  };

  return (
    <>
      <PageHeader title={`Card ${serial}`}>
        {c && s.canChange && (
          <>
            <button type="button" className="primary" onClick={() => setDialog('topup')}>
              Top up
            </button>
            <button type="button" onClick={() => setDialog('adjust')}>
              Adjust balance
            </button>
            <button type="button" onClick={() => setDialog('limits')}>
              Edit limits
            </button>
            {c.status === 'disabled' ? (
              <button type="button" onClick={() => void setStatus('active')}>
                Enable
              </button>
            ) : (
              <button type="button" onClick={() => void setStatus('disabled')}>
                Disable
              </button>
            )}
          </>
        )}
      </PageHeader>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={card.error ?? statusError} />
      {!c && !card.error && <Loading />}
      {c && (
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <Status value={c.status} />
          </dd>
          <dt>Balance</dt>
          <dd className="big" data-testid="balance">
            {c.balance.value} {c.currency}
          </dd>
          <dt>Series</dt>
          <dd>
            <Link to={`/series/${encodeURIComponent(c.series)}`}>{c.series}</Link>
          </dd>
          <dt>Credit limit</dt>
          <dd>{c.creditLimit.value}</dd>
          <dt>Rate table</dt>
          <dd>{c.rateTable + (c.rateTableOverride ? ' (own)' : " (series')")}</dd>
          <dt>Simultaneous calls</dt>
          <dd>{c.maxCalls}</dd>
          <dt>Activated</dt>
          <dd>{dateTime(c.activatedAt)}</dd>
          <dt>Expires</dt>
          <dd>{dateTime(c.expiresAt)}</dd>
          <dt>Last used</dt>
          <dd>{dateTime(c.lastUsedAt)}</dd>
        </dl>
      )}

      {o && (
        <>
          <section aria-labelledby="holds-h">
            <h2 id="holds-h">Calls in progress</h2>
            {o.holds.length === 0 ? (
              <Empty>No call in progress.</Empty>
            ) : (
              <table aria-label="Calls in progress">
                <thead>
                  <tr>
                    <th>Destination</th>
                    <th>Started</th>
                    <th className="num">Cap</th>
                    <th className="num">Held</th>
                  </tr>
                </thead>
                <tbody>
                  {o.holds.map((h) => (
                    <tr key={h.callId}>
                      <td>{h.destination}</td>
                      <td>{dateTime(h.startedAt)}</td>
                      <td className="num">{duration(h.capSeconds)}</td>
                      <td className="num">{h.held.value}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>

          <section aria-labelledby="ledger-h">
            <h2 id="ledger-h">Ledger</h2>
            {o.ledger.length === 0 ? (
              <Empty>No entries.</Empty>
            ) : (
              <div className="table-wrap">
                <table aria-label="Ledger">
                  <thead>
                    <tr>
                      <th>When</th>
                      <th>Entry</th>
                      <th className="num">Amount</th>
                      <th className="num">Balance after</th>
                      <th>Reason</th>
                    </tr>
                  </thead>
                  <tbody>
                    {o.ledger.map((e) => (
                      <tr key={e.id}>
                        <td>{dateTime(e.createdAt)}</td>
                        <td>{e.reason}</td>
                        <td className="num">{e.amount.value}</td>
                        <td className="num">{e.balanceAfter.value}</td>
                        <td>{e.note}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>

          <section aria-labelledby="calls-h">
            <h2 id="calls-h">
              Calls <Link to={`/calls?card=${encodeURIComponent(serial)}`}>all calls of this card</Link>
            </h2>
            {o.calls.length === 0 ? (
              <Empty>No calls yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table aria-label="Calls">
                  <thead>
                    <tr>
                      <th>Answered</th>
                      <th>Destination</th>
                      <th className="num">Billed</th>
                      <th className="num">Cost</th>
                      <th>Hangup</th>
                    </tr>
                  </thead>
                  <tbody>
                    {o.calls.map((x) => (
                      <tr key={x.callId}>
                        <td>{dateTime(x.answeredAt ?? x.createdAt)}</td>
                        <td>{x.destination}</td>
                        <td className="num">{duration(x.billedSeconds)}</td>
                        <td className="num">{x.cost.value}</td>
                        <td>{x.hangupCause ?? '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>

          <section aria-labelledby="cid-h">
            <h2 id="cid-h">Caller IDs</h2>
            {o.callerIds.length === 0 ? <Empty>No caller ID bound: calls need the PIN.</Empty> : <p>{o.callerIds.join(', ')}</p>}
          </section>
        </>
      )}

      {dialog === 'limits' && (
        <EditSelectedDialog
          serials={[serial]}
          onClose={() => setDialog(null)}
          onDone={() => {
            setDialog(null);
            setNotice(`Card ${serial} updated`);
            card.reload();
          }}
        />
      )}
      {(dialog === 'topup' || dialog === 'adjust') && c && (
        <MoneyDialog
          kind={dialog}
          serial={serial}
          currency={c.currency}
          onClose={() => setDialog(null)}
          onDone={(balance) => done(`${dialog === 'topup' ? 'Topped up' : 'Adjusted'}: the balance is now ${balance} ${c.currency}`)}
        />
      )}
    </>
  );
}

/**
 * Top-up or adjustment. The idempotency key is made once when the dialog opens: however often "Top up" is
 * clicked (or the request retried after a timeout), the server credits once and replays its answer.
 */
function MoneyDialog({ kind, serial, currency, onClose, onDone }: { kind: 'topup' | 'adjust'; serial: string; currency: string; onClose: () => void; onDone: (balance: string) => void }) {
  const [key] = useState(newKey);
  const f = useForm({ amount: '', reason: '' });
  const check = (v: typeof f.values) => {
    const e: Record<string, string> = {};
    const p = moneyProblem(v.amount, { required: true, allowNegative: kind === 'adjust' });
    if (p) e.amount = p;
    if (kind === 'adjust' && !v.reason.trim()) e.reason = 'a reason is required for an adjustment';
    return e;
  };
  const send = async (v: typeof f.values) => {
    const r = kind === 'topup' ? await api.cards.topUp(serial, v.amount.trim(), v.reason.trim(), key) : await api.cards.adjust(serial, v.amount.trim(), v.reason.trim(), key);
    onDone(r.balance.value);
  };
  return (
    <Dialog title={kind === 'topup' ? `Top up card ${serial}` : `Adjust card ${serial}`} onClose={onClose}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void f.submit(check, send);
        }}
      >
        <TextField
          label={`Amount (${currency})`}
          inputMode="decimal"
          hint={kind === 'adjust' ? 'negative to take money off, e.g. -2.50' : 'e.g. 10 or 4.37'}
          value={f.values.amount}
          error={f.errors.amount}
          onChange={(e) => f.set('amount', e.target.value)}
        />
        <TextField label="Reason" value={f.values.reason} error={f.errors.reason} onChange={(e) => f.set('reason', e.target.value)} />
        <ErrorBox error={f.formError} />
        <div className="buttons">
          {/* Not disabled while busy on purpose: a second click is answered by the same key, crediting once. */}
          <button type="submit" className="primary">
            {kind === 'topup' ? 'Top up' : 'Adjust'}
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
