/**
 * FreeSwitchSim: plays FreeSWITCH's side of `socket 127.0.0.1:8040 async full` for scripted callers.
 */
import { randomUUID } from 'node:crypto';
import { SimSession } from './session.ts';
import type { CallResult, CallScript, SimOptions } from './types.ts';

export class FreeSwitchSim {
  readonly coreUuid = randomUUID();
  private sequence = 2550;
  private readonly active = new Set<Promise<CallResult>>();

  constructor(readonly options: SimOptions) {}

  /** Places one call: connects to the ESL server and plays the script until the socket ends. */
  call(script: CallScript = {}): Promise<CallResult> {
    const session = new SimSession(this.options, script, () => ++this.sequence, this.coreUuid);
    const p = session.run();
    this.active.add(p);
    void p.finally(() => this.active.delete(p));
    return p;
  }

  /** n calls, at most `concurrency` at a time; scriptFn(i) gives each call's script. */
  async callMany(n: number, scriptFn: (i: number) => CallScript, concurrency = 10): Promise<CallResult[]> {
    const results: CallResult[] = new Array(n);
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        results[i] = await this.call(scriptFn(i));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return results;
  }

  /** Waits for all calls in flight. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.active]);
  }
}
