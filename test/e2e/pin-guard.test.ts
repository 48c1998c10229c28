/**
 * Issue 13 end to end: spoofed caller IDs cannot lock cardholders out of an access number, and a card whose balance
 * lies beyond the live store's exact range (written before amounts were bounded) still places calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { startHarness, type Harness } from './harness.ts';

describe('PIN guessing from spoofed caller IDs, through the simulator', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.service.pool.query(`UPDATE access_numbers SET auth_mode = 'cli-then-pin', pin_tries = 3 WHERE did = $1`, [h.data.did]);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('17 calls x 3 wrong PINs from 17 caller IDs: bound and recently successful callers still call; unknown ones wait', async () => {
    const did = h.data.did;
    const regular = '15553330001';
    const ok = await h.place({ did, callerId: regular, digits: [`${h.data.cards.rich.pin}#`, '', '', ''] });
    expect(ok.outcome.cardId).toBe(h.data.cards.rich.id);

    for (let i = 0; i < 17; i++) {
      const { outcome } = await h.place({ did, callerId: `1999555${String(i).padStart(4, '0')}`, digits: ['1111111111#', '2222222221#', '3333333331#'] });
      expect(outcome.ended === 'too_many_attempts' || outcome.ended === 'locked_out').toBe(true);
    }

    const pinless = await h.place({ did, callerId: h.data.callerIdOfPinless, digits: ['15557654321#', ''], carrier: () => carrier.answer(500, 2000) });
    expect(pinless.outcome.ended).toBe('completed');
    const again = await h.place({ did, callerId: regular, digits: [`${h.data.cards.rich.pin}#`, '15557654321#', ''], carrier: () => carrier.answer(500, 2000) });
    expect(again.outcome.ended).toBe('completed');

    const stranger = await h.place({ did, callerId: '15553330999', digits: [`${h.data.cards.rich.pin}#`] });
    expect(stranger.outcome.ended).toBe('locked_out');
    const withheld = await h.place({ did, withheld: true, digits: [`${h.data.cards.rich.pin}#`] });
    expect(withheld.outcome.ended).toBe('locked_out');
  });
});

describe('a balance beyond the live store exact range', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a card holding 9223372036854 (written before the bound) is not hung up after the PIN prompt', async () => {
    const card = h.data.cards.poor;
    await h.service.pool.query('UPDATE cards SET balance_micros = 9223372036854000000, balance_version = balance_version + 1 WHERE id = $1', [card.id]);
    const { outcome } = await h.place({
      did: h.data.did,
      callerId: '15553339999',
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(500, 2000),
    });
    expect(outcome.ended).toBe('completed');
    expect(outcome.cardId).toBe(card.id);
  });
});
