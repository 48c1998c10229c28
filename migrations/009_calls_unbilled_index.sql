-- The unbilled-calls gauge (GET /metrics, ccard_calls_unbilled) counts calls with status 'unbilled' at every
-- scrape: a partial index keeps that count proportional to the unbilled calls, not to the whole calls table.
CREATE INDEX IF NOT EXISTS calls_unbilled ON calls (call_id) WHERE status = 'unbilled';
