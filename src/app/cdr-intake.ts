import { countIgnoredCdr } from '../metrics/index.ts';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/env.ts';
import { finishCall } from '../billing/settle.ts';
import type { SettleDeps } from '../billing/billing-deps.ts';
import { countIngest, cdrCounters } from '../cdr/counters.ts';
import { DebitJournal } from '../cdr/journal.ts';
import { RetryWorker } from '../cdr/retry.ts';
import { SpoolIntake } from '../cdr/spool.ts';
import type { CallFacts } from '../billing/debit.ts';
import { failClosed, isUnavailableError, type CcardCallServices } from './call-services.ts';

/**
 * The parts of the service that make sure a call ending is billed even when it could not be at once: the debit
 * journal and its retry worker (settles the database could not take), and the CDR spool intake
 * (CCARD_CDR_SPOOL_DIR). Both bill through finishCall / ingestJsonCdr, the one idempotent debit path.
 */
export interface CdrIntake {
  journal: DebitJournal;
  retry: RetryWorker;
  spool: SpoolIntake | undefined;
  /** For CallServicesDeps.debitJournal: writes durably, then wakes the retry worker. */
  sink: { add(facts: CallFacts): Promise<unknown> };
  /** Bills what is on disk now (one pass over the journal and the spool), then keeps watching. */
  start(services: CcardCallServices): Promise<void>;
  stop(): Promise<void>;
}

export function journalDir(config: Config): string {
  return config.CCARD_JOURNAL_DIR ?? path.join(config.CCARD_DATA_DIR, 'journal');
}

export function createCdrIntake(config: Config, deps: SettleDeps, logger: Logger): CdrIntake {
  const journal = new DebitJournal(journalDir(config));
  // Bounded like every operation of a call (a blackholed connection must not stall the worker forever).
  const finish = (facts: CallFacts) => failClosed('journaled debit', 30_000, () => finishCall(deps, facts));
  const retry = new RetryWorker({ journal, finish, isUnavailable: isUnavailableError, logger });
  let spool: SpoolIntake | undefined;
  return {
    journal,
    retry,
    get spool() {
      return spool;
    },
    sink: {
      async add(facts) {
        await journal.add(facts);
        cdrCounters.journaled++;
        retry.kick();
      },
    },
    async start(services) {
      await retry.runOnce();
      retry.start();
      if (config.CCARD_CDR_SPOOL_DIR.length === 0) return;
      spool = new SpoolIntake({
        dirs: config.CCARD_CDR_SPOOL_DIR,
        ingest: async (text) => {
          const r = countIgnoredCdr('spool', await services.ingestJsonCdr(text, 'spool'));
          countIngest('spool', r.status);
          return r;
        },
        isUnavailable: isUnavailableError,
        logger,
        scanMs: config.CCARD_CDR_SPOOL_SCAN_SECONDS * 1000,
      });
      await spool.scanOnce();
      await spool.start();
      logger.info({ dirs: config.CCARD_CDR_SPOOL_DIR }, 'CDR spool intake started');
    },
    async stop() {
      await Promise.all([retry.stop(), spool?.stop()]);
    },
  };
}
