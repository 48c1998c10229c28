import type { Pool } from 'pg';

/*
 * The calls this process finished lately, so that the CDR that repeats what is already done costs nothing. A
 * bridged call is finished twice: by its socket settle as it ends (the carrier leg's CDR read over the event
 * socket) and again by mod_json_cdr's POST of the same leg a moment later, which used to read the calls row, run the
 * debit statement (a duplicate: it writes nothing) and settle the live store again.
 *
 * An entry is written only after PostgreSQL committed the outcome AND the live store took the settle (hold dropped,
 * new balance cached), so answering from it is exactly what the database and the live store would say:
 *   - debited: a CDR saying the call was answered is a duplicate (calls.call_id UNIQUE in cdrs: nothing to do);
 *   - debited or released: a CDR saying it never answered releases nothing more (the release UPDATE matches
 *     no open row) and would only settle the live store again.
 * A call released (never answered) whose CDR says it was answered is NOT answered from here: that CDR bills it.
 * Per pool (a process serving several databases, as the tests do, keeps them apart); bounded in size and age; a
 * miss (another process finished it, a restart, an old entry) takes the database path as before.
 */
export type FinishedHow = 'debited' | 'released';

const MAX_ENTRIES = 20_000;
const MAX_AGE_MS = 15 * 60_000;

interface Entry {
  cardId: string;
  how: FinishedHow;
  at: number;
}

const byPool = new WeakMap<Pool, Map<string, Entry>>();

export function rememberFinished(pool: Pool, callId: string, cardId: string, how: FinishedHow, now = Date.now()): void {
  let m = byPool.get(pool);
  if (!m) byPool.set(pool, (m = new Map()));
  const key = callId.toLowerCase();
  // A debited call stays debited (releasing it afterwards changes nothing: its CDR is recorded).
  const was = m.get(key);
  m.delete(key); // re-inserted last: the map stays in age order
  m.set(key, { cardId, how: was?.how === 'debited' ? 'debited' : how, at: now });
  for (const [k, e] of m) {
    if (m.size <= MAX_ENTRIES && now - e.at < MAX_AGE_MS) break;
    m.delete(k);
  }
}

/** What this process knows it finished for this call (undefined: ask the database). */
export function finishedCall(pool: Pool, callId: string, now = Date.now()): { cardId: string; how: FinishedHow } | undefined {
  const e = byPool.get(pool)?.get(callId.toLowerCase());
  return e && now - e.at < MAX_AGE_MS ? e : undefined;
}
