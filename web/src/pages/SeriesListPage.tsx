import * as api from '../api/client';
import { Link } from '../lib/router';
import { maintenance } from '../lib/format';
import { useSession } from '../session';
import { Empty, ErrorBox, Loading, PageHeader, Status, useLoad } from '../components/ui';

export function SeriesListPage() {
  const s = useSession();
  const { data, error } = useLoad(() => api.series.list(), []);
  return (
    <>
      <PageHeader title="Series">
        {s.canChange && (
          <Link to="/series/new" className="button primary">
            New series
          </Link>
        )}
      </PageHeader>
      <ErrorBox error={error} />
      {!data && !error && <Loading />}
      {data && data.length === 0 && <Empty>No series yet. Create one to generate cards.</Empty>}
      {data && data.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Status</th>
                <th>Series</th>
                <th>Name</th>
                <th className="num">Balance</th>
                <th className="num">Quantity</th>
                <th>Rate table</th>
                <th className="num">Activation fee</th>
                <th>Maintenance fee</th>
              </tr>
            </thead>
            <tbody>
              {data.map((x) => (
                <tr key={x.number}>
                  <td>
                    <Status value={x.status} />
                  </td>
                  <td>
                    <Link to={`/series/${encodeURIComponent(x.number)}`}>{x.number}</Link>
                  </td>
                  <td>{x.name}</td>
                  <td className="num">
                    {x.initialBalance.value} {x.currency}
                  </td>
                  <td className="num">
                    <Link to={`/cards?series=${encodeURIComponent(x.number)}`}>{x.count.toLocaleString('en')}</Link>
                  </td>
                  <td>{x.rateTable}</td>
                  <td className="num">{x.activationFee.value}</td>
                  <td>{maintenance(x.maintenanceFee.value, x.maintenanceHours)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
