/**
 * JSON schemas of the console's answers, for the OpenAPI document the SPA's types are generated from
 * (openapi-typescript over /docs/json). Fastify also serializes with them, so they list every field answered.
 */
type S = Record<string, unknown>;

export const obj = (properties: Record<string, S>, optional: string[] = []): S => ({
  type: 'object',
  properties,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
});
export const arr = (items: S): S => ({ type: 'array', items });
export const str: S = { type: 'string' };
export const strOrNull: S = { type: ['string', 'null'] };
export const int: S = { type: 'integer' };
export const num: S = { type: 'number' };
export const bool: S = { type: 'boolean' };
/** Money: the exact decimal string and the integer micro-units, both strings (never a JSON number). */
export const amount: S = obj({ value: { type: 'string', description: 'exact decimal, e.g. "4.37"' }, micros: { type: 'string', description: 'integer micro-units' } });

export const card: S = obj({
  serial: str,
  series: str,
  status: { type: 'string', enum: ['pending', 'active', 'disabled', 'expired'] },
  currency: str,
  balance: amount,
  creditLimit: amount,
  maxCalls: int,
  maxCallsOverride: { type: ['integer', 'null'] },
  rateTable: str,
  rateTableOverride: strOrNull,
  activatedAt: strOrNull,
  expiresAt: strOrNull,
  lastUsedAt: strOrNull,
  createdAt: str,
});

export const cardGridPage: S = obj({
  items: arr(card),
  total: { type: 'integer', description: 'matching cards; an estimate when totalExact is false' },
  totalExact: { type: 'boolean', description: 'false: more than 10,000 matches, total is the planner estimate' },
  hasMore: bool,
});

export const bulkResult: S = obj({ updated: arr(card), failed: arr(obj({ serial: str, message: str })) });

export const ledgerEntry: S = obj({ id: str, amount, balanceAfter: amount, reason: str, ref: str, note: str, createdAt: str });

export const cardOverview: S = obj({
  card,
  ledger: arr(ledgerEntry),
  calls: arr(obj({ callId: str, destination: str, billedSeconds: int, cost: amount, hangupCause: strOrNull, answeredAt: strOrNull, endedAt: strOrNull, createdAt: str })),
  holds: arr(obj({ callId: str, destination: str, capSeconds: int, held: amount, startedAt: str, holdUntil: str })),
  callerIds: arr(str),
});

export const job: S = obj({
  id: str,
  kind: str,
  actor: str,
  status: { type: 'string', enum: ['running', 'done', 'failed'] },
  phase: str,
  done: int,
  total: int,
  result: {},
  error: strOrNull,
  createdAt: str,
  updatedAt: str,
});

export const liveCall: S = obj({
  callId: str,
  serial: str,
  did: strOrNull,
  callerId: strOrNull,
  destination: str,
  elapsedSeconds: int,
  capSeconds: int,
  held: amount,
  currency: str,
  startedAt: str,
});
export const liveCalls: S = obj({ items: arr(liveCall), total: int, at: str });

export const costTrend: S = obj({
  by: str,
  interval: str,
  from: str,
  to: str,
  groups: arr(obj({ key: str, name: strOrNull, currency: str, calls: int, billedSeconds: int, billedMinutes: str, totalCost: amount })),
  series: arr(obj({ at: str, currency: str, attempts: int, answered: int, asr: num, averageSeconds: int, revenue: amount })),
});
