import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { LABELS, bindMetricSources } from '../../src/metrics/index.ts';
import { pgAdminUrl } from '../helpers/services.ts';
import { startHarness, waitFor, type Harness } from '../e2e/harness.ts';
import { parseProm, value, type Sample } from './prom-text.ts';
import { RedisFarm } from '../helpers/redis-servers.ts';

const TOKEN = 'metrics-token-0123456789';
const CALLER = '15551230000';
const DESTINATION = '15557654321';

async function scrape(h: Harness, token: string | undefined = TOKEN): Promise<Sample[]> {
  const r = await fetch(`http://127.0.0.1:${h.service.http.port}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseProm(await r.text());
}

const get = (h: Harness, path: string) => fetch(`http://127.0.0.1:${h.service.http.port}${path}`);

/** Every label our own metrics may carry, and what its values may be. */
const ALLOWED: Record<string, readonly string[] | RegExp> = {
  outcome: [...LABELS.outcome, ...LABELS.attempt, 'other'],
  reason: [...LABELS.refusal, ...LABELS.ignoredReason, ...LABELS.bulkRefusal, 'other'],
  state: LABELS.bulkState,
  source: [...LABELS.cdrSource, 'other'],
  result: [...LABELS.cdrResult, 'other'],
  scope: [...LABELS.lockoutScope, 'other'],
  backend: LABELS.backend,
  currency: /^([A-Z]{3}|other)$/,
  // operator-defined carrier names, at most CARRIER_LABELS of them (src/metrics/guards.ts)
  carrier: /^[A-Za-z0-9_.-]{1,64}$/,
  le: /^([0-9.e+-]+|\+Inf)$/,
};

describe('GET /metrics after calls through the real server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      service: { metrics: { cacheMs: 0 } },
      env: { CCARD_METRICS_TOKEN: TOKEN, CCARD_PIN_LOCKOUT_FAILURES: '3' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('requires the bearer token when CCARD_METRICS_TOKEN is set; /health and /ready do not', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: TOKEN }] as Array<Record<string, string>>) {
      const r = await fetch(`http://127.0.0.1:${h.service.http.port}/metrics`, { headers });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    }
    expect((await scrape(h)).length).toBeGreaterThan(0);
    expect((await get(h, '/health')).status).toBe(200);
    expect((await get(h, '/ready')).status).toBe(200);
  });

  it('counts a billed call, a refused caller, a lockout, CDRs by source and ESL protocol errors', async () => {
    const before = await scrape(h);
    const delta = (after: Sample[], name: string, labels: Record<string, string> = {}) =>
      (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);

    const card = h.data.cards.rich;
    const { outcome } = await h.place({
      did: h.data.did,
      callerId: CALLER,
      digits: [`${card.pin}#`, `${DESTINATION}#`, ''],
      carrier: () => carrier.answer(500, 3000),
    });
    expect(outcome.ended).toBe('completed');
    // Three wrong PINs: refused, and with CCARD_PIN_LOCKOUT_FAILURES=3 the caller ID is locked out...
    const wrong = await h.place({ did: h.data.did, callerId: '15550000001', digits: ['1111111111#', '2222222221#', '3333333331#'] });
    expect(wrong.outcome.ended).toBe('too_many_attempts');
    // ...so its next call is turned away at once.
    const locked = await h.place({ did: h.data.did, callerId: '15550000001', digits: [] });
    expect(locked.outcome.ended).toBe('locked_out');
    // The carrier leg's CDR once more from mod_json_cdr (already billed), a CDR of a leg ccard never reserved, junk.
    const cdr = (body: string) => fetch(`http://127.0.0.1:${h.service.http.port}/cdr`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const callId = outcome.calls[0]!.callId;
    const carrierCdr = await h.service.pool.query<{ billsec: number }>('SELECT billsec FROM cdrs WHERE call_id = $1', [callId]);
    const doc = (uuid: string) => JSON.stringify({ variables: { uuid, billsec: String(carrierCdr.rows[0]!.billsec), answer_uepoch: '1700000000000000' } });
    expect((await cdr(doc(callId))).status).toBe(200);
    expect((await cdr(doc(randomUUID()))).status).toBe(200);
    expect((await cdr('not json')).status).toBe(200);
    // A frame FreeSWITCH would never send: that connection is dropped and counted.
    const garbage = await h.sim.call({
      did: h.data.did,
      callerId: '15551230009',
      digits: [`${card.pin}#`],
      inject: [{ at: { afterEvent: 'CHANNEL_EXECUTE_COMPLETE', app: 'answer' }, raw: Buffer.from([0xff, 0x00, 0x0a, 0x0a, 0xfe, 0x0a, 0x3a, 0x0a, 0x0a]) }],
    });
    expect(garbage).toBeDefined();
    await h.waitOutcomes(4);

    const after = await scrape(h);
    expect(delta(after, 'ccard_calls_total', { outcome: 'completed' })).toBe(1);
    expect(delta(after, 'ccard_calls_total', { outcome: 'too_many_attempts' })).toBe(1);
    expect(delta(after, 'ccard_calls_total', { outcome: 'locked_out' })).toBe(1);
    expect(delta(after, 'ccard_call_attempts_total', { outcome: 'answered' })).toBe(1);
    expect(delta(after, 'ccard_authorizations_refused_total', { reason: 'wrong_pin' })).toBe(3);
    expect(delta(after, 'ccard_authorizations_refused_total', { reason: 'locked_out' })).toBe(1);
    expect(delta(after, 'ccard_pin_lockouts_total', { scope: 'cli' })).toBe(1);
    expect(delta(after, 'ccard_reservation_duration_seconds_count')).toBe(1);
    expect(delta(after, 'ccard_cdrs_total', { source: 'socket', result: 'debited' })).toBe(1);
    expect(delta(after, 'ccard_debit_duration_seconds_count', { source: 'socket' })).toBe(1);
    expect(delta(after, 'ccard_debit_duration_seconds_sum', { source: 'socket' })).toBeGreaterThan(0);
    expect(delta(after, 'ccard_cdrs_total', { source: 'json_cdr', result: 'duplicate' })).toBe(1);
    expect(delta(after, 'ccard_cdrs_ignored_total', { source: 'json_cdr', reason: 'not_a_ccard_leg' })).toBe(1);
    expect(delta(after, 'ccard_cdrs_ignored_total', { source: 'json_cdr', reason: 'invalid' })).toBe(1);
    expect(delta(after, 'ccard_esl_protocol_errors_total')).toBe(1);
    expect(value(after, 'ccard_calls_in_progress')).toBe(0);
    expect(value(after, 'ccard_calls_unbilled')).toBe(0);
    expect(value(after, 'ccard_ready')).toBe(1);
    // Nothing is held once every call is settled.
    expect(value(after, 'ccard_held_micros', { currency: 'USD' })).toBeUndefined();
  });

  it('never puts a card, serial, PIN, number or call id in a label: every label value is from a fixed list', async () => {
    const samples = await scrape(h);
    // (The card's database id is a small integer: the fixed lists above already keep it out.)
    const callIds = (await h.service.pool.query<{ call_id: string }>('SELECT call_id FROM calls')).rows.map((r) => r.call_id);
    expect(callIds.length).toBeGreaterThan(0);
    const secrets = [h.data.cards.rich.serial, h.data.cards.rich.pin, CALLER, DESTINATION, h.data.did, ...callIds];
    const own = samples.filter((s) => s.name.startsWith('ccard_') && !/^ccard_(process|nodejs)_/.test(s.name));
    expect(own.length).toBeGreaterThan(20);
    for (const s of own) {
      for (const [k, v] of Object.entries(s.labels)) {
        const allowed = ALLOWED[k];
        expect(allowed, `label ${k} of ${s.name}`).toBeDefined();
        if (allowed instanceof RegExp) expect(v).toMatch(allowed);
        else expect(allowed).toContain(v);
      }
    }
    for (const s of samples) for (const v of Object.values(s.labels)) for (const secret of secrets) expect(v).not.toContain(secret);
  });

  it('held amount and held calls are the live holds per currency, in integer micro-units', async () => {
    const card = h.data.cards.rich;
    const rows = [
      ['reserved', 1_500_000n, '1 hour'],
      ['reserved', 250_001n, '1 hour'],
      ['reserved', 9_000_000n, '-1 second'], // its hold expired: not held any more
      ['settled', 7_000_000n, '1 hour'],
    ] as const;
    const ids: string[] = [];
    for (const [status, micros, until] of rows) {
      const id = randomUUID();
      ids.push(id);
      await h.service.pool.query(
        `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, status, hold_until)
         VALUES ($1, $2, '15557654321', '{}', 60, $3, $4, now() + $5::interval)`,
        [id, card.id, micros, status, until],
      );
    }
    try {
      const s = await scrape(h);
      expect(value(s, 'ccard_held_micros', { currency: 'USD' })).toBe(1_750_001);
      expect(value(s, 'ccard_held_calls', { currency: 'USD' })).toBe(2);
    } finally {
      await h.service.pool.query('DELETE FROM calls WHERE call_id = ANY($1)', [ids]);
    }
    expect(value(await scrape(h), 'ccard_held_calls', { currency: 'USD' })).toBeUndefined();
  });

  it('unbilled calls: counted from the calls table by default, or by the injected count function', async () => {
    // This database only: let the status exist before the migration that introduces it.
    await h.service.pool.query('ALTER TABLE calls DROP CONSTRAINT IF EXISTS calls_status_check');
    const id = randomUUID();
    await h.service.pool.query(
      `INSERT INTO calls (call_id, card_id, destination, rate, max_seconds, reserved_micros, status, hold_until)
       VALUES ($1, $2, '15557654321', '{}', 60, 100, 'unbilled', now())`,
      [id, h.data.cards.rich.id],
    );
    expect(value(await scrape(h), 'ccard_calls_unbilled')).toBe(1);
    const unbind = bindMetricSources({ pool: h.service.pool, countUnbilled: async () => 7, cacheMs: 0 });
    try {
      expect(value(await scrape(h), 'ccard_calls_unbilled')).toBe(7);
    } finally {
      unbind();
    }
    await h.service.pool.query('DELETE FROM calls WHERE call_id = $1', [id]);
    expect(value(await scrape(h), 'ccard_calls_unbilled')).toBe(0);
  });
});

describe('GET /health and GET /ready', () => {
  let h: Harness;
  const dbName = () => new URL(h.db.url).pathname.slice(1);
  beforeAll(async () => {
    h = await startHarness({ env: { CCARD_DRAIN_DELAY_SECONDS: '1' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('ready: PostgreSQL, migrations and Redis answer', async () => {
    const health = await get(h, '/health');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const r = await get(h, '/ready');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready', draining: false, checks: { postgres: 'ok', migrations: 'ok', redis: 'ok' } });
  });

  it('not ready while a migration this build ships is missing', async () => {
    const [row] = (await h.service.pool.query<{ name: string }>('DELETE FROM schema_migrations WHERE name LIKE $1 RETURNING name', ['009_%'])).rows;
    try {
      const r = await get(h, '/ready');
      expect(r.status).toBe(503);
      const body = (await r.json()) as { error: { code: string; message: string }; checks: Record<string, string> };
      expect(body.error.code).toBe('NOT_READY');
      expect(body.error.message).toContain('migrations: 1 of');
      expect(body.checks).toEqual({ postgres: 'ok', migrations: 'failed', redis: 'ok' });
    } finally {
      await h.service.pool.query('INSERT INTO schema_migrations (name) VALUES ($1)', [row!.name]);
    }
    expect((await get(h, '/ready')).status).toBe(200);
  });

  it('not ready while PostgreSQL refuses connections', async () => {
    const admin = new pg.Client({ connectionString: pgAdminUrl() });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE "${dbName()}" ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [dbName()]);
      const r = await waitFor('/ready to fail', async () => {
        const res = await get(h, '/ready');
        return res.status === 503 ? res : undefined;
      });
      const body = (await r.json()) as { error: { message: string }; checks: Record<string, string> };
      expect(body.checks.postgres).toBe('failed');
      expect(body.checks.redis).toBe('ok');
      expect(body.error.message).toMatch(/^postgres: /);
    } finally {
      await admin.query(`ALTER DATABASE "${dbName()}" ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    await waitFor('/ready again', async () => ((await get(h, '/ready')).status === 200 ? true : undefined));
  });

  it('drain: /ready turns 503 at once, calls are still taken during CCARD_DRAIN_DELAY_SECONDS, then the port closes', async () => {
    const stopped = h.service.stop(5_000);
    const r = await get(h, '/ready');
    expect(r.status).toBe(503);
    const body = (await r.json()) as { draining: boolean; error: { message: string } };
    expect(body.draining).toBe(true);
    expect(body.error.message).toContain('draining');
    // Still taking calls: the load balancer sees red before the event socket closes.
    const { outcome } = await h.place({
      did: h.data.did,
      callerId: CALLER,
      digits: [`${h.data.cards.rich.pin}#`, `${DESTINATION}#`, ''],
      carrier: () => carrier.answer(100, 1000),
    });
    expect(outcome.ended).toBe('completed');
    await stopped;
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(h.service.esl.port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve('connected')));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});

describe('Redis unreachable', () => {
  const farm = new RedisFarm();
  let h: Harness;
  beforeAll(async () => {
    const node = await farm.start();
    h = await startHarness({ env: { REDIS_URL: `redis://127.0.0.1:${node.port}` } });
  });
  afterAll(async () => {
    await h?.close();
    await farm.stop();
  });

  it('/ready turns 503 naming Redis, callers fail closed, and the errors are counted as Redis errors', async () => {
    expect((await get(h, '/ready')).status).toBe(200);
    const before = await scrape(h, undefined);
    await farm.stop();
    const r = await waitFor('/ready to fail', async () => {
      const res = await get(h, '/ready');
      return res.status === 503 ? res : undefined;
    });
    const body = (await r.json()) as { error: { message: string }; checks: Record<string, string> };
    expect(body.checks).toEqual({ postgres: 'ok', migrations: 'ok', redis: 'failed' });
    expect(body.error.message).toMatch(/^redis: /);
    const { outcome } = await h.place({ did: h.data.did, callerId: CALLER, digits: [`${h.data.cards.rich.pin}#`, `${DESTINATION}#`, ''] });
    expect(outcome.ended).toBe('service_unavailable');
    const after = await scrape(h, undefined);
    const redisErrors = (value(after, 'ccard_backend_errors_total', { backend: 'redis' }) ?? 0) - (value(before, 'ccard_backend_errors_total', { backend: 'redis' }) ?? 0);
    expect(redisErrors).toBeGreaterThan(0);
    expect(value(after, 'ccard_calls_total', { outcome: 'service_unavailable' })).toBe(
      (value(before, 'ccard_calls_total', { outcome: 'service_unavailable' }) ?? 0) + 1,
    );
    expect(value(after, 'ccard_ready')).toBe(0);
  });
});
