import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallServices, type CcardCallServices } from '../../src/app/call-services.ts';
import { ingestJsonCdr } from '../../src/cdr/json-cdr.ts';
import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { BASE_CONFIG, answeredBridge, carrierLegCdr, fixtureBody, createCard, createSeries, memoryRates, moneyFacts, pinKeys, silentLog, unansweredBridge } from './fixtures.ts';
import { storeKinds } from './stores.ts';


let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const ctx = { ivrUuid: '2b314978-1142-482a-9df4-4905a48f5811', did: '18005550100', callerId: '15551230000' };

async function setup(balance = 10_000_000n, maxConcurrent = 5) {
  const { seriesId, rateTableId } = await createSeries(db.pool, { maxConcurrent });
  const { cardId } = await createCard(db.pool, { seriesId, balance });
  // 1.20/min, per-second billing: 0.02/s.
  const rates = memoryRates({ [rateTableId]: [{ prefix: '1', ratePerMin: 1_200_000n }, { prefix: '44', ratePerMin: 3_000_000n, destination: 'UK' }] });
  return { cardId, rates, rateTableId };
}

describe.each(storeKinds)('settling calls ($name live store)', (kind) => {
  let live: ReturnType<typeof kind.make>['store'];
  let svc: CcardCallServices;
  let cardId: string;
  let rates: ReturnType<typeof memoryRates>;
  let rateTableId: string;

  beforeAll(async () => {
    live = kind.make().store;
    ({ cardId, rates, rateTableId } = await setup());
    svc = createCallServices({ pool: db.pool, live, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
  });
  afterAll(async () => {
    await live.close();
  });

  it('reserve with the authorized card reads nothing, and refuses (no hold, no row) once the card was disabled', async () => {
    const own = await setup(1_000_000n);
    const id = own.cardId;
    const svc = createCallServices({ pool: db.pool, live, rates: own.rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const auth = await svc.authorize(id);
    if (!auth.ok) throw new Error('not authorized');
    expect(auth.card.available).toBe(1_000_000n);
    const ok = await svc.reserve(id, '15557654321', ctx, { card: auth.card, available: auth.card.available });
    expect(ok).toMatchObject({ ok: true, reservation: { maxSeconds: 50, reserved: 1_000_000n } });
    // A stale amount is only a first guess: the hold is sized to what is really left.
    const tooHigh = await svc.reserve(id, '15557654321', ctx, { card: auth.card, available: 1_000_000n });
    expect(tooHigh).toEqual({ ok: false, reason: 'insufficient' });
    if (ok.ok) await svc.settle(ok.reservation, unansweredBridge());
    // A guess too low to call on is not a refusal either: the live store is asked.
    const tooLow = await svc.reserve(id, '15557654321', ctx, { card: auth.card, available: 0n });
    expect(tooLow).toMatchObject({ ok: true, reservation: { maxSeconds: 50, reserved: 1_000_000n } });
    if (tooLow.ok) await svc.settle(tooLow.reservation, unansweredBridge());
    await db.pool.query(`UPDATE cards SET status = 'disabled' WHERE id = $1`, [id]);
    // Disabled during the IVR: the caller hears that, not "balance too low".
    const refused = await svc.reserve(id, '15557654321', ctx, { card: auth.card });
    expect(refused).toEqual({ ok: false, reason: 'card_disabled' });
    expect(await live.reservations(id)).toEqual([]);
    const rows = await db.pool.query(`SELECT status FROM calls WHERE card_id = $1`, [id]);
    expect(rows.rows.map((r) => r.status)).toEqual(['released', 'released']);
  });

  it('rates and reserves the capped call, then debits what was talked', async () => {
    expect(await svc.reserve(cardId, '99999', ctx)).toEqual({ ok: false, reason: 'no_rate' });
    const r = await svc.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    expect(r.reservation).toMatchObject({ cardId, maxSeconds: 60, reserved: 1_200_000n });
    expect((await live.reservations(cardId)).map((h) => h.callId)).toEqual([r.reservation.callId]);
    const s = await svc.settle(r.reservation, answeredBridge(r.reservation.callId, 25));
    expect(s).toEqual({ billedSeconds: 25, cost: 500_000n, balance: 9_500_000n });
    expect(await live.reservations(cardId)).toEqual([]);
    expect(await live.peek(cardId)).toEqual({ available: 9_500_000n, active: 0 });
  });

  it('debits a call once when the socket CDR and the mod_json_cdr POST both arrive (either order, even at once)', async () => {
    const before = (await moneyFacts(db.pool, cardId)).balance;
    const a = await svc.reserve(cardId, '15557654321', ctx);
    const b = await svc.reserve(cardId, '15557654321', ctx);
    if (!a.ok || !b.ok) throw new Error('reserve failed');
    // a: socket first, then the POST (twice: mod_json_cdr retries).
    expect((await svc.settle(a.reservation, answeredBridge(a.reservation.callId, 30))).cost).toBe(600_000n);
    expect(await svc.ingestJsonCdr(carrierLegCdr(a.reservation.callId, 30))).toMatchObject({ status: 'duplicate' });
    expect(await svc.ingestJsonCdr(carrierLegCdr(a.reservation.callId, 30))).toMatchObject({ status: 'duplicate' });
    // b: both at the same moment.
    const [viaSocket, viaPost] = await Promise.all([
      svc.settle(b.reservation, answeredBridge(b.reservation.callId, 10)),
      svc.ingestJsonCdr(carrierLegCdr(b.reservation.callId, 10)),
    ]);
    expect(viaSocket.cost).toBe(200_000n);
    expect(['debited', 'duplicate']).toContain(viaPost.status);
    const f = await moneyFacts(db.pool, cardId);
    expect(f.balance).toBe(before - 800_000n);
    expect(f.ledgerSum).toBe(f.balance);
    const rows = await db.pool.query('SELECT 1 FROM ledger WHERE ref = ANY($1)', [[a.reservation.callId, b.reservation.callId]]);
    expect(rows.rowCount).toBe(2);
    expect(await live.reservations(cardId)).toEqual([]);
  });

  it('releases a call that never answered, from the bridge or from the POST', async () => {
    const before = (await moneyFacts(db.pool, cardId)).balance;
    const a = await svc.reserve(cardId, '15557654321', ctx);
    const b = await svc.reserve(cardId, '15557654321', ctx);
    if (!a.ok || !b.ok) throw new Error('reserve failed');
    expect(await svc.settle(a.reservation, unansweredBridge())).toEqual({ billedSeconds: 0, cost: 0n, balance: before });
    expect(await svc.ingestJsonCdr(carrierLegCdr(b.reservation.callId, 0, { answered: false }))).toMatchObject({ status: 'released' });
    const st = await db.pool.query<{ status: string }>('SELECT status FROM calls WHERE call_id = ANY($1)', [[a.reservation.callId, b.reservation.callId]]);
    expect(st.rows.map((r) => r.status)).toEqual(['released', 'released']);
    expect(await live.reservations(cardId)).toEqual([]);
    expect((await moneyFacts(db.pool, cardId)).balance).toBe(before);
  });

  it('leaves an answered call without CDR reserved (never guesses) until the POST settles it', async () => {
    const r = await svc.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    const before = (await moneyFacts(db.pool, cardId)).balance;
    const noCdr = { ...answeredBridge(r.reservation.callId, 5), carrierCdr: undefined };
    expect(await svc.settle(r.reservation, noCdr)).toEqual({ billedSeconds: 0, cost: 0n, balance: before });
    expect(await svc.settle(r.reservation, undefined)).toEqual({ billedSeconds: 0, cost: 0n, balance: before });
    expect((await moneyFacts(db.pool, cardId)).openCalls).toBe(1);
    expect((await live.reservations(cardId)).length).toBe(1);
    expect(await svc.ingestJsonCdr(carrierLegCdr(r.reservation.callId, 45, { encodeValues: true }))).toMatchObject({
      status: 'debited',
      billedSeconds: 45,
      cost: 900_000n,
    });
    expect((await moneyFacts(db.pool, cardId)).balance).toBe(before - 900_000n);
    expect(await live.reservations(cardId)).toEqual([]);
  });

  it('bills at the rate of the reservation, never past the cap', async () => {
    const r = await svc.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    // The rate triples during the call: the debit still uses the reserved rate.
    rates.byTable[rateTableId]![0]!.ratePerMin = 3_600_000n;
    try {
      const s = await svc.settle(r.reservation, answeredBridge(r.reservation.callId, 75));
      expect(s.billedSeconds).toBe(60);
      expect(s.cost).toBe(1_200_000n);
    } finally {
      rates.byTable[rateTableId]![0]!.ratePerMin = 1_200_000n;
    }
  });

  it('ignores legs that are not ccard carrier legs and refuses undecodable bodies', async () => {
    for (const leg of ['037-', '047-', '049-', '050-']) {
      expect(await svc.ingestJsonCdr(fixtureBody(leg))).toMatchObject({ status: 'ignored', reason: 'not_a_ccard_leg' });
    }
    expect(await svc.ingestJsonCdr('not json')).toMatchObject({ status: 'invalid' });
    expect(await svc.ingestJsonCdr('{"variables": 3}')).toMatchObject({ status: 'invalid' });
    expect(await svc.ingestJsonCdr(`cdr=${encodeURIComponent('{"variables":{}}')}`)).toMatchObject({ status: 'invalid' });
    const r = await svc.reserve(cardId, '15557654321', ctx);
    if (!r.ok) throw new Error(r.reason);
    // encode=base64: "cdr=" + base64 JSON, '+' kept raw.
    const b64 = Buffer.from(carrierLegCdr(r.reservation.callId, 3)).toString('base64');
    expect(await svc.ingestJsonCdr(`cdr=${b64}`)).toMatchObject({ status: 'debited', billedSeconds: 3, cost: 60_000n });
  });

  it('finds a failover leg by cc_call_id when its uuid is its own', async () => {
    const r = await svc.reserve(cardId, '447700900123', ctx);
    if (!r.ok) throw new Error(r.reason);
    const doc = JSON.parse(carrierLegCdr(r.reservation.callId, 12)) as { variables: Record<string, string> };
    doc.variables.uuid = crypto.randomUUID();
    expect(await ingestJsonCdr({ pool: db.pool, live }, JSON.stringify(doc))).toMatchObject({
      status: 'debited',
      callId: r.reservation.callId,
      cost: 600_000n,
    });
    const f = await moneyFacts(db.pool, cardId);
    expect(f.ledgerSum).toBe(f.balance);
    expect(f.openCalls).toBe(0);
  });

  it("the POST of a call this process just finished is answered from memory; anything it cannot know goes to the database", async () => {
    // Its own pool object (the memory is per pool) that counts the statements, and a live store that counts settles.
    const queries: string[] = [];
    const pool = new Proxy(db.pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver);
        return (q: string | { text: string }, ...rest: unknown[]) => {
          queries.push(typeof q === 'string' ? q : q.text);
          return (target.query as (...a: unknown[]) => unknown)(q, ...rest);
        };
      },
    });
    let settles = 0;
    let failSettle = false;
    const counted = Object.create(live) as typeof live;
    counted.settle = async (...a: Parameters<typeof live.settle>) => {
      settles++;
      if (failSettle) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      return live.settle(...a);
    };
    const own = createCallServices({ pool, live: counted, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const fresh = async () => {
      const r = await own.reserve(cardId, '15557654321', ctx);
      if (!r.ok) throw new Error(r.reason);
      return r.reservation;
    };
    const quiet = async <T>(fn: () => Promise<T>) => {
      const [q, s] = [queries.length, settles];
      const out = await fn();
      return { out, queries: queries.length - q, settles: settles - s };
    };

    // Debited over the socket: the POST (and its retry, answered or not) reads and writes nothing.
    const a = await fresh();
    await own.settle(a, answeredBridge(a.callId, 30));
    const before = await moneyFacts(db.pool, cardId);
    expect(await quiet(() => own.ingestJsonCdr(carrierLegCdr(a.callId, 30)))).toEqual({
      out: { status: 'duplicate', callId: a.callId, cardId },
      queries: 0,
      settles: 0,
    });
    expect(await quiet(() => own.ingestJsonCdr(carrierLegCdr(a.callId, 0, { answered: false })))).toMatchObject({
      out: { status: 'released' },
      queries: 0,
    });
    // Still refused when implausible, memory or not.
    const doc = JSON.parse(carrierLegCdr(a.callId, 30)) as { variables: Record<string, string> };
    doc.variables.billsec = String(11 * 86_400);
    expect((await quiet(() => own.ingestJsonCdr(JSON.stringify(doc)))).out).toMatchObject({ status: 'invalid' });
    expect(await moneyFacts(db.pool, cardId)).toEqual(before);

    // The POST first (one statement: the debit; the pricing of a call reserved here is known), the socket settle
    // after it or at the same time: the settle only reads the card's balance.
    for (const together of [false, true]) {
      const p = await fresh();
      if (!together) {
        const first = await quiet(() => own.ingestJsonCdr(carrierLegCdr(p.callId, 20)));
        expect(first).toMatchObject({ out: { status: 'debited', cost: 400_000n }, queries: 1, settles: 1 });
        const late = await quiet(() => own.settle(p, answeredBridge(p.callId, 20)));
        expect(late).toEqual({ out: { billedSeconds: 20, cost: 400_000n, balance: (await moneyFacts(db.pool, cardId)).balance }, queries: 1, settles: 0 });
      } else {
        // Either may come first; the other is the duplicate.
        const [post, late] = await Promise.all([own.ingestJsonCdr(carrierLegCdr(p.callId, 20)), own.settle(p, answeredBridge(p.callId, 20))]);
        expect(['debited', 'duplicate']).toContain(post.status);
        expect(late).toEqual({ billedSeconds: 20, cost: 400_000n, balance: (await moneyFacts(db.pool, cardId)).balance });
      }
    }
    expect((await moneyFacts(db.pool, cardId)).balance).toBe(before.balance - 800_000n);
    const mid = await moneyFacts(db.pool, cardId);

    // Released over the socket (never answered) but the carrier's CDR says it was: the database bills it.
    const b = await fresh();
    await own.settle(b, unansweredBridge());
    const billed = await quiet(() => own.ingestJsonCdr(carrierLegCdr(b.callId, 10)));
    expect(billed.out).toMatchObject({ status: 'debited', billedSeconds: 10, cost: 200_000n });
    expect(billed.queries).toBeGreaterThan(0);
    expect((await moneyFacts(db.pool, cardId)).balance).toBe(mid.balance - 200_000n);

    // The live store did not take the socket settle: the POST is not answered from memory, it settles again.
    const c = await fresh();
    failSettle = true;
    await own.settle(c, answeredBridge(c.callId, 5));
    failSettle = false;
    expect((await live.reservations(cardId)).map((h) => h.callId)).toEqual([c.callId]);
    const redone = await quiet(() => own.ingestJsonCdr(carrierLegCdr(c.callId, 5)));
    expect(redone.out).toMatchObject({ status: 'duplicate' });
    expect(redone.queries).toBeGreaterThan(0);
    expect(redone.settles).toBe(1);
    expect(await live.reservations(cardId)).toEqual([]);
    const f = await moneyFacts(db.pool, cardId);
    expect(f.ledgerSum).toBe(f.balance);
    expect(f.balance).toBe(mid.balance - 300_000n);
  });
});

describe('refusals', () => {
  it('the calls row is written while the hold is asked for: a refused or failed hold leaves no row behind', async () => {
    const { cardId, rates } = await setup(1_000_000n, 1);
    const live = new MemoryLiveBalance();
    const svc = createCallServices({ pool: db.pool, live, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const rows = async () => (await db.pool.query(`SELECT status FROM calls WHERE card_id = $1 ORDER BY created_at`, [cardId])).rows.map((r) => r.status);
    const held = await svc.reserve(cardId, '15557654321', ctx);
    expect(held.ok).toBe(true);
    // Busy (one call allowed): refused by the live store after the row went in; the row is gone again.
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'too_many_calls' });
    expect(await rows()).toEqual(['reserved']);
    if (held.ok) await svc.settle(held.reservation, unansweredBridge());
    // The live store fails outright: no row stays behind either, and the failure is the caller's to see.
    live.reserve = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    };
    await expect(svc.reserve(cardId, '15557654321', ctx)).rejects.toThrow(/ECONNREFUSED/);
    expect(await rows()).toEqual(['released']);
  });

  it('each refusal says its own cause: the card disabled or expired (read now, or refused by the insert), contention', async () => {
    const { cardId, rates } = await setup(1_000_000n, 1);
    const live = new MemoryLiveBalance();
    const svc = createCallServices({ pool: db.pool, live, rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const auth = await svc.authorize(cardId);
    if (!auth.ok) throw new Error('not authorized');
    const setStatus = (s: string) => db.pool.query(`UPDATE cards SET status = $2 WHERE id = $1`, [cardId, s]);
    await setStatus('expired');
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'card_expired' });
    expect(await svc.reserve(cardId, '15557654321', ctx, { card: auth.card })).toEqual({ ok: false, reason: 'card_expired' });
    await setStatus('disabled');
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'card_disabled' });
    await setStatus('pending');
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'card_disabled' });
    expect(await svc.reserve('00000000-0000-0000-0000-000000000000', '15557654321', ctx)).toEqual({ ok: false, reason: 'card_unknown' });
    await setStatus('active');
    // The live store never settles on an amount (other calls keep changing it): after a few tries, "try again".
    live.reserve = async () => ({ ok: false, reason: 'needs_load' });
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'retry' });
    expect((await db.pool.query(`SELECT 1 FROM calls WHERE card_id = $1`, [cardId])).rowCount).toBe(0);
  });

  it('too many calls, insufficient funds, no rate', async () => {
    const { cardId, rates } = await setup(1_000_000n, 1);
    const svc = createCallServices({ pool: db.pool, live: new MemoryLiveBalance(), rates, pinKeys, config: BASE_CONFIG, logger: silentLog });
    const a = await svc.reserve(cardId, '15557654321', ctx);
    expect(a.ok).toBe(true);
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'too_many_calls' });
    if (!a.ok) return;
    await svc.settle(a.reservation, answeredBridge(a.reservation.callId, 47));
    // 1.00 - 0.94 = 0.06 left: 3 s < minCallSeconds.
    expect(await svc.reserve(cardId, '15557654321', ctx)).toEqual({ ok: false, reason: 'insufficient' });
    expect(await svc.reserve(cardId, '999', ctx)).toEqual({ ok: false, reason: 'no_rate' });
    expect(await svc.balance(cardId)).toBe(60_000n);
  });
});
