/**
 * Cancels what one app is waiting for: abort() ends its sleeps at once (in the order they started), like an
 * AbortController whose signal is passed to each sleep, without the EventTarget machinery.
 */
export class AppSignal {
  aborted = false;
  /** Sleeps in flight on this signal. */
  waiting: Sleeper[] | undefined;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const w = this.waiting;
    if (!w) return;
    this.waiting = undefined;
    for (let i = 0; i < w.length; i++) w[i]!.done(false);
  }
}

/** One sleep in flight: the timer or immediate that ends it, and the signal that may end it sooner. */
class Sleeper {
  timer: NodeJS.Timeout | undefined;
  imm: NodeJS.Immediate | undefined;
  settled = false;

  constructor(
    readonly clock: VirtualClock,
    readonly ms: number,
    readonly started: number,
    readonly signal: AppSignal | undefined,
    readonly resolve: (full: boolean) => void,
  ) {}

  done(full: boolean): void {
    if (this.settled) return;
    this.settled = true;
    const w = this.signal?.waiting;
    if (w) {
      const i = w.indexOf(this);
      if (i >= 0) w.splice(i, 1);
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.imm) {
      clearImmediate(this.imm);
      this.imm = undefined;
      this.clock.pendingImmediate--;
    }
    // the clock moves and the sleeper resumes one microtask later, as after `await` in an async sleep()
    queueMicrotask(() => this.finish(full));
  }

  private finish(full: boolean): void {
    const clock = this.clock;
    if (full) clock.advanceMs(this.ms);
    else if (clock.timeScale > 0) clock.advanceMs(Math.min(this.ms, (performance.now() - this.started) / clock.timeScale));
    this.resolve(full);
  }
}

function sleepElapsed(s: Sleeper): void {
  s.done(true);
}

const NOT_SLEPT = Promise.resolve(false);

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
   * Resolves true when the full wait completed. (Resolves on the same microtask turns as the async function
   * it replaces: a sleeper resumes two turns after its timer or abort.)
   */
  sleep(ms: number, signal?: AppSignal): Promise<boolean> {
    if (signal?.aborted) return NOT_SLEPT;
    const realMs = ms * this.timeScale;
    const started = this.timeScale > 0 ? performance.now() : 0;
    return new Promise<boolean>((resolve) => {
      const s = new Sleeper(this, ms, started, signal, resolve);
      if (realMs >= 1) s.timer = setTimeout(sleepElapsed, realMs, s);
      else {
        this.pendingImmediate++;
        s.imm = setImmediate(sleepElapsed, s);
      }
      if (signal) (signal.waiting ??= []).push(s);
    });
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
