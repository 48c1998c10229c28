/**
 * Virtual time for one simulated call. Every timestamp FreeSWITCH would report comes from here, so billing
 * facts (answer/end epochs, billsec) are deterministic; real waiting is the virtual wait times `timeScale`.
 */
export class VirtualClock {
  private us: number;
  /** Sleeps in flight that end on the next turn of the event loop (no real wait): more output follows at once. */
  pendingImmediate = 0;

  constructor(
    startUs: number,
    readonly timeScale: number,
  ) {
    this.us = startUs;
  }

  nowUs(): number {
    return this.us;
  }

  advanceMs(ms: number): void {
    if (ms > 0) this.us += Math.round(ms * 1000);
  }

  /**
   * Waits `ms` of virtual time. If `signal` aborts first, only the virtual time that really elapsed
   * (real elapsed / timeScale) is added; with timeScale 0 an abort adds nothing.
   * Resolves true when the full wait completed.
   */
  async sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    const realMs = ms * this.timeScale;
    const started = performance.now();
    const full = await new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
        if (imm) {
          clearImmediate(imm);
          imm = undefined;
          this.pendingImmediate--;
        }
        resolve(v);
      };
      const onAbort = () => done(false);
      let timer: NodeJS.Timeout | undefined;
      let imm: NodeJS.Immediate | undefined;
      if (realMs >= 1) timer = setTimeout(() => done(true), realMs);
      else {
        this.pendingImmediate++;
        imm = setImmediate(() => done(true));
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (full) this.advanceMs(ms);
    else if (this.timeScale > 0) this.advanceMs(Math.min(ms, (performance.now() - started) / this.timeScale));
    return full;
  }
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** "2026-11-22 22:38:51" (the simulated switch runs on UTC). */
export function fsStamp(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  return `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
}

/** "Sun, 22 Nov 2026 22:38:51 GMT" */
export function fsGmt(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`;
}
