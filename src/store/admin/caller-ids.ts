import type { AdminContext } from './context.ts';
import { conflict, notFound, pgCode } from './errors.ts';
import { parseInput, phoneInput, serialInput } from './input.ts';

export interface CallerId {
  callerId: string;
  serial: string;
  createdAt: string;
}

/** Binds a caller id (ANI) to a card, for 'cli' and 'cli-then-pin' access numbers. */
export async function addCallerId(ctx: AdminContext, callerId: string, serial: string): Promise<CallerId> {
  const cid = parseInput(phoneInput, callerId, 'callerId');
  const s = parseInput(serialInput, serial, 'serial');
  const card = await ctx.pool.query<{ id: bigint }>('SELECT id FROM cards WHERE serial = $1', [s]);
  if (!card.rowCount) throw notFound(`unknown card ${s}`);
  try {
    const r = await ctx.pool.query<{ created_at: Date }>(
      'INSERT INTO caller_ids (caller_id, card_id) VALUES ($1, $2) RETURNING created_at',
      [cid, card.rows[0]!.id],
    );
    return { callerId: cid, serial: s, createdAt: r.rows[0]!.created_at.toISOString() };
  } catch (err) {
    if (pgCode(err) === '23505') throw conflict(`caller id ${cid} is already bound to a card`);
    throw err;
  }
}

export async function listCallerIds(ctx: AdminContext, serial?: string): Promise<CallerId[]> {
  const s = serial === undefined ? undefined : parseInput(serialInput, serial, 'serial');
  const r = await ctx.pool.query<{ caller_id: string; serial: string; created_at: Date }>(
    `SELECT ci.caller_id, c.serial, ci.created_at FROM caller_ids ci JOIN cards c ON c.id = ci.card_id
     ${s ? 'WHERE c.serial = $1' : ''} ORDER BY ci.caller_id`,
    s ? [s] : [],
  );
  return r.rows.map((x) => ({ callerId: x.caller_id, serial: x.serial, createdAt: x.created_at.toISOString() }));
}

export async function removeCallerId(ctx: AdminContext, callerId: string): Promise<void> {
  const cid = parseInput(phoneInput, callerId, 'callerId');
  const r = await ctx.pool.query('DELETE FROM caller_ids WHERE caller_id = $1', [cid]);
  if (!r.rowCount) throw notFound(`unknown caller id ${cid}`);
}
