import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { parseMoney } from '../../src/money/money.ts';
import { startHarness, type Harness } from './harness.ts';

/**
 * What a caller (or a broken peer) controls must never take the process down: a bad frame drops that one
 * connection, every other call goes on, and nothing it held stays held.
 */
describe('robustness of the real server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.service.pool.query('UPDATE cards SET max_concurrent_calls = 10');
  });
  afterAll(async () => {
    await h?.close();
  });

  const goodCall = () =>
    h.sim.call({
      did: h.data.did,
      callerId: '15551230000',
      digits: [`${h.data.cards.rich.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(500, 3000),
    });

  const waitIdle = async () => {
    for (let i = 0; i < 200 && h.service.esl.server.activeSessions > 0; i++) await new Promise((r) => setTimeout(r, 10));
    return h.service.esl.server.activeSessions;
  };

  it('a malformed percent-escape in an event is kept raw: the call goes on and is billed', async () => {
    const body = 'Event-Name: CUSTOM\nEvent-Subclass: junk%E0%A4%A\nX-Bad: %zz%\n\n';
    const raw = `Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`;
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: '15551230003',
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(500, 3000),
      inject: [{ at: { afterEvent: 'CHANNEL_EXECUTE_COMPLETE', app: 'answer' }, raw }],
    });
    expect(outcome.ended).toBe('completed');
    expect(result.bLegs[0]!.answered).toBe(true);
    expect(await h.balance(card.id)).toBe(before - parseMoney('0.04'));
  });

  it.each([
    ['an oversized header block', `X-Junk: ${'a'.repeat(70 * 1024)}\n\n`],
    ['an absurd Content-Length', 'Content-Length: 999999999999\nContent-Type: text/event-plain\n\n'],
    ['garbage bytes', Buffer.from([0xff, 0x00, 0x0a, 0x0a, 0xfe, 0x0a, 0x3a, 0x0a, 0x0a])],
  ])('%s during a call: that call ends cleanly, a concurrent call completes and is billed', async (_, raw) => {
    const card = h.data.cards.rich;
    const before = await h.balance(card.id);
    const n = h.outcomes.length;
    const [bad, good] = await Promise.all([
      h.sim.call({
        did: h.data.did,
        callerId: '15551230001',
        digits: [`${card.pin}#`, '15557654321#'],
        inject: [{ at: { afterEvent: 'CHANNEL_EXECUTE_COMPLETE', app: 'answer' }, raw }],
      }),
      goodCall(),
    ]);
    const outcomes = (await h.waitOutcomes(n + 2)).slice(n);
    expect(outcomes).toHaveLength(2);
    expect(good.bLegs[0]!.answered).toBe(true);
    // Only the good call was bridged and billed; the broken connection held nothing.
    expect(bad.dialStrings).toHaveLength(0);
    expect(await h.balance(card.id)).toBe(before - parseMoney('0.04'));
    expect(await h.service.live.reservations(card.id)).toEqual([]);
    expect(await waitIdle()).toBe(0);
  });

  it('the socket dropped by FreeSWITCH in the middle of the IVR ends the flow at once', async () => {
    const started = Date.now();
    const { result, outcome } = await h.place({
      did: h.data.did,
      callerId: '15551230002',
      digits: [`${h.data.cards.rich.pin}#`, { keys: '1555', afterMs: 100 }],
      // ccard unsubscribes from DTMF events (nixevent), so the drop comes after the balance announcement.
      inject: [{ at: { afterEvent: 'CHANNEL_EXECUTE_COMPLETE', app: 'say', nth: 1 }, drop: true }],
    });
    expect(result.end).toBe('dropped');
    expect(outcome.calls).toHaveLength(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('plain events (myevents without json): the carrier CDR is read exactly with uuid_getvar, debited once', async () => {
    const plain = await startHarness({ env: { CCARD_EVENT_FORMAT: 'plain' } });
    try {
      const card = plain.data.cards.rich;
      const before = await plain.balance(card.id);
      const { result } = await plain.place({
        did: plain.data.did,
        callerId: '15551230000',
        digits: [`${card.pin}#`, '15557654321#', ''],
        carrier: () => carrier.answer(500, 3000),
      });
      expect(result.commands.some((c) => c.startsWith('myevents') && !c.includes('json'))).toBe(true);
      expect(result.commands.some((c) => c.includes('uuid_getvar') && c.includes('b_leg_cdr'))).toBe(true);
      expect(await plain.balance(card.id)).toBe(before - parseMoney('0.04'));
      const rows = await plain.service.pool.query('SELECT billsec FROM cdrs WHERE call_id = $1', [result.bLegs[0]!.uuid]);
      expect(rows.rows).toEqual([{ billsec: 3 }]);
    } finally {
      await plain.close();
    }
  });
});
