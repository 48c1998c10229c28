import { Link } from '../lib/router';
import { PageHeader } from '../components/ui';

export function NotFoundPage() {
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        There is no page at this address. <Link to="/series">Go to the series</Link>.
      </p>
    </>
  );
}
