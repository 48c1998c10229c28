/** The operator console: login, then a page per resource under a navigation bar. */
import { useEffect, useState, type ReactNode } from 'react';
import * as api from './api/client';
import { Link, match, navigate, useLocation } from './lib/router';
import { SessionContext, sessionOf, type Session } from './session';
import { Loading } from './components/ui';
import { LoginPage } from './pages/LoginPage';
import { SeriesListPage } from './pages/SeriesListPage';
import { SeriesCreatePage } from './pages/SeriesCreatePage';
import { SeriesEditPage } from './pages/SeriesEditPage';
import { SeriesShowPage } from './pages/SeriesShowPage';
import { CardsPage } from './pages/CardsPage';
import { CardPage } from './pages/CardPage';
import { AccessNumbersPage } from './pages/AccessNumbersPage';
import { CallerIdsPage } from './pages/CallerIdsPage';
import { RateTablesPage } from './pages/RateTablesPage';
import { TaxProfilesPage } from './pages/TaxProfilesPage';
import { ApiKeysPage } from './pages/ApiKeysPage';
import { OperatorsPage } from './pages/OperatorsPage';
import { AuditLogPage } from './pages/AuditLogPage';
import { CallsPage } from './pages/CallsPage';
import { LiveCallsPage } from './pages/LiveCallsPage';
import { CostReportPage } from './pages/CostReportPage';
import { NotFoundPage } from './pages/NotFoundPage';

type Route = [pattern: string, render: (p: Record<string, string>) => ReactNode];
const ROUTES: Route[] = [
  ['/', () => <SeriesListPage />],
  ['/series', () => <SeriesListPage />],
  ['/series/new', () => <SeriesCreatePage />],
  ['/series/:number', (p) => <SeriesShowPage number={p.number!} />],
  ['/series/:number/edit', (p) => <SeriesEditPage number={p.number!} />],
  ['/cards', () => <CardsPage />],
  ['/cards/:serial', (p) => <CardPage serial={p.serial!} />],
  ['/access-numbers', () => <AccessNumbersPage />],
  ['/caller-ids', () => <CallerIdsPage />],
  ['/rate-tables', () => <RateTablesPage />],
  ['/tax-profiles', () => <TaxProfilesPage />],
  ['/api-keys', () => <ApiKeysPage />],
  ['/operators', () => <OperatorsPage />],
  ['/audit', () => <AuditLogPage />],
  ['/calls', () => <CallsPage />],
  ['/calls/live', () => <LiveCallsPage />],
  ['/reports/costs', () => <CostReportPage />],
];

const NAV: Array<[group: string, items: Array<[to: string, label: string, show?: (s: Session) => boolean]>]> = [
  ['Cards', [['/series', 'Series'], ['/cards', 'Cards']]],
  ['Calls', [['/calls', 'Calls'], ['/calls/live', 'Live calls'], ['/reports/costs', 'Cost report']]],
  ['Setup', [['/access-numbers', 'Access numbers'], ['/caller-ids', 'Caller IDs'], ['/rate-tables', 'Rate tables'], ['/tax-profiles', 'Tax profiles']]],
  ['Administration', [['/operators', 'Operators', (s) => s.isAdmin], ['/api-keys', 'API keys', (s) => s.isAdmin], ['/audit', 'Audit log', (s) => s.isAdmin]]],
];

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const { path } = useLocation();

  useEffect(() => {
    api.setUnauthorizedHandler(() => setSession(null));
    api.auth.me().then(
      (me) => setSession(sessionOf(me)),
      () => setSession(null),
    );
  }, []);

  if (session === undefined) return <Loading what="Starting" />;
  if (session === null) return <LoginPage onLogin={(me) => setSession(sessionOf(me))} />;

  const logout = async (everywhere: boolean) => {
    await api.auth.logout(everywhere).catch(() => {});
    setSession(null);
    navigate('/');
  };

  let page: ReactNode = <NotFoundPage />;
  for (const [pattern, render] of ROUTES) {
    const params = match(pattern, path);
    if (params) {
      page = render(params);
      break;
    }
  }
  const active = (to: string) => path === to || (to !== '/calls' && path.startsWith(`${to}/`)) || (to === '/series' && path === '/');

  return (
    <SessionContext.Provider value={session}>
      <div className="shell">
        <header className="topbar">
          <Link to="/" className="brand">
            ccard
          </Link>
          <div className="who">
            <span>
              {session.login} <span className="role">{session.role}</span>
            </span>
            <button type="button" className="link" onClick={() => void logout(false)}>
              Log out
            </button>
            <button type="button" className="link" onClick={() => void logout(true)}>
              Log out everywhere
            </button>
          </div>
        </header>
        <nav className="sidebar" aria-label="Main">
          {NAV.map(([group, items]) => {
            const shown = items.filter(([, , show]) => !show || show(session));
            if (!shown.length) return null;
            return (
              <div key={group} className="nav-group">
                <div className="nav-title">{group}</div>
                {shown.map(([to, label]) => (
                  <Link key={to} to={to} aria-current={active(to) ? 'page' : undefined}>
                    {label}
                  </Link>
                ))}
              </div>
            );
          })}
        </nav>
        <main key={path}>{page}</main>
      </div>
    </SessionContext.Provider>
  );
}
