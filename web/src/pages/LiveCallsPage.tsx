import { useEffect, useState } from 'react';
import * as api from '../api/client';
import type { LiveCall } from '../api/types';
import { duration } from '../lib/format';
import { Link } from '../lib/router';
import { Empty, PageHeader } from '../components/ui';

/**
 * Calls in progress, pushed by the server (SSE) each second; between pushes the elapsed time ticks on from the
 * server's own figure (elapsedSeconds at the push), so a browser clock that is off does not matter.
 */
export function LiveCallsPage() {
  const [live, setLive] = useState<{ calls: LiveCall[]; at: number } | null>(null);
  const [connected, setConnected] = useState(false);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => api.live.subscribe((calls) => setLive({ calls, at: Date.now() }), setConnected), []);
  const calls = live?.calls;
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
                  <td className="num">{duration(c.elapsedSeconds + Math.max(0, now - live!.at) / 1000)}</td>
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
