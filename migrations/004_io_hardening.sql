-- Idempotency keys belong to whoever used them (an API key, an operator, the CLI): the same key from two clients is
-- two requests. Keys stored before this migration keep the empty scope, still honoured for any caller, so a retry
-- across the upgrade is still answered from the stored response.
ALTER TABLE idempotency_keys ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, key);

-- Self-care login failures keyed by the serial as typed (known or not, so an unknown serial behaves exactly like a
-- known one, locks included) and by the client address (a /64 for IPv6): an address that fails too often is refused
-- before it can count against any serial, so nobody can lock every card's self-care by walking serials.
DROP TABLE selfcare_lockouts;

CREATE TABLE selfcare_login_failures (
  subject            TEXT PRIMARY KEY,              -- 'serial:<serial>' or 'ip:<address>'
  failures           INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
  window_started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  locked_until       TIMESTAMPTZ
);
CREATE INDEX selfcare_login_failures_stale ON selfcare_login_failures (window_started_at);
