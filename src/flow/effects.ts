import { flowEffects } from './actors.ts';
import { resumeEffects } from './resume.ts';
import { voucherEffects } from './voucher.ts';

/** What an effect gets: its input, and the signal that fires when the state that started it is left. */
export interface EffectArgs<I> {
  input: I;
  signal: AbortSignal;
}

/** Every effect of the flow by name (actors.ts, resume.ts, voucher.ts). */
export const effects = { ...flowEffects, ...resumeEffects, ...voucherEffects };

export type Effects = typeof effects;
export type EffectName = keyof Effects;
export type EffectInput<K extends EffectName> = Parameters<Effects[K]>[0]['input'];
export type EffectOutput<K extends EffectName> = Awaited<ReturnType<Effects[K]>>;

/** How an effect's end comes back to the machine: `<name>.done` with its output, or `effect.error`. */
export type EffectEvent =
  | { [K in EffectName]: { type: `${K}.done`; output: EffectOutput<K> } }[EffectName]
  | { type: 'effect.error'; error: unknown };

interface Receiver {
  send(event: EffectEvent): void;
}

/**
 * Runs the call's effects, one at a time: a plain object per call instead of an actor per command (an XState actor
 * costs a mailbox, a scope, a snapshot and a done event of its own). The state that starts an effect (its entry,
 * `runEffect`) aborts it when it is left (its exit, `stopEffect`), as an invoked actor would be stopped: the effect's
 * signal fires, and whatever it still resolves with is dropped.
 */
export class EffectRunner {
  private current: AbortController | undefined;

  constructor(
    private readonly impl: Effects = effects,
    /** Told the name of every effect started (the call's trace log). */
    private readonly onStart?: (name: EffectName) => void,
  ) {}

  start<K extends EffectName>(name: K, input: EffectInput<K>, to: Receiver): void {
    this.stop();
    this.onStart?.(name);
    const ctl = new AbortController();
    this.current = ctl;
    const run = this.impl[name] as (args: EffectArgs<EffectInput<K>>) => Promise<EffectOutput<K>>;
    new Promise<EffectOutput<K>>((resolve) => resolve(run({ input, signal: ctl.signal }))).then(
      (output) => {
        if (this.current !== ctl) return;
        this.current = undefined;
        to.send({ type: `${name}.done`, output } as EffectEvent);
      },
      (error: unknown) => {
        if (this.current !== ctl) return;
        this.current = undefined;
        to.send({ type: 'effect.error', error });
      },
    );
  }

  /** Aborts the effect in flight, if any; its result will not be delivered. */
  stop(): void {
    const ctl = this.current;
    this.current = undefined;
    ctl?.abort();
  }
}
