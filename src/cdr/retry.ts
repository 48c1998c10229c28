/**
 * Replays the debit journal (journal.ts) until every entry has landed: oldest first, through the one idempotent
 * debit path (finishCall), in the background (calls never wait for it). While PostgreSQL or the network is down
 * the worker backs off exponentially (minDelayMs doubling up to maxDelayMs, 250 ms to 10 s by default: one cheap statement per try) and keeps the order; an entry that fails
 * for another reason (a bug, a constraint) is logged and retried on later passes without holding up the others.
 * A periodic pass also takes entries left by an earlier run of ccard or written by a sibling worker sharing the
 * directory (a debit replayed twice is a duplicate: nothing happens).
 */
import type { CallFacts, FinishOutcome } from '../billing/debit.ts';
import type { Log } from '../billing/billing-deps.ts';
import type { DebitJournal } from './journal.ts';

export interface RetryWorkerOptions {
  journal: DebitJournal;
  /** The debit path (finishCall with the service's dependencies). */
  finish: (facts: CallFacts) => Promise<FinishOutcome>;
  /** True when err means the database (or the network to it) is unavailable: back off and keep the order. */
  isUnavailable: (err: unknown) => boolean;
  logger: Log;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** How often the directory is looked at when nothing kicked the worker. */
  scanMs?: number;
}

export interface RetryStats {
  /** Entries replayed and done (debited, released, duplicate or unknown call). */
  landed: number;
  /** Replays that failed (each will be tried again). */
  failures: number;
  /** True while the worker waits for the database to come back. */
  backingOff: boolean;
}

export class RetryWorker {
  readonly stats: RetryStats = { landed: 0, failures: 0, backingOff: false };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private delayMs: number;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly scanMs: number;

  constructor(private readonly opts: RetryWorkerOptions) {
    this.minDelayMs = opts.minDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.scanMs = opts.scanMs ?? 5_000;
    this.delayMs = this.minDelayMs;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.kick();
  }

  /** A new entry was written: replay now (unless waiting for the database, which a kick cannot speed up). */
  kick(): void {
    if (this.stopped || this.stats.backingOff) return;
    this.schedule(0);
  }

  /** Stops after the replay in progress (entries not replayed stay in the journal for the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass now (tests, `ccard` commands); resolves when it is over. */
  async runOnce(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.pass(true).finally(() => (this.running = undefined));
    await this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      if (this.running) return this.schedule(Math.max(ms, 50));
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.stats.backingOff ? this.delayMs : this.scanMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** `once`: a pass asked for by runOnce, which runs even when the worker is not started. */
  private async pass(once = false): Promise<void> {
    const { journal, logger } = this.opts;
    let names: string[];
    try {
      names = await journal.names();
    } catch (err) {
      logger.error({ err }, 'debit journal unreadable; will retry');
      return;
    }
    for (const name of names) {
      if (this.stopped && !once) return;
      let facts: CallFacts | undefined;
      try {
        facts = await journal.read(name);
      } catch (err) {
        logger.error({ err, entry: name }, 'debit journal entry unreadable; will retry');
        continue;
      }
      if (!facts) continue;
      try {
        const out = await this.opts.finish(facts);
        await journal.remove(name);
        this.stats.landed++;
        this.stats.backingOff = false;
        this.delayMs = this.minDelayMs;
        logger.info({ callId: facts.callId, status: out.status }, 'journaled debit landed');
      } catch (err) {
        this.stats.failures++;
        if (this.opts.isUnavailable(err)) {
          // Keep the order: nothing after it is tried before it lands.
          if (!this.stats.backingOff) logger.warn({ err, callId: facts.callId }, 'database unavailable: journaled debits wait');
          this.stats.backingOff = true;
          this.delayMs = Math.min(this.maxDelayMs, this.delayMs * 2);
          return;
        }
        logger.error({ err, callId: facts.callId }, 'journaled debit failed; it stays in the journal');
      }
    }
    this.stats.backingOff = false;
    this.delayMs = this.minDelayMs;
  }
}
