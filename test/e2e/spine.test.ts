import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { parseMoney } from '../../src/money/money.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { withTransaction } from '../../src/store/db.ts';
import { startHarness, type Harness } from './harness.ts';

const CALLER = '15551230000';

describe('one calling-card call end to end: simulator -> ESL server -> flow -> PostgreSQL/Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const cdrFor = async (callId: string) =>
    (
      await h.service.pool.query<{ billsec: number; billed_seconds: number; cost_micros: bigint; source: string }>(
        'SELECT billsec, billed_seconds, cost_micros, source FROM cdrs WHERE call_id = $1',
        [callId],
      )
    ).rows;

  const reservationsLeft = async (cardId: string) => (await h.service.live.reservations(cardId)).length;

  it('success: the card is debited exactly the CDR cost of the carrier leg', async () => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: CALLER,
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(500, 3000),
    });
    expect(outcome.ended).toBe('completed');
    // The flow announced the balance with two decimals, and the minutes.
    expect(outcome.played).toContain('say:CURRENCY:5.00');
    expect(result.says.map((s) => s.arg)).toContain('en CURRENCY PRONOUNCED 5.00');

    const bLeg = result.bLegs[0]!;
    expect(bLeg.answered).toBe(true);
    expect(bLeg.billsec).toBe(3);
    // The carrier leg's uuid is ccard's call id (origination_uuid): that is the CDR's key.
    const attempt = outcome.calls[0]!;
    expect(bLeg.uuid).toBe(attempt.callId);
    // The cap rides on the carrier leg, from the dial string.
    expect(result.dialStrings[0]).toMatch(/execute_on_answer_1='sched_hangup \+\d+ allotted_timeout'/);
    expect(result.dialStrings[0]).toContain('sofia/gateway/carrier/15557654321');
    // The simulator timed the decision as FreeSWITCH sees it: destination digits sent -> bridge received.
    expect(result.decisionsMs).toHaveLength(1);
    expect(result.decisionsMs[0]).toBeGreaterThan(0);
    expect(result.decisionsMs[0]).toBeLessThan(2000);

    // 1555 rate: 0.05/min, connect 0.01, 30 s first block: 3 s talk -> 0.01 + 0.05 * 30/60 = 0.035 -> 0.04 (up)
    const rows = await cdrFor(attempt.callId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.billsec).toBe(3);
    expect(rows[0]!.billed_seconds).toBe(3);
    expect(rows[0]!.cost_micros).toBe(parseMoney('0.04'));
    expect(await h.balance(card.id)).toBe(before - parseMoney('0.04'));
    expect(await reservationsLeft(card.id)).toBe(0);
    // The caller heard the balance after the call too.
    expect(outcome.played).toContain('say:CURRENCY:4.96');
    // Once read, the carrier CDR copy is unset: the events after the bridge no longer carry it.
    expect(result.apps.map((a) => a.name)).toContain('multiunset');
    expect(result.variables['b_leg_cdr']).toBeUndefined();
    expect(result.variables[`b_leg_cdr_${bLeg.uuid}`]).toBeUndefined();
    const hangupComplete = result.rx.map((f) => f.toString('utf8')).find((f) => f.includes('"Event-Name":"CHANNEL_HANGUP_COMPLETE"'));
    expect(hangupComplete).toBeDefined();
    expect(hangupComplete).not.toContain('b_leg_cdr');
  });

  it('wrong PIN three times: refused, nothing reserved or charged', async () => {
    const { result, outcome } = await h.place({ did: h.data.did, callerId: '15550000001', digits: ['1111111111#', '2222222221#', '333#'] });
    expect(outcome.ended).toBe('too_many_attempts');
    expect(outcome.calls).toHaveLength(0);
    expect(outcome.played.filter((p) => p === 'invalid_pin')).toHaveLength(2);
    expect(result.prompts.some((p) => p.includes('too_many_attempts'))).toBe(true);
    expect(result.dialStrings).toHaveLength(0);
    expect(result.decisionsMs).toEqual([]);
  });

  it.each([
    ['during the PIN', { app: 'play_and_get_digits', nth: 1, afterKeys: 3 }],
    ['during the destination', { app: 'play_and_get_digits', nth: 2, afterKeys: 4 }],
  ])('caller hangs up %s: the flow ends promptly and holds nothing', async (_, hangupAt) => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const started = Date.now();
    const { outcome } = await h.place({ did: h.data.did, callerId: CALLER, digits: [`${card.pin}#`, '15557654321#'], hangupAt });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(outcome.callerHungUp).toBe(true);
    expect(outcome.calls).toHaveLength(0);
    expect(await h.balance(card.id)).toBe(before);
    expect(await reservationsLeft(card.id)).toBe(0);
  });

  it('caller hangs up during "this call can last…": the bridge queued behind it never runs, the hold goes back at once', async () => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const started = Date.now();
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: CALLER,
      digits: [`${card.pin}#`, '15557654321#'],
      hangupAt: { app: 'playback', nth: 2, afterMs: 0 },
    });
    // The bridge was sent with the announcement, but FreeSWITCH (here the simulator) never ran it.
    expect(result.prompts.some((p) => p.includes('call_can_last'))).toBe(true);
    expect(result.dialStrings).toHaveLength(0);
    expect(result.bLegs).toHaveLength(0);
    // Ended at CHANNEL_HANGUP_COMPLETE, not after the bridge's hangup grace.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(outcome.callerHungUp).toBe(true);
    expect(outcome.calls).toHaveLength(1);
    expect(outcome.calls[0]!.settle).toMatchObject({ billedSeconds: 0, cost: 0n });
    expect(await h.balance(card.id)).toBe(before);
    expect(await reservationsLeft(card.id)).toBe(0);
    const row = await h.service.pool.query(`SELECT status FROM calls WHERE call_id = $1`, [outcome.calls[0]!.callId]);
    expect(row.rows[0]?.status).toBe('released');
  });

  it('caller hangs up during the bridge: debited from the carrier CDR the bridge delivered', async () => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: CALLER,
      digits: [`${card.pin}#`, '15557654321#'],
      carrier: () => carrier.answer(500, 60_000),
      hangupAt: { app: 'bridge', afterAnswer: true, afterMs: 40_000 },
    });
    expect(outcome.callerHungUp).toBe(true);
    const bLeg = result.bLegs[0]!;
    expect(bLeg.billsec).toBeGreaterThanOrEqual(39);
    expect(bLeg.billsec).toBeLessThanOrEqual(41);
    const rows = await cdrFor(outcome.calls[0]!.callId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.billsec).toBe(bLeg.billsec);
    // 0.01 connect + 0.05/min: 30 s block then 6 s blocks
    const billable = 30 + Math.ceil((bLeg.billsec - 30) / 6) * 6;
    const expected = parseMoney('0.01') + (parseMoney('0.05') * BigInt(billable)) / 60n;
    const roundedUp = ((expected + 9_999n) / 10_000n) * 10_000n;
    expect(rows[0]!.cost_micros).toBe(roundedUp);
    expect(await h.balance(card.id)).toBe(before - roundedUp);
    expect(await reservationsLeft(card.id)).toBe(0);
  });

  it('carrier busy: nothing charged, the hold released, the caller told', async () => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await h.place({ did: h.data.did, callerId: CALLER, digits: [`${card.pin}#`, '15554861234#', ''] });
    expect(outcome.calls[0]!.outcome).toBe('busy');
    expect(outcome.played).toContain('busy');
    expect(result.bLegs[0]!.answered).toBe(false);
    expect(await h.balance(card.id)).toBe(before);
    expect(await reservationsLeft(card.id)).toBe(0);
    const call = await h.service.pool.query('SELECT status FROM calls WHERE call_id = $1', [outcome.calls[0]!.callId]);
    expect(call.rows[0]!.status).toBe('released');
    expect(await cdrFor(outcome.calls[0]!.callId)).toHaveLength(0);
  });

  it('cap reached: FreeSWITCH ends the carrier leg at the cap, billed seconds = cap, balance >= 0', async () => {
    // A card with exactly 0.50 on the 0.50/min line (60 s first block, then 1 s): it buys exactly 60 s.
    const card = h.data.cards.poor;
    await withTransaction(h.service.pool, (c) =>
      applyBalanceChange(c, { cardId: card.id, amount: parseMoney('0.48'), reason: 'topup', ref: 'cap-test', onFloor: 'reject' }),
    );
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: CALLER,
      digits: [`${card.pin}#`, '15559991234#', ''],
      carrier: () => carrier.answer(500, 3600_000),
    });
    const attempt = outcome.calls[0]!;
    expect(attempt.maxSeconds).toBe(60);
    expect(result.dialStrings[0]).toContain("sched_hangup +60 allotted_timeout");
    const bLeg = result.bLegs[0]!;
    expect(bLeg.hangupCause).toBe('ALLOTTED_TIMEOUT');
    expect(bLeg.billsec).toBe(60);
    const rows = await cdrFor(attempt.callId);
    expect(rows[0]!.billed_seconds).toBe(60);
    expect(rows[0]!.cost_micros).toBe(parseMoney('0.50'));
    const after = await h.balance(card.id);
    expect(after).toBe(0n);
  });
});
