import { useEffect, useState } from 'react';
import * as api from '../api/client';
import type { LiveCall } from '../api/types';
import { duration } from '../lib/format';
import { Link } from '../lib/router';
import { Empty, PageHeader } from '../components/ui';

/** Calls in progress, pushed by the server (SSE); the elapsed time ticks here between pushes. */
export function LiveCallsPage() {
  const [calls, setCalls] = useState<LiveCall[] | null>(null);
  const [connected, setConnected] = useState(false);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => api.live.subscribe(setCalls, setConnected), []);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return (
    <>
      <PageHeader title="Live calls">
        <span className={`live-dot${connected ? ' on' : ''}`} role="status">
          {connected ? 'live' : 'connecting…'}
        </span>
      </PageHeader>
      {calls && calls.length === 0 && <Empty>No calls in progress.</Empty>}
      {calls && calls.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Calls in progress">
            <thead>
              <tr>
                <th>Card</th>
                <th>Access number</th>
                <th>Caller ID</th>
                <th>Destination</th>
                <th className="num">Elapsed</th>
                <th className="num">Cap</th>
                <th className="num">Held</th>
              </tr>
            </thead>
            <tbody>
              {calls.map((c) => (
                <tr key={c.callId}>
                  <td>
                    <Link to={`/cards/${encodeURIComponent(c.serial)}`}>{c.serial}</Link>
                  </td>
                  <td>{c.did ?? '—'}</td>
                  <td>{c.callerId ?? '—'}</td>
                  <td>{c.destination}</td>
                  <td className="num">{duration((now - new Date(c.startedAt).getTime()) / 1000)}</td>
                  <td className="num">{duration(c.capSeconds)}</td>
                  <td className="num">
                    {c.held.value} {c.currency}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
