import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Call } from '../../src/flow/call.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
/** What to do to the database just before the flow asks for the destination (after the card was authorized). */
let beforeDestination: (() => Promise<unknown>) | undefined;

beforeAll(async () => {
  h = await startHarness({
    service: {
      wrapCall: (call: Call) =>
        new Proxy(call, {
          get: (t, p) => {
            if (p === 'playAndGetDigits') {
              return async (...args: Parameters<Call['playAndGetDigits']>) => {
                if (args[0].variable === 'ivr_destination' && beforeDestination) await beforeDestination();
                return t.playAndGetDigits(...args);
              };
            }
            const v = Reflect.get(t, p);
            return typeof v === 'function' ? v.bind(t) : v;
          },
        }),
    },
  });
});
afterAll(async () => {
  await h?.close();
});

describe('a reservation refused through the real server says why', () => {
  it.each([
    ['disabled', 'card_disabled'],
    ['expired', 'card_expired'],
  ] as const)('a card %s by an operator during the IVR hears %s, not "balance too low", and nothing is held', async (status, prompt) => {
    const card = h.data.cards.rich;
    beforeDestination = () => h.service.pool.query(`UPDATE cards SET status = $2 WHERE id = $1`, [card.id, status]);
    try {
      const { result, outcome } = await h.place({ did: h.data.did, callerId: '15551230000', digits: [`${card.pin}#`, '15557654321#'] });
      expect(outcome.ended).toBe(prompt);
      expect(outcome.played.at(-1)).toBe(prompt);
      expect(outcome.played).not.toContain('insufficient_balance');
      expect(result.prompts.at(-1)).toBe(`ccard/${prompt}.wav`);
      expect(result.dialStrings).toHaveLength(0);
      expect(await h.service.live.reservations(card.id)).toEqual([]);
      const rows = await h.service.pool.query(`SELECT 1 FROM calls WHERE card_id = $1`, [card.id]);
      expect(rows.rowCount).toBe(0);
    } finally {
      beforeDestination = undefined;
      await h.service.pool.query(`UPDATE cards SET status = 'active' WHERE id = $1`, [card.id]);
    }
  });
});
