import type { Pool } from 'pg';
import type { PinKeys } from '../pin.ts';
import type { CardSnapshot } from '../../live/live-balance.ts';
import type { BulkWork } from '../bulk.ts';

/** Called after a committed balance change (the live cache refreshes from it). spendable = balance + credit limit. */
export type OnBalanceChange = (cardId: string, snapshot: CardSnapshot) => Promise<void>;

/** What every operator action needs: the database, the PIN keys and the post-commit balance hook. */
export interface AdminContext {
  pool: Pool;
  pinKeys: PinKeys;
  onBalanceChange?: OnBalanceChange;
  /**
   * Who acts (`apikey:<name>`, `operator:<name>`, `cli`): idempotency keys are scoped to it, so one client can
   * neither replay nor block another's key. Unset: the legacy global scope.
   */
  actor?: string;
  /** Exports, imports and reports run here, never on `pool` (the API); absent in the CLI (its own process). */
  bulk?: BulkWork;
}
