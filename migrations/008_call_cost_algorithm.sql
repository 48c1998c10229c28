-- The cost algorithm a call was reserved (and capped) under, next to its rate snapshot (calls.rate): the debit uses
-- the same one, whatever the code computes for new calls by then (src/billing/rating.ts COST_ALGORITHMS).
-- 'round-once-v1' is the only algorithm there was before this column: connect fee + billable seconds at the rate,
-- tax on top, rounded once to the table's decimals with its rounding rule. Existing calls get it, and so does a row
-- written by a process that does not know about the column yet (the default stays for that reason).
ALTER TABLE calls ADD COLUMN cost_algorithm TEXT NOT NULL DEFAULT 'round-once-v1'
  CHECK (cost_algorithm ~ '^[a-z0-9-]{1,40}$');
