/**
 * Every path of the access-number call flow ("The complete access-number call flow"), end to end: the real
 * service (ESL server, XState flow, PostgreSQL, Redis) driven by the FreeSWITCH simulator. Each test asserts what
 * the caller heard, what was dialled, and the money (balance, CDRs, ledger, live holds).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { carrier, FreeSwitchSim, type CallResult, type CallScript } from '../../src/sim/index.ts';
import type { FlowOutcome } from '../../src/flow/machine.ts';
import { parseMoney, type Micros } from '../../src/money/money.ts';
import { applyBalanceChange } from '../../src/billing/ledger.ts';
import { withTransaction } from '../../src/store/db.ts';
import { encryptPin, hashPin } from '../../src/store/pin.ts';
import { readSnapshot } from '../../src/store/cards.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

const LOCKOUT_FAILURES = 2;
const SOUNDS = '/usr/share/ccard/sounds';

describe('the complete access-number call flow, end to end', () => {
  let h: Harness;
  let did: string;
  let serial = 0;
  let seriesId: string;

  beforeAll(async () => {
    h = await startHarness({ env: { CCARD_PIN_LOCKOUT_FAILURES: String(LOCKOUT_FAILURES) } });
    did = h.data.did;
    const s = await h.service.pool.query<{ series_id: bigint }>('SELECT series_id FROM cards WHERE id = $1', [h.data.cards.rich.id]);
    seriesId = String(s.rows[0]!.series_id);
  });
  afterAll(async () => {
    await h?.close();
  });
  // Every test starts from the seeded access number (the flow reads it per call).
  beforeEach(async () => {
    await h.service.pool.query(
      `UPDATE access_numbers SET language = 'en', auth_mode = 'cli-then-pin', gateway = 'carrier', failover_gateway = NULL,
              bind_cli_after_pin = false, max_calls_per_session = 3, pin_tries = 3, enabled = true
        WHERE did = $1`,
      [did],
    );
  });

  // ---- helpers ------------------------------------------------------------------------------------------------

  /** Places one call and returns what the simulator saw and the flow's outcome. */
  function call(script: CallScript): Promise<{ result: CallResult; outcome: FlowOutcome }> {
    return h.place({ did, ...script });
  }

  /** A new card with its own PIN (10 digits) in the demo series or another one. */
  async function newCard(
    balance: string,
    opts: { status?: string; series?: string; maxConcurrent?: number } = {},
  ): Promise<{ id: string; pin: string }> {
    serial++;
    const pin = `77${String(serial).padStart(8, '0')}`;
    const keys = h.service.pinKeys;
    const id = await withTransaction(h.service.pool, async (c) => {
      const r = await c.query<{ id: bigint }>(
        `INSERT INTO cards (series_id, serial, pin_hash, pin_cipher, status, currency, balance_micros, max_concurrent_calls)
         VALUES ($1, $2, $3, $4, $5, 'USD', 0, $6) RETURNING id`,
        [opts.series ?? seriesId, `900-${String(serial).padStart(9, '0')}`, hashPin(keys, pin), encryptPin(keys, pin), opts.status ?? 'active', opts.maxConcurrent ?? null],
      );
      const cardId = String(r.rows[0]!.id);
      const amount = parseMoney(balance);
      if (amount > 0n) await applyBalanceChange(c, { cardId, amount, reason: 'initial', ref: 'initial', onFloor: 'reject' });
      return cardId;
    });
    return { id, pin };
  }

  const cdrs = async (cardId: string) =>
    (
      await h.service.pool.query<{ call_id: string; cost_micros: bigint; billsec: number; billed_seconds: number }>(
        'SELECT call_id::text, cost_micros, billsec, billed_seconds FROM cdrs WHERE card_id = $1 ORDER BY id',
        [cardId],
      )
    ).rows;
  const ledger = async (cardId: string) =>
    (
      await h.service.pool.query<{ reason: string; ref: string; amount_micros: bigint }>(
        'SELECT reason, ref, amount_micros FROM ledger WHERE card_id = $1 ORDER BY id',
        [cardId],
      )
    ).rows;
  const callRow = async (callId: string) =>
    (await h.service.pool.query<{ status: string }>('SELECT status FROM calls WHERE call_id = $1', [callId])).rows[0];
  const holds = async (cardId: string) => (await h.service.live.reservations(cardId)).length;
  const count = (xs: string[], x: string) => xs.filter((p) => p === x).length;
  const heard = (result: CallResult, prompt: string) => result.prompts.some((p) => p === `ccard/${prompt}.wav`);

  /** A successful call costs what its CDR says, once, and leaves no hold. */
  async function expectBilledOnce(cardId: string, before: Micros, callIds: string[]) {
    const rows = await cdrs(cardId);
    const mine = rows.filter((r) => callIds.includes(r.call_id));
    expect(mine.map((r) => r.call_id).sort()).toEqual([...callIds].sort());
    const total = mine.reduce((s, r) => s + r.cost_micros, 0n);
    expect(total).toBeGreaterThan(0n);
    const led = (await ledger(cardId)).filter((l) => l.reason === 'call' && callIds.includes(l.ref));
    expect(led).toHaveLength(callIds.length);
    expect(led.reduce((s, l) => s + l.amount_micros, 0n)).toBe(-total);
    expect(await h.balance(cardId)).toBe(before - total);
    expect(await holds(cardId)).toBe(0);
    for (const id of callIds) expect((await callRow(id))!.status).toBe('settled');
  }

  /** Nothing charged, nothing held, the calls rows released, no CDR. */
  async function expectFree(cardId: string, before: Micros, callIds: string[]) {
    expect(await h.balance(cardId)).toBe(before);
    expect(await holds(cardId)).toBe(0);
    const ids = (await cdrs(cardId)).map((r) => r.call_id);
    for (const id of callIds) {
      expect(ids).not.toContain(id);
      expect((await callRow(id))!.status).toBe('released');
    }
  }

  // ---- authentication -----------------------------------------------------------------------------------------

  describe('authentication', () => {
    it('pinless: a whitelisted caller id is never asked for a PIN and the call is billed to its card', async () => {
      const card = h.data.cards.pinless;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({
        callerId: h.data.callerIdOfPinless,
        digits: ['15557654321#', ''],
        carrier: () => carrier.answer(500, 3000),
      });
      expect(outcome.ended).toBe('completed');
      expect(outcome.cardId).toBe(card.id);
      expect(outcome.played).not.toContain('enter_pin');
      expect(heard(result, 'enter_pin')).toBe(false);
      expect(outcome.played.slice(0, 3)).toEqual(['you_have', 'say:CURRENCY:2.50', 'enter_destination']);
      expect(result.dialStrings).toHaveLength(1);
      expect(result.dialStrings[0]).toContain(`cc_card_id=${card.id}`);
      expect(result.bLegs[0]!.billsec).toBe(3);
      await expectBilledOnce(card.id, before, [outcome.calls[0]!.callId]);
    });

    it("auth_mode 'cli' with an unknown caller id: card_unknown, no PIN prompt, nothing dialled", async () => {
      await h.service.pool.query(`UPDATE access_numbers SET auth_mode = 'cli' WHERE did = $1`, [did]);
      const { result, outcome } = await call({ callerId: '15550004444', digits: [`${h.data.cards.rich.pin}#`] });
      expect(outcome.ended).toBe('card_unknown');
      expect(outcome.cardId).toBeUndefined();
      expect(outcome.played).toEqual(['card_unknown']);
      expect(heard(result, 'card_unknown')).toBe(true);
      expect(result.digits).toHaveLength(0);
      expect(result.dialStrings).toHaveLength(0);
    });

    it("auth_mode 'cli' with a known caller id: pinless without any PIN", async () => {
      await h.service.pool.query(`UPDATE access_numbers SET auth_mode = 'cli' WHERE did = $1`, [did]);
      const { outcome } = await call({ callerId: h.data.callerIdOfPinless, digits: ['123#', '123#', '123#'] });
      expect(outcome.cardId).toBe(h.data.cards.pinless.id);
      expect(outcome.played).not.toContain('enter_pin');
      expect(outcome.ended).toBe('destination_tries_exhausted');
      expect(count(outcome.played, 'invalid_destination')).toBe(3);
      expect(outcome.played.at(-1)).toBe('goodbye');
    });

    it('a withheld caller never authenticates by CLI: cli-then-pin asks for the PIN, cli refuses', async () => {
      const rich = h.data.cards.rich;
      const { result, outcome } = await call({ withheld: true, digits: [`${rich.pin}#`, '', ''] });
      expect(outcome.played[0]).toBe('enter_pin');
      expect(heard(result, 'enter_pin')).toBe(true);
      expect(outcome.cardId).toBe(rich.id);

      await h.service.pool.query(`UPDATE access_numbers SET auth_mode = 'cli' WHERE did = $1`, [did]);
      const second = await call({ withheld: true, digits: [`${rich.pin}#`] });
      expect(second.outcome.ended).toBe('card_unknown');
      expect(second.result.digits).toHaveLength(0);
    });

    it('an all-zero caller id never authenticates by CLI, even when such a row exists', async () => {
      const card = h.data.cards.pinless;
      await h.service.pool.query('INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2)', ['0000000000', card.id]);
      try {
        const { outcome } = await call({ callerId: '0000000000', digits: ['1111111111#', '', ''] });
        expect(outcome.played[0]).toBe('enter_pin');
        expect(outcome.cardId).toBeUndefined();
      } finally {
        await h.service.pool.query(`DELETE FROM caller_ids WHERE caller_id = '0000000000'`);
      }
    });

    it("auth_mode 'pin': a whitelisted caller id still has to key the PIN", async () => {
      await h.service.pool.query(`UPDATE access_numbers SET auth_mode = 'pin' WHERE did = $1`, [did]);
      const rich = h.data.cards.rich;
      const { outcome } = await call({ callerId: h.data.callerIdOfPinless, digits: [`${rich.pin}#`, '', '', ''] });
      expect(outcome.played[0]).toBe('enter_pin');
      expect(outcome.cardId).toBe(rich.id);
    });

    it('cli-then-pin with bind_cli_after_pin: PIN then 1 binds the caller id; the next call is pinless', async () => {
      await h.service.pool.query('UPDATE access_numbers SET bind_cli_after_pin = true WHERE did = $1', [did]);
      const card = await newCard('3.00');
      const cli = '15557770001';
      const first = await call({ callerId: cli, digits: [`${card.pin}#`, '1', '15557654321#', ''], carrier: () => carrier.answer(500, 2000) });
      expect(first.outcome.played.slice(0, 5)).toEqual(['enter_pin', 'bind_cli_offer', 'cli_bound', 'you_have', 'say:CURRENCY:3.00']);
      expect(heard(first.result, 'bind_cli_offer')).toBe(true);
      expect(heard(first.result, 'cli_bound')).toBe(true);
      const bound = await h.service.pool.query<{ card_id: bigint }>('SELECT card_id FROM caller_ids WHERE caller_id = $1', [cli]);
      expect(bound.rows.map((r) => String(r.card_id))).toEqual([card.id]);
      expect(first.outcome.ended).toBe('completed');

      const before = await h.balance(card.id);
      const second = await call({ callerId: cli, digits: ['15557654321#', ''], carrier: () => carrier.answer(500, 2000) });
      expect(second.outcome.played).not.toContain('enter_pin');
      expect(second.outcome.played).not.toContain('bind_cli_offer');
      expect(second.outcome.cardId).toBe(card.id);
      await expectBilledOnce(card.id, before, [second.outcome.calls[0]!.callId]);
    });

    it('cli-then-pin with bind_cli_after_pin: any other key does not bind', async () => {
      await h.service.pool.query('UPDATE access_numbers SET bind_cli_after_pin = true WHERE did = $1', [did]);
      const card = await newCard('1.00');
      const cli = '15557770002';
      const { outcome } = await call({ callerId: cli, digits: [`${card.pin}#`, '2', '', ''] });
      expect(outcome.played.slice(0, 3)).toEqual(['enter_pin', 'bind_cli_offer', 'you_have']);
      expect(outcome.played).not.toContain('cli_bound');
      const bound = await h.service.pool.query('SELECT 1 FROM caller_ids WHERE caller_id = $1', [cli]);
      expect(bound.rowCount).toBe(0);
    });

    it(`PIN lockout: after ${LOCKOUT_FAILURES} wrong PINs from one caller id the next call hears locked_out`, async () => {
      const cli = '15558880001';
      const first = await call({ callerId: cli, digits: ['1111111111#', '2222222221#', '3333333331#'] });
      expect(first.outcome.ended).toBe('too_many_attempts');
      expect(count(first.outcome.played, 'invalid_pin')).toBe(2);
      expect(first.outcome.played.at(-1)).toBe('too_many_attempts');

      // Even the right PIN is not asked for: the caller is locked out.
      const second = await call({ callerId: cli, digits: [`${h.data.cards.rich.pin}#`] });
      expect(second.outcome.ended).toBe('locked_out');
      expect(second.outcome.played).toEqual(['locked_out']);
      expect(heard(second.result, 'locked_out')).toBe(true);
      expect(second.result.digits).toHaveLength(0);
      expect(second.result.dialStrings).toHaveLength(0);

      // Another caller id is not affected.
      const other = await call({ callerId: '15558880002', digits: [`${h.data.cards.rich.pin}#`, '', '', ''] });
      expect(other.outcome.played[0]).toBe('enter_pin');
      expect(other.outcome.cardId).toBe(h.data.cards.rich.id);
    });
  });

  // ---- card states --------------------------------------------------------------------------------------------

  describe('card states', () => {
    it('disabled: card_disabled, nothing reserved', async () => {
      const card = await newCard('1.00', { status: 'disabled' });
      const { result, outcome } = await call({ callerId: '15551110001', digits: [`${card.pin}#`] });
      expect(outcome.ended).toBe('card_disabled');
      expect(outcome.played).toEqual(['enter_pin', 'card_disabled']);
      expect(heard(result, 'card_disabled')).toBe(true);
      expect(result.dialStrings).toHaveLength(0);
      expect(await holds(card.id)).toBe(0);
    });

    it('expired (expires_at in the past): card_expired and the card is marked expired', async () => {
      const card = await newCard('1.00');
      await h.service.pool.query(`UPDATE cards SET expires_at = now() - interval '1 day' WHERE id = $1`, [card.id]);
      const { result, outcome } = await call({ callerId: '15551110002', digits: [`${card.pin}#`] });
      expect(outcome.ended).toBe('card_expired');
      expect(outcome.played).toEqual(['enter_pin', 'card_expired']);
      expect(heard(result, 'card_expired')).toBe(true);
      const st = await h.service.pool.query<{ status: string }>('SELECT status FROM cards WHERE id = $1', [card.id]);
      expect(st.rows[0]!.status).toBe('expired');
      expect(await h.balance(card.id)).toBe(parseMoney('1.00'));
    });

    it('pending: activated on first use, the activation fee charged once, card_activated played', async () => {
      const s = await h.service.pool.query<{ id: bigint }>(
        `INSERT INTO series (name, series_number, card_count, initial_balance_micros, rate_table_id, activation_fee_micros, initial_status)
         VALUES ('Fee cards', '901', 1, 0, $1, $2, 'pending') RETURNING id`,
        [h.data.rateTableId, parseMoney('0.50').toString()],
      );
      const card = await newCard('2.00', { status: 'pending', series: String(s.rows[0]!.id) });
      const first = await call({ callerId: '15551110003', digits: [`${card.pin}#`, '', '', ''] });
      expect(first.outcome.played.slice(0, 4)).toEqual(['enter_pin', 'card_activated', 'you_have', 'say:CURRENCY:1.50']);
      expect(heard(first.result, 'card_activated')).toBe(true);
      const st = await h.service.pool.query<{ status: string; activated_at: Date | null }>(
        'SELECT status, activated_at FROM cards WHERE id = $1',
        [card.id],
      );
      expect(st.rows[0]!.status).toBe('active');
      expect(st.rows[0]!.activated_at).not.toBeNull();

      const second = await call({ callerId: '15551110003', digits: [`${card.pin}#`, '', '', ''] });
      expect(second.outcome.played).not.toContain('card_activated');
      expect(second.outcome.played.slice(0, 3)).toEqual(['enter_pin', 'you_have', 'say:CURRENCY:1.50']);
      const fees = (await ledger(card.id)).filter((l) => l.reason === 'activation_fee');
      expect(fees).toHaveLength(1);
      expect(fees[0]!.amount_micros).toBe(-parseMoney('0.50'));
      expect(await h.balance(card.id)).toBe(parseMoney('1.50'));
    });

    it('zero balance: no_balance, no destination asked', async () => {
      const card = await newCard('0');
      const { result, outcome } = await call({ callerId: '15551110004', digits: [`${card.pin}#`] });
      expect(outcome.ended).toBe('no_balance');
      expect(outcome.played).toEqual(['enter_pin', 'no_balance']);
      expect(heard(result, 'no_balance')).toBe(true);
      expect(result.digits).toHaveLength(1);
      expect(result.dialStrings).toHaveLength(0);
    });

    it('too many simultaneous calls: with one call already holding funds, the next hears too_many_calls', async () => {
      const card = await newCard('2.00', { maxConcurrent: 1 });
      const snap = (await readSnapshot(h.service.pool, card.id))!;
      await h.service.live.load(card.id, { spendable: snap.spendable, version: snap.version });
      const held = randomUUID();
      const r = await h.service.live.reserve(card.id, held, parseMoney('0.10'), 60_000, 1);
      expect(r.ok).toBe(true);
      try {
        const { result, outcome } = await call({ callerId: '15551110005', digits: [`${card.pin}#`, '15557654321#'] });
        expect(outcome.ended).toBe('too_many_calls');
        expect(outcome.played.at(-1)).toBe('too_many_calls');
        expect(heard(result, 'too_many_calls')).toBe(true);
        expect(outcome.calls).toHaveLength(0);
        expect(result.dialStrings).toHaveLength(0);
        expect((await h.service.live.reservations(card.id)).map((x) => x.callId)).toEqual([held]);
        expect(await h.balance(card.id)).toBe(parseMoney('2.00'));
      } finally {
        await h.service.live.settle(card.id, held);
      }
    });

    it('too many simultaneous calls: a real call in progress blocks a second caller on the same card', async () => {
      const card = await newCard('2.00', { maxConcurrent: 1 });
      const before = await h.balance(card.id);
      const n = h.outcomes.length;
      // A simulator on a running clock (1 virtual minute = 0.3 s) for the first call: it talks 10 virtual minutes.
      const slow = new FreeSwitchSim({ port: h.service.esl.port, timeScale: 0.005 });
      const long = slow.call({
        did,
        callerId: '15551110006',
        digits: [`${card.pin}#`, '15557654321#', ''],
        carrier: () => carrier.answer(0, 10 * 60_000),
      });
      // Wait (with a deadline) until the first call's reservation is live.
      await waitFor('the first call to reserve', async () => ((await holds(card.id)) > 0 ? true : undefined));
      const second = await h.sim.call({ did, callerId: '15551110007', digits: [`${card.pin}#`, '15557654321#'] });
      expect(second.prompts).toContain('ccard/too_many_calls.wav');
      expect(second.dialStrings).toHaveLength(0);
      const first = await long;
      await slow.drain();
      const outs = (await h.waitOutcomes(n + 2)).slice(n);
      const refused = outs.find((o) => o.ended === 'too_many_calls');
      const talked = outs.find((o) => o.calls.length === 1);
      expect(refused).toBeDefined();
      expect(talked).toBeDefined();
      expect(first.bLegs[0]!.answered).toBe(true);
      expect(first.bLegs[0]!.billsec).toBe(600);
      await expectBilledOnce(card.id, before, [talked!.calls[0]!.callId]);
    }, 20_000);
  });

  // ---- announcements ------------------------------------------------------------------------------------------

  describe('announcements', () => {
    it('balance as CURRENCY with two decimals, the minutes as NUMBER + minutes', async () => {
      const card = await newCard('5.00');
      // 44: 0.04/min in 60 s blocks: 5.00 buys 125 minutes.
      const { result, outcome } = await call({ callerId: '15552220001', digits: [`${card.pin}#`, '442071234567#', ''], carrier: () => carrier.answer(500, 1000) });
      expect(outcome.played.slice(0, 8)).toEqual([
        'enter_pin',
        'you_have',
        'say:CURRENCY:5.00',
        'enter_destination',
        'call_can_last',
        'say:NUMBER:125',
        'minutes',
        'remaining_balance',
      ]);
      const says = result.says.map((s) => s.arg);
      expect(says[0]).toBe('en CURRENCY PRONOUNCED 5.00');
      expect(says[1]).toMatch(/^en NUMBER \S+ 125$/);
      expect(heard(result, 'call_can_last')).toBe(true);
      expect(heard(result, 'minutes')).toBe(true);
      expect(outcome.calls[0]!.maxSeconds).toBe(7500);
      // 1 s of talk in a 60 s block at 0.04/min: 0.04
      expect(outcome.played).toContain('say:CURRENCY:4.96');
      expect(says).toContain('en CURRENCY PRONOUNCED 4.96');
    });

    it('a balance under a dollar keeps two decimals, and one minute is "minute"', async () => {
      // 1555999: 0.50/min, 60 s then 1 s: 0.70 buys 84 s = 1 minute.
      const card = await newCard('0.70');
      const { outcome } = await call({ callerId: '15552220002', digits: [`${card.pin}#`, '15559991234#', ''], carrier: () => carrier.answer(0, 1000) });
      expect(outcome.played).toContain('say:CURRENCY:0.70');
      const i = outcome.played.indexOf('call_can_last');
      expect(outcome.played.slice(i, i + 3)).toEqual(['call_can_last', 'say:NUMBER:1', 'minute']);
    });

    it('* at the destination prompt re-announces the balance without using a try', async () => {
      const card = await newCard('2.50');
      const before = await h.balance(card.id);
      // Three stars (as many as the destination tries), then a number: the call still goes through.
      const { result, outcome } = await call({
        callerId: '15552220003',
        digits: [`${card.pin}#`, '*', '*', '*', '15557654321#', ''],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(count(outcome.played, 'say:CURRENCY:2.50')).toBe(4);
      expect(count(outcome.played, 'enter_destination')).toBe(4);
      expect(outcome.played).not.toContain('invalid_destination');
      expect(result.says.filter((s) => s.arg === 'en CURRENCY PRONOUNCED 2.50')).toHaveLength(4);
      expect(result.dialStrings).toHaveLength(1);
      expect(outcome.ended).toBe('completed');
      await expectBilledOnce(card.id, before, [outcome.calls[0]!.callId]);
    });
  });

  // ---- destination --------------------------------------------------------------------------------------------

  describe('destination', () => {
    it('too short: invalid_destination, then a retry works', async () => {
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({
        callerId: '15553330001',
        digits: [`${card.pin}#`, '12345#', '15557654321#', ''],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(outcome.played.slice(3, 6)).toEqual(['enter_destination', 'invalid_destination', 'enter_destination']);
      expect(heard(result, 'invalid_destination')).toBe(true);
      expect(result.dialStrings).toHaveLength(1);
      expect(result.dialStrings[0]).toMatch(/sofia\/gateway\/carrier\/15557654321$/);
      await expectBilledOnce(card.id, before, [outcome.calls[0]!.callId]);
    });

    it('three invalid entries: goodbye, nothing reserved', async () => {
      const { result, outcome } = await call({ callerId: '15553330002', digits: [`${h.data.cards.rich.pin}#`, '1#', '22#', '0#'] });
      expect(outcome.ended).toBe('destination_tries_exhausted');
      expect(count(outcome.played, 'invalid_destination')).toBe(3);
      expect(outcome.played.at(-1)).toBe('goodbye');
      expect(outcome.calls).toHaveLength(0);
      expect(result.dialStrings).toHaveLength(0);
    });

    it('denied prefix 1900: destination_not_allowed, nothing dialled', async () => {
      const { result, outcome } = await call({ callerId: '15553330003', digits: [`${h.data.cards.rich.pin}#`, '19005551234#', '', ''] });
      expect(outcome.played).toContain('destination_not_allowed');
      expect(heard(result, 'destination_not_allowed')).toBe(true);
      expect(outcome.calls).toHaveLength(0);
      expect(result.dialStrings).toHaveLength(0);
    });

    it('national-prefix form of a denied number (1-900 via 1900) and 011-prefixed 1976 are refused too', async () => {
      const { outcome } = await call({ callerId: '15553330004', digits: [`${h.data.cards.rich.pin}#`, '9005551234#', '01119765551234#', ''] });
      expect(count(outcome.played, 'destination_not_allowed')).toBe(2);
      expect(outcome.calls).toHaveLength(0);
    });

    it('no rate (33… via 0033…): no_rate, nothing reserved', async () => {
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({ callerId: '15553330005', digits: [`${card.pin}#`, '0033123456789#', '', ''] });
      expect(outcome.played).toContain('no_rate');
      expect(heard(result, 'no_rate')).toBe(true);
      expect(outcome.calls).toHaveLength(0);
      expect(result.dialStrings).toHaveLength(0);
      expect(await h.balance(card.id)).toBe(before);
      expect(await holds(card.id)).toBe(0);
    });

    it('national form (ten digits) is normalised to E.164 in the dial string; 011 and + too', async () => {
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({
        callerId: '15553330006',
        digits: [`${card.pin}#`, '5557654321#', '1', '011442071234567#', ''],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(result.dialStrings).toHaveLength(2);
      expect(result.dialStrings[0]).toMatch(/\}sofia\/gateway\/carrier\/15557654321$/);
      expect(result.dialStrings[1]).toMatch(/\}sofia\/gateway\/carrier\/442071234567$/);
      expect(result.bLegs.map((b) => b.number)).toEqual(['15557654321', '442071234567']);
      expect(outcome.calls.map((c) => c.number)).toEqual(['15557654321', '442071234567']);
      await expectBilledOnce(card.id, before, outcome.calls.map((c) => c.callId));
    });
  });

  // ---- bridge outcomes ----------------------------------------------------------------------------------------

  describe('bridge outcomes', () => {
    it.each([
      ['busy', carrier.busy(), 'busy'],
      ['no answer', carrier.noAnswer(), 'no_answer'],
      ['invalid number (unallocated)', carrier.unallocated(), 'invalid_number'],
      ['congestion (no failover gateway)', carrier.congestion(), 'congestion'],
    ] as const)('%s: its prompt, and it costs nothing', async (_, script, prompt) => {
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({ callerId: '15554440001', digits: [`${card.pin}#`, '15557654321#', ''], carrier: () => script });
      expect(outcome.calls).toHaveLength(1);
      expect(outcome.calls[0]!.outcome).toBe(prompt);
      expect(result.bLegs[0]!.answered).toBe(false);
      expect(result.dialStrings).toHaveLength(1);
      expect(outcome.played).toContain(prompt);
      expect(heard(result, prompt)).toBe(true);
      expect(outcome.played).not.toContain('remaining_balance');
      // and the caller is offered another call
      expect(outcome.played.slice(-2)).toEqual(['another_call', 'goodbye']);
      await expectFree(card.id, before, [outcome.calls[0]!.callId]);
    });

    it('congestion with a failover gateway: the failover is dialled with a NEW call id and billed once', async () => {
      await h.service.pool.query(`UPDATE access_numbers SET failover_gateway = 'backup' WHERE did = $1`, [did]);
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      let bridges = 0;
      const { result, outcome } = await call({
        callerId: '15554440002',
        digits: [`${card.pin}#`, '15557654321#', ''],
        carrier: () => (++bridges === 1 ? carrier.congestion() : carrier.answer(500, 4000)),
      });
      expect(result.dialStrings).toHaveLength(2);
      expect(result.dialStrings[0]).toMatch(/\}sofia\/gateway\/carrier\/15557654321$/);
      expect(result.dialStrings[1]).toMatch(/\}sofia\/gateway\/backup\/15557654321$/);
      const [first, second] = outcome.calls;
      expect(first!.gateway).toBe('carrier');
      expect(second!.gateway).toBe('backup');
      expect(first!.outcome).toBe('congestion');
      expect(second!.outcome).toBe('answered');
      expect(second!.callId).not.toBe(first!.callId);
      expect(result.bLegs.map((b) => b.uuid)).toEqual([first!.callId, second!.callId]);
      expect(result.dialStrings[1]).toContain(`origination_uuid=${second!.callId}`);
      // No congestion prompt between the attempts: the caller just hears the call, then the remaining balance.
      expect(outcome.played).not.toContain('congestion');
      expect(outcome.played).toContain('remaining_balance');
      expect((await callRow(first!.callId))!.status).toBe('released');
      await expectBilledOnce(card.id, before, [second!.callId]);
      expect((await cdrs(card.id)).map((r) => r.call_id)).not.toContain(first!.callId);
    });

    it('congestion on the failover gateway too: the congestion prompt, both released, nothing charged', async () => {
      await h.service.pool.query(`UPDATE access_numbers SET failover_gateway = 'backup' WHERE did = $1`, [did]);
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({ callerId: '15554440003', digits: [`${card.pin}#`, '15557654321#', ''], carrier: () => carrier.congestion() });
      expect(result.dialStrings).toHaveLength(2);
      expect(outcome.calls.map((c) => c.outcome)).toEqual(['congestion', 'congestion']);
      expect(count(outcome.played, 'congestion')).toBe(1);
      await expectFree(card.id, before, outcome.calls.map((c) => c.callId));
    });
  });

  // ---- low-balance warning ------------------------------------------------------------------------------------

  describe('low-balance warning', () => {
    it('a call that may last > 90 s gets the sched_broadcast warning; the sim plays it and the cap holds', async () => {
      // 1555999: 0.50/min, 60 s then 1 s: 0.80 buys 96 s.
      const card = await newCard('0.80');
      const { result, outcome } = await call({
        callerId: '15555550001',
        digits: [`${card.pin}#`, '15559991234#', ''],
        carrier: () => carrier.answer(500, 3_600_000),
      });
      const attempt = outcome.calls[0]!;
      expect(attempt.maxSeconds).toBe(96);
      const ds = result.dialStrings[0]!;
      expect(ds).toContain("execute_on_answer_1='sched_hangup +96 allotted_timeout'");
      expect(ds).toContain(`execute_on_answer_2='sched_broadcast +36 ${SOUNDS}/en/ccard/8000/low_balance_warning.wav both'`);
      const warn = result.apps.filter((a) => a.broadcast);
      expect(warn).toHaveLength(1);
      expect(warn[0]!.name).toBe('playback');
      expect(warn[0]!.arg).toBe(`${SOUNDS}/en/ccard/8000/low_balance_warning.wav`);
      // played during the bridge, 36 s after the answer
      const bLeg = result.bLegs[0]!;
      expect(warn[0]!.startUs).toBeGreaterThan(bLeg.answerUs);
      expect(warn[0]!.startUs).toBeLessThan(bLeg.endUs);
      expect(Math.round((warn[0]!.startUs - bLeg.answerUs) / 1e6)).toBeGreaterThanOrEqual(35);
      expect(bLeg.hangupCause).toBe('ALLOTTED_TIMEOUT');
      expect(bLeg.billsec).toBe(96);
      const rows = await cdrs(card.id);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.billed_seconds).toBe(96);
      expect(rows[0]!.cost_micros).toBe(parseMoney('0.80'));
      expect(await h.balance(card.id)).toBe(0n);
      expect(await holds(card.id)).toBe(0);
      expect(outcome.played).toContain('say:CURRENCY:0.00');
    });

    it('a call capped at 90 s or less has no warning', async () => {
      // 0.75 buys exactly 90 s on the 1555999 line.
      const card = await newCard('0.75');
      const { result, outcome } = await call({
        callerId: '15555550002',
        digits: [`${card.pin}#`, '15559991234#', ''],
        carrier: () => carrier.answer(500, 3_600_000),
      });
      expect(outcome.calls[0]!.maxSeconds).toBe(90);
      expect(result.dialStrings[0]).toContain("execute_on_answer_1='sched_hangup +90 allotted_timeout'");
      expect(result.dialStrings[0]).not.toContain('execute_on_answer_2');
      expect(result.dialStrings[0]).not.toContain('sched_broadcast');
      expect(result.apps.filter((a) => a.broadcast)).toHaveLength(0);
      expect(result.bLegs[0]!.billsec).toBe(90);
      expect(await h.balance(card.id)).toBe(0n);
      expect(await holds(card.id)).toBe(0);
    });
  });

  // ---- another call -------------------------------------------------------------------------------------------

  describe('another call', () => {
    it('press 1: a second destination and bridge in the same session, both billed', async () => {
      const card = await newCard('4.00');
      const before = await h.balance(card.id);
      const { result, outcome } = await call({
        callerId: '15556660001',
        digits: [`${card.pin}#`, '15557654321#', '1', '442071234567#', ''],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(outcome.ended).toBe('completed');
      expect(outcome.calls).toHaveLength(2);
      expect(outcome.calls.map((c) => c.outcome)).toEqual(['answered', 'answered']);
      expect(outcome.calls[0]!.callId).not.toBe(outcome.calls[1]!.callId);
      expect(result.dialStrings).toHaveLength(2);
      // continue_on_fail / hangup_after_bridge set once, before the first bridge
      expect(result.variablesSet.filter(([k]) => k === 'continue_on_fail')).toHaveLength(1);
      expect(result.variablesSet.filter(([k]) => k === 'hangup_after_bridge')).toHaveLength(1);
      expect(count(outcome.played, 'another_call')).toBe(2);
      expect(count(outcome.played, 'remaining_balance')).toBe(2);
      expect(outcome.played.at(-1)).toBe('goodbye');
      await expectBilledOnce(card.id, before, outcome.calls.map((c) => c.callId));
    });

    it('max_calls_per_session reached: goodbye without the offer', async () => {
      await h.service.pool.query('UPDATE access_numbers SET max_calls_per_session = 2 WHERE did = $1', [did]);
      const card = await newCard('4.00');
      const before = await h.balance(card.id);
      const { result, outcome } = await call({
        callerId: '15556660002',
        digits: [`${card.pin}#`, '15557654321#', '1', '15557654322#', '1', '15557654323#'],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(outcome.calls).toHaveLength(2);
      expect(result.dialStrings).toHaveLength(2);
      expect(count(outcome.played, 'another_call')).toBe(1);
      expect(outcome.played.slice(-3)).toEqual(['remaining_balance', expect.stringMatching(/^say:CURRENCY:/), 'goodbye']);
      expect(outcome.ended).toBe('completed');
      // the third destination was never asked for: only PIN, two destinations and one menu were collected
      expect(result.digits).toHaveLength(4);
      await expectBilledOnce(card.id, before, outcome.calls.map((c) => c.callId));
    });

    it('max_calls_per_session = 1: no offer after the first call', async () => {
      await h.service.pool.query('UPDATE access_numbers SET max_calls_per_session = 1 WHERE did = $1', [did]);
      const { outcome } = await call({ callerId: '15556660003', digits: [`${h.data.cards.rich.pin}#`, '15554861234#', '1'], carrier: () => carrier.busy() });
      expect(outcome.played).not.toContain('another_call');
      expect(outcome.played.slice(-2)).toEqual(['busy', 'goodbye']);
    });
  });

  // ---- language and access number -----------------------------------------------------------------------------

  describe('access number', () => {
    it("Spanish access number: sound_prefix .../es, says in 'es', the warning file in es", async () => {
      await h.service.pool.query(`UPDATE access_numbers SET language = 'es' WHERE did = $1`, [did]);
      const card = await newCard('2.00');
      const { result, outcome } = await call({
        callerId: '15557770099',
        digits: [`${card.pin}#`, '15557654321#', ''],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(outcome.language).toBe('es');
      expect(result.variablesSet).toContainEqual(['sound_prefix', `${SOUNDS}/es`]);
      expect(result.variables.sound_prefix).toBe(`${SOUNDS}/es`);
      expect(result.says.length).toBeGreaterThan(0);
      for (const s of result.says) expect(s.arg).toMatch(/^es /);
      expect(result.says[0]!.arg).toBe('es CURRENCY PRONOUNCED 2.00');
      expect(result.dialStrings[0]).toContain(`${SOUNDS}/es/ccard/8000/low_balance_warning.wav`);
      expect(outcome.ended).toBe('completed');
    });

    it('a second access number with its own rules is read per call', async () => {
      await h.service.pool.query(
        `INSERT INTO access_numbers (did, language, auth_mode, gateway, min_digits, max_digits, allowed_prefixes, country_code, national_prefix)
         VALUES ('15550002222', 'en', 'pin', 'uk-gw', 11, 14, '{44}', '1', '1') ON CONFLICT (did) DO NOTHING`,
      );
      const card = h.data.cards.rich;
      const before = await h.balance(card.id);
      const { result, outcome } = await call({
        did: '15550002222',
        callerId: h.data.callerIdOfPinless,
        digits: [`${card.pin}#`, '15557654321#', '442071234567#', ''],
        carrier: () => carrier.answer(500, 2000),
      });
      expect(outcome.played[0]).toBe('enter_pin');
      expect(outcome.played).toContain('destination_not_allowed');
      expect(result.dialStrings).toEqual([expect.stringMatching(/\}sofia\/gateway\/uk-gw\/442071234567$/)]);
      await expectBilledOnce(card.id, before, [outcome.calls[0]!.callId]);
    });

    it('unknown DID: number_not_in_service, nothing asked, nothing reserved', async () => {
      const calls0 = await h.service.pool.query<{ n: bigint }>('SELECT count(*)::bigint AS n FROM calls');
      const { result, outcome } = await call({ did: '15559990000', callerId: h.data.callerIdOfPinless, digits: ['15557654321#'] });
      expect(outcome.ended).toBe('number_not_in_service');
      expect(outcome.played).toEqual(['number_not_in_service']);
      expect(heard(result, 'number_not_in_service')).toBe(true);
      expect(outcome.cardId).toBeUndefined();
      expect(result.digits).toHaveLength(0);
      expect(result.dialStrings).toHaveLength(0);
      const calls1 = await h.service.pool.query<{ n: bigint }>('SELECT count(*)::bigint AS n FROM calls');
      expect(calls1.rows[0]!.n).toBe(calls0.rows[0]!.n);
      expect(await holds(h.data.cards.pinless.id)).toBe(0);
    });

    it('a disabled access number is not in service either', async () => {
      await h.service.pool.query('UPDATE access_numbers SET enabled = false WHERE did = $1', [did]);
      const { outcome } = await call({ callerId: h.data.callerIdOfPinless, digits: ['15557654321#'] });
      expect(outcome.ended).toBe('number_not_in_service');
      expect(outcome.calls).toHaveLength(0);
    });
  });
});
