import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry } from 'prom-client';
import { registry } from './registry.ts';

/**
 * With CCARD_WORKERS > 1 every worker listens on the same HTTP port, so a scrape reaches any one of them. The
 * worker that gets GET /metrics asks the supervisor, which collects every worker's registry (prom-client's
 * AggregatorRegistry, over the cluster IPC channel) and answers with the sum: counters and histograms add up,
 * calls in progress add up, and the gauges read from the database (held, unbilled) take the max, not the sum.
 */
const REQ = 'ccard:metrics-req';
const RES = 'ccard:metrics-res';
const TIMEOUT_MS = 5_000;

interface Req {
  type: typeof REQ;
  id: string;
}
interface Res {
  type: typeof RES;
  id: string;
  text?: string;
  error?: string;
}

/** In the supervisor: answers its workers' requests for the aggregated metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, msg: Req) => {
    if (msg?.type !== REQ) return;
    aggregator
      .clusterMetrics()
      .then((text) => worker.send({ type: RES, id: msg.id, text } satisfies Res))
      .catch((err: Error) => worker.send({ type: RES, id: msg.id, error: err.message } satisfies Res));
  });
}

/** The Prometheus text of this ccard: this process's registry, or every worker's when run by a supervisor. */
export async function metricsText(): Promise<string> {
  if (!cluster.isWorker || !process.send) return registry.metrics();
  const id = randomUUID();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('the supervisor did not answer with the workers\' metrics')), TIMEOUT_MS);
    const onMessage = (msg: Res) => {
      if (msg?.type !== RES || msg.id !== id) return;
      done(msg.error !== undefined ? new Error(msg.error) : undefined, msg.text);
    };
    function done(err?: Error, text?: string) {
      clearTimeout(timer);
      process.off('message', onMessage);
      if (err) reject(err);
      else resolve(text ?? '');
    }
    process.on('message', onMessage);
    process.send!({ type: REQ, id } satisfies Req);
  });
}

export const METRICS_CONTENT_TYPE = registry.contentType;
