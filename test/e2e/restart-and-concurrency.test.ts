import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { parseMoney } from '../../src/money/money.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { withTransaction } from '../../src/store/db.ts';
import { startService } from '../../src/app/service.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/freeswitch/json_cdr/', import.meta.url));

/** The b-leg POST body mod_json_cdr sent in the f_copy_json_cdr recording, re-aimed at another call. */
function recordedCarrierCdr(callId: string, billsec: number): string {
  const file = readdirSync(FIXTURES).find((f) => f.startsWith('040-'))!;
  const raw = readFileSync(path.join(FIXTURES, file));
  const doc = JSON.parse(raw.subarray(raw.indexOf('\r\n\r\n') + 4).toString('utf8'));
  const answer = BigInt(doc.variables.answer_uepoch);
  Object.assign(doc.variables, {
    uuid: callId,
    cc_call_id: callId,
    billsec: String(billsec),
    billmsec: String(billsec * 1000),
    end_uepoch: String(answer + BigInt(billsec) * 1_000_000n),
  });
  return JSON.stringify(doc);
}


describe('no overspend and no lost or double debit', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('20 simultaneous calls on one card: never below zero, debits == CDR costs, no hold left', async () => {
    h = await startHarness();
    const card = h.data.cards.rich;
    await h.service.pool.query('UPDATE cards SET max_concurrent_calls = 20 WHERE id = $1', [card.id]);
    const initial = await h.balance(card.id);
    const talks = Array.from({ length: 20 }, (_, i) => 5_000 + ((i * 7919) % 40) * 60_000);
    const results = await h.sim.callMany(
      20,
      (i) => ({
        did: h!.data.did,
        callerId: `1555123${String(1000 + i)}`,
        // 1 = USA at 0.02/min: the first call may hold most of the card, later ones split what is left.
        digits: [`${card.pin}#`, `1212555${String(1000 + i)}#`, ''],
        carrier: () => carrier.answer(300, talks[i]!),
      }),
      20,
    );
    const outcomes = await h.waitOutcomes(20);
    expect(results).toHaveLength(20);
    const attempts = outcomes.flatMap((o) => o.calls);
    const bridged = attempts.filter((a) => a.outcome === 'answered');
    expect(bridged.length).toBeGreaterThan(0);
    // Refusals are the caller hearing "insufficient balance", never an overdraft.
    const refused = outcomes.filter((o) => o.calls.length === 0);
    for (const o of refused) expect(o.played).toContain('insufficient_balance');

    const final = await h.balance(card.id);
    expect(final).toBeGreaterThanOrEqual(0n);
    const cdrs = await h.service.pool.query<{ n: bigint; sum: bigint | null }>(
      'SELECT count(*) AS n, sum(cost_micros)::bigint AS sum FROM cdrs WHERE card_id = $1',
      [card.id],
    );
    expect(Number(cdrs.rows[0]!.n)).toBe(bridged.length);
    const debits = await h.service.pool.query<{ sum: bigint | null }>(
      `SELECT sum(amount_micros)::bigint AS sum FROM ledger WHERE card_id = $1 AND reason = 'call'`,
      [card.id],
    );
    expect(-(debits.rows[0]!.sum ?? 0n)).toBe(cdrs.rows[0]!.sum ?? 0n);
    expect(final).toBe(initial - (cdrs.rows[0]!.sum ?? 0n));
    expect(await h.service.live.reservations(card.id)).toEqual([]);
  });

  it('the same hangup and CDR delivered twice (socket, duplicated events, mod_json_cdr): debited once', async () => {
    h = await startHarness({ jsonCdr: true });
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: '15551230000',
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(500, 3000),
      inject: [
        { at: { afterEvent: 'CHANNEL_UNBRIDGE' }, duplicate: true },
        { at: { afterEvent: 'CHANNEL_EXECUTE_COMPLETE', app: 'bridge' }, duplicate: true },
        { at: { afterEvent: 'CHANNEL_HANGUP' }, duplicate: true },
      ],
    });
    const callId = outcome.calls[0]!.callId;
    // mod_json_cdr delivered the carrier leg's CDR as well.
    await waitFor('the mod_json_cdr POST', async () => (result.bLegs[0]!.cdrPostStatus ? true : undefined));
    expect(result.bLegs[0]!.cdrPostStatus).toBe(200);
    const rows = await h.service.pool.query('SELECT source FROM cdrs WHERE call_id = $1', [callId]);
    expect(rows.rows).toHaveLength(1);
    const ledger = await h.service.pool.query(`SELECT amount_micros FROM ledger WHERE card_id = $1 AND reason = 'call' AND ref = $2`, [card.id, callId]);
    expect(ledger.rows).toHaveLength(1);
    expect(await h.balance(card.id)).toBe(before - parseMoney('0.04'));
  });

  it('ccard restarts while a call is bridged: the new process keeps the hold and the CDR debits it once', async () => {
    let bridgeSent!: () => void;
    const bridging = new Promise<void>((r) => (bridgeSent = r));
    h = await startHarness({
      service: {
        // Tells the test when the flow hands the bridge to FreeSWITCH.
        wrapCall: (call) =>
          new Proxy(call, {
            get: (t, p) => {
              if (p === 'bridge') return (...args: Parameters<typeof t.bridge>) => (bridgeSent(), t.bridge(...args));
              const v = Reflect.get(t, p);
              return typeof v === 'function' ? v.bind(t) : v;
            },
          }),
      },
    });
    const card = h.data.cards.poor;
    await withTransaction(h.service.pool, (c) =>
      applyBalanceChange(c, { cardId: card.id, amount: parseMoney('0.98'), reason: 'topup', ref: 'restart-test', onFloor: 'reject' }),
    );
    // A slow call (real time) so the service can be stopped while it is bridged.
    const { FreeSwitchSim } = await import('../../src/sim/index.ts');
    const slowSim = new FreeSwitchSim({ port: h.service.esl.port, timeScale: 0.05 });
    const call = slowSim.call({
      did: h.data.did,
      callerId: '15551230000',
      digits: [{ keys: `${card.pin}#`, afterMs: 10, gapMs: 10 }, { keys: '15559991234#', afterMs: 10, gapMs: 10 }],
      carrier: () => carrier.answer(100, 3600_000),
    });
    const open = await waitFor('the reserved call', async () => {
      const r = await h!.service.pool.query<{ call_id: string; reserved_micros: bigint }>(
        `SELECT call_id, reserved_micros FROM calls WHERE card_id = $1 AND status = 'reserved'`,
        [card.id],
      );
      return r.rows[0];
    });
    expect(open.reserved_micros).toBe(parseMoney('1.00'));
    await bridging;
    // The carrier answers 100 ms (virtual) = 5 ms (real) after the bridge starts; give it ample time.
    await new Promise((r) => setTimeout(r, 300));
    // "Crash": the service goes away without the call's CDR (the socket closes mid-bridge).
    await h.service.stop(0);
    await call.catch(() => {});

    const { config } = h.service;
    const second = await startService({ config, logger: pino({ level: 'silent' }), eslPort: 0, httpPort: 0, scheduler: false });
    try {
      // The hold survived the restart: the card has nothing available for a second call.
      const holds = await second.live.reservations(card.id);
      expect(holds.map((x) => x.callId)).toEqual([open.call_id]);
      expect(holds[0]!.amount).toBe(parseMoney('1.00'));

      // FreeSWITCH's mod_json_cdr POSTs the carrier leg's CDR (and retries it): both deliveries debit once.
      const body = recordedCarrierCdr(open.call_id, 90);
      const url = `http://127.0.0.1:${second.http.port}/cdr?uuid=${open.call_id}`;
      const first = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(first.status).toBe(200);
      expect((await first.json()).status).toBe('debited');
      const again = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect((await again.json()).status).toBe('duplicate');

      // 0.50/min, 60 s first block then per second: 90 s = 0.75; the card had 1.00.
      const balance = await second.services.balance(card.id);
      expect(balance).toBe(parseMoney('0.25'));
      expect(await second.live.reservations(card.id)).toEqual([]);
      const ledger = await second.pool.query<{ sum: bigint }>('SELECT sum(amount_micros)::bigint AS sum FROM ledger WHERE card_id = $1', [card.id]);
      expect(ledger.rows[0]!.sum).toBe(balance);
    } finally {
      await second.stop(0);
      await slowSim.drain().catch(() => {});
    }
  });
});
