import type pg from 'pg';
import type { PoolClient, Pool } from './db.ts';
import { RoutingIndex, type Carrier, type EntryCarrier, type RoutingEntry, type RoutingMode, type RoutingPlan } from '../billing/routing.ts';

type Queryable = Pool | PoolClient | pg.Client;

interface CarrierRow {
  id: string;
  name: string;
  gateway: string;
  rate_table_id: string;
  max_calls: number | null;
  prefix_strip: number;
  prefix_add: string;
  enabled: boolean;
}

export const CARRIER_COLUMNS = `c.id::text AS id, c.name, c.gateway, c.rate_table_id::text AS rate_table_id, c.max_calls,
  c.prefix_strip, c.prefix_add, c.enabled`;

export function carrierFromRow(r: CarrierRow): Carrier {
  return {
    id: r.id,
    name: r.name,
    gateway: r.gateway,
    rateTableId: r.rate_table_id,
    maxCalls: r.max_calls,
    prefixStrip: r.prefix_strip,
    prefixAdd: r.prefix_add,
    enabled: r.enabled,
  };
}

/** Every carrier, plan and entry (called inside loadRateIndex's snapshot transaction). */
export async function loadRouting(db: Queryable): Promise<RoutingIndex> {
  const carriers = await db.query<CarrierRow>(`SELECT ${CARRIER_COLUMNS} FROM carriers c ORDER BY c.id`);
  const plans = await db.query<{ id: string; name: string; loss_prompt: string }>(
    'SELECT id::text AS id, name, loss_prompt FROM routing_plans ORDER BY id',
  );
  const entries = await db.query<{ id: string; plan_id: string; prefix: string; mode: RoutingMode; carriers: EntryCarrier[] | null }>(
    `SELECT e.id::text AS id, e.plan_id::text AS plan_id, e.prefix, e.mode,
       (SELECT json_agg(json_build_object('carrierId', ec.carrier_id::text, 'position', ec.position, 'weight', ec.weight)
                        ORDER BY ec.position, ec.carrier_id)
          FROM routing_entry_carriers ec WHERE ec.entry_id = e.id) AS carriers
     FROM routing_entries e ORDER BY e.id`,
  );
  const plansList: RoutingPlan[] = plans.rows.map((p) => ({ id: p.id, name: p.name, lossPrompt: p.loss_prompt }));
  const entryList: RoutingEntry[] = entries.rows.map((e) => ({
    id: e.id,
    planId: e.plan_id,
    prefix: e.prefix,
    mode: e.mode,
    carriers: e.carriers ?? [],
  }));
  return new RoutingIndex(carriers.rows.map(carrierFromRow), plansList, entryList);
}
