import type { FastifyInstance, FastifySchema } from 'fastify';
import type { AdminContext } from '../../store/admin/context.ts';
import type { LiveBalanceStore } from '../../live/live-balance.ts';
import { bulkEditCards, cardBulkSchema, cardGrid, cardGridSchema, cardOverview } from '../../store/admin/card-grid.ts';
import { cardJson } from '../../store/admin/cards.ts';
import { getJob, startSeriesJob } from '../../store/admin/jobs.ts';
import { seriesCreateSchema } from '../../store/admin/series.ts';
import { costTrend, costTrendSchema, liveCalls } from '../../store/admin/reports.ts';
import { errorSchema, js } from '../schema.ts';
import * as S from '../console-schemas.ts';

type Q = Record<string, string | undefined>;
const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { session: [] }];
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema };
const doc = (tag: string, summary: string, ok: Record<number, unknown>, extra: Partial<FastifySchema> = {}): { schema: FastifySchema } => ({
  schema: { tags: [tag], summary, security, response: { ...ok, ...errors }, ...extra },
});

export interface ConsoleRouteOptions {
  live?: LiveBalanceStore;
  /** How often GET /v1/calls/live pushes the calls in progress (default 1000 ms). */
  liveIntervalMs?: number;
}

/** What the console needs beyond the operator API: the card grid, bulk edit, the card page, jobs, live calls, the chart. */
export function registerConsoleRoutes(app: FastifyInstance, ctx: AdminContext, o: ConsoleRouteOptions = {}): void {
  // Open event streams end when the server closes, or closing would wait for every console to leave the page.
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });

  app.get(
    '/cards/grid',
    doc('cards', 'The card grid: filter, sort (serial, balance, lastUsedAt; asc/desc), page, and the number of matches', { 200: S.cardGridPage }, {
      querystring: js(cardGridSchema),
    }),
    async (req) => {
      const r = await cardGrid(ctx, req.query as never);
      return { ...r, items: r.items.map(cardJson) };
    },
  );

  app.post(
    '/cards/bulk',
    doc('cards', 'Edit selected cards: status and/or maxCalls, creditLimit, rateTable for up to 1000 serials', { 200: S.bulkResult }, {
      body: js(cardBulkSchema),
    }),
    async (req) => {
      const r = await bulkEditCards(ctx, (req.body ?? {}) as never);
      return { updated: r.updated.map(cardJson), failed: r.failed };
    },
  );

  app.get('/cards/:serial/overview', doc('cards', 'The card page: the card, its latest ledger rows and calls, its live holds, its caller ids', { 200: S.cardOverview }), async (req) =>
    cardOverview(ctx, (req.params as Q).serial!, o.live),
  );

  app.post(
    '/jobs/series',
    doc('series', 'Create a series in the background (any size); answers the job at once: follow GET /v1/jobs/{id}', { 202: S.job }, {
      body: js(seriesCreateSchema),
    }),
    async (req, reply) => reply.code(202).send(await startSeriesJob(ctx, (req.body ?? {}) as never, req.actor?.id ?? 'unknown')),
  );
  app.get('/jobs/:id', doc('series', "A background job's progress and result", { 200: S.job }), async (req) => getJob(ctx, (req.params as Q).id!));

  app.get('/calls/active', doc('calls', 'Calls in progress right now (JSON snapshot)', { 200: S.liveCalls }), async () => liveCalls(ctx, o.live));

  app.get(
    '/calls/live',
    {
      schema: {
        tags: ['calls'],
        summary: 'Calls in progress, pushed by the server (Server-Sent Events): an event "calls" with the GET /v1/calls/active body every second',
        security,
        produces: ['text/event-stream'],
        response: { 200: { type: 'string', description: 'text/event-stream' }, ...errors },
      },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let closed = false;
      let timer: NodeJS.Timeout | undefined;
      const push = async () => {
        if (closed) return;
        try {
          const snap = await liveCalls(ctx, o.live);
          if (!closed) res.write(`event: calls\ndata: ${JSON.stringify(snap)}\n\n`);
        } catch (err) {
          req.log.warn({ err }, 'live calls query failed');
          if (!closed) res.write(`event: error\ndata: ${JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'calls in progress are unavailable right now' } })}\n\n`);
        }
        if (!closed) timer = setTimeout(() => void push(), o.liveIntervalMs ?? 1000);
      };
      const stop = () => {
        closed = true;
        clearTimeout(timer);
        streams.delete(end);
      };
      const end = () => {
        stop();
        res.end();
      };
      streams.add(end);
      req.raw.on('close', stop);
      res.on('close', stop);
      res.write('retry: 3000\n\n');
      await push();
    },
  );

  app.get(
    '/reports/cost-trend',
    doc('reports', 'Cost report over a date range by card, series or destination, with a per-day or per-hour series (calls, ASR, average duration, revenue)', { 200: S.costTrend }, {
      querystring: js(costTrendSchema),
    }),
    async (req) => costTrend(ctx, req.query as never),
  );
}
