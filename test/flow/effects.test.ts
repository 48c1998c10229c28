import { describe, expect, it } from 'vitest';
import { EffectRunner, effects, type EffectEvent, type Effects } from '../../src/flow/effects.ts';

/** A runner whose `balance` effect is a promise the test settles, and the events it sends back. */
function harness() {
  const pending: Array<{ resolve: (v: bigint) => void; reject: (e: unknown) => void; signal: AbortSignal }> = [];
  const balance = ({ signal }: { input: unknown; signal: AbortSignal }) =>
    new Promise<bigint>((resolve, reject) => pending.push({ resolve, reject, signal }));
  const runner = new EffectRunner({ ...effects, balance } as unknown as Effects);
  const events: EffectEvent[] = [];
  const start = () => runner.start('balance', { services: undefined as never, cardId: '1' }, { send: (e) => events.push(e) });
  const tick = () => new Promise((r) => setTimeout(r, 0));
  return { runner, pending, events, start, tick };
}

describe('EffectRunner', () => {
  it('sends <name>.done with the output, or effect.error with the error', async () => {
    const h = harness();
    h.start();
    h.pending[0]!.resolve(5n);
    await h.tick();
    h.start();
    h.pending[1]!.reject(new Error('boom'));
    await h.tick();
    expect(h.events).toEqual([
      { type: 'balance.done', output: 5n },
      { type: 'effect.error', error: new Error('boom') },
    ]);
  });

  it('stop() aborts the effect in flight and drops what it still resolves with', async () => {
    const h = harness();
    h.start();
    h.runner.stop();
    expect(h.pending[0]!.signal.aborted).toBe(true);
    h.pending[0]!.resolve(5n);
    await h.tick();
    expect(h.events).toEqual([]);
  });

  it('a new effect aborts the one before it: only the newer one reports', async () => {
    const h = harness();
    h.start();
    h.start();
    expect(h.pending[0]!.signal.aborted).toBe(true);
    expect(h.pending[1]!.signal.aborted).toBe(false);
    h.pending[0]!.resolve(1n);
    h.pending[1]!.resolve(2n);
    await h.tick();
    expect(h.events).toEqual([{ type: 'balance.done', output: 2n }]);
  });

  it('an effect that throws before returning a promise is an effect.error, not a crash of the caller', async () => {
    const events: EffectEvent[] = [];
    const runner = new EffectRunner({ ...effects, balance: () => { throw new Error('sync'); } } as unknown as Effects);
    expect(() => runner.start('balance', { services: undefined as never, cardId: '1' }, { send: (e) => events.push(e) })).not.toThrow();
    await new Promise((r) => setTimeout(r, 0));
    expect(events).toEqual([{ type: 'effect.error', error: new Error('sync') }]);
  });
});
