import * as api from '../api/client';
import { Link } from '../lib/router';
import { date, dateTime, maintenance } from '../lib/format';
import { useSession } from '../session';
import { ErrorBox, Loading, PageHeader, Status, useLoad } from '../components/ui';

export function SeriesShowPage({ number }: { number: string }) {
  const s = useSession();
  const { data: x, error } = useLoad(() => api.series.get(number), [number]);
  return (
    <>
      <PageHeader title={x ? `Series ${x.number}: ${x.name}` : `Series ${number}`}>
        <Link to={`/cards?series=${encodeURIComponent(number)}`} className="button">
          Cards
        </Link>
        {s.canChange && (
          <Link to={`/series/${encodeURIComponent(number)}/edit`} className="button primary">
            Edit
          </Link>
        )}
      </PageHeader>
      <ErrorBox error={error} />
      {!x && !error && <Loading />}
      {x && (
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <Status value={x.status} />
          </dd>
          <dt>Cards</dt>
          <dd>
            {x.count.toLocaleString('en')} ({Object.entries(x.cardsByStatus ?? {}).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'})
          </dd>
          <dt>Initial balance</dt>
          <dd>
            {x.initialBalance.value} {x.currency}
          </dd>
          <dt>Total balance</dt>
          <dd>
            {x.totalBalance?.value} {x.currency}
          </dd>
          <dt>Rate table</dt>
          <dd>{x.rateTable}</dd>
          <dt>Tax profile</dt>
          <dd>{x.taxProfile ?? '—'}</dd>
          <dt>Activation fee</dt>
          <dd>{x.activationFee.value}</dd>
          <dt>Maintenance fee</dt>
          <dd>{maintenance(x.maintenanceFee.value, x.maintenanceHours)}</dd>
          <dt>Expiry</dt>
          <dd>
            {x.expiryDate ? date(x.expiryDate) : '—'}
            {x.expiryDays ? ` · ${x.expiryDays} days after first use` : ''}
          </dd>
          <dt>PIN length</dt>
          <dd>{x.pinLength}</dd>
          <dt>Simultaneous calls</dt>
          <dd>{x.maxCalls}</dd>
          <dt>Self-care</dt>
          <dd>{x.selfcare ? 'yes' : 'no'}</dd>
          <dt>Notes</dt>
          <dd className="pre">{x.notes || '—'}</dd>
          <dt>Created</dt>
          <dd>{dateTime(x.createdAt)}</dd>
        </dl>
      )}
    </>
  );
}
