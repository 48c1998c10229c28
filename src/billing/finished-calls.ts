import type { Pool } from 'pg';
import type { Micros } from '../money/money.ts';

/*
 * The calls this process finished lately, so that the CDR that repeats what is already done costs nothing. A
 * bridged call is finished twice: by its socket settle as it ends (the carrier leg's CDR read over the event
 * socket) and by mod_json_cdr's POST of the same leg, which FreeSWITCH sends as that leg ends: just before, during
 * or after the socket settle. The second used to read the calls row, run the debit statement (a duplicate: it writes
 * nothing) and settle the live store again.
 *
 * An entry is written only after PostgreSQL committed the outcome AND the live store took the settle (hold dropped,
 * new balance cached), so answering from it is what the database and the live store would say:
 *   - debited: a CDR saying the call was answered is a duplicate (calls.call_id UNIQUE in cdrs: nothing to do),
 *     with the billed seconds and cost of the debit (the flow's settle reads the card's balance now, as the
 *     duplicate debit statement reported it);
 *   - debited or released: a CDR saying it never answered releases nothing more (the release UPDATE matches no
 *     open row) and would only settle the live store again.
 * A call released (never answered) whose CDR says it was answered is NOT answered from here: that CDR bills it.
 * A debit of a call whose other debit is in flight in this process waits for that one, then looks again (a failed
 * or refused first one leaves no entry: the second goes to the database as before).
 * Per pool (a process serving several databases, as the tests do, keeps them apart); bounded in size and age; a
 * miss (another process finished it, a restart, an old entry) takes the database path.
 */
export type FinishedCall =
  | { how: 'debited'; cardId: string; billedSeconds: number; cost: Micros; balance: Micros }
  | { how: 'released'; cardId: string; balance: Micros };

const MAX_ENTRIES = 20_000;
const MAX_AGE_MS = 15 * 60_000;

interface PoolMemo {
  done: Map<string, FinishedCall & { at: number }>;
  inFlight: Map<string, Promise<unknown>>;
}

const byPool = new WeakMap<Pool, PoolMemo>();
function memo(pool: Pool): PoolMemo {
  let m = byPool.get(pool);
  if (!m) byPool.set(pool, (m = { done: new Map(), inFlight: new Map() }));
  return m;
}

export function rememberFinished(pool: Pool, callId: string, f: FinishedCall, now = Date.now()): void {
  const { done } = memo(pool);
  const key = callId.toLowerCase();
  // A debited call stays debited (releasing it afterwards changes nothing: its CDR is recorded).
  const was = done.get(key);
  if (was?.how === 'debited' && f.how === 'released') f = was;
  done.delete(key); // re-inserted last: the map stays in age order
  done.set(key, { ...f, at: now });
  for (const [k, e] of done) {
    if (done.size <= MAX_ENTRIES && now - e.at < MAX_AGE_MS) break;
    done.delete(k);
  }
}

/** What this process knows it finished for this call, once any finishing of it in flight here is over. */
export async function finishedCall(pool: Pool, callId: string): Promise<FinishedCall | undefined> {
  const m = byPool.get(pool);
  if (!m) return undefined;
  const key = callId.toLowerCase();
  const running = m.inFlight.get(key);
  if (running) await running.catch(() => undefined);
  const e = m.done.get(key);
  return e && Date.now() - e.at < MAX_AGE_MS ? e : undefined;
}

/** Runs fn as the finishing of this call in flight (finishedCall waits for it). */
export async function finishing<T>(pool: Pool, callId: string, fn: () => Promise<T>): Promise<T> {
  const { inFlight } = memo(pool);
  const key = callId.toLowerCase();
  const p = fn();
  inFlight.set(key, p);
  try {
    return await p;
  } finally {
    if (inFlight.get(key) === p) inFlight.delete(key);
  }
}
