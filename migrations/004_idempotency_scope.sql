-- Idempotency keys belong to whoever used them (an API key, an operator, the CLI): the same key from two clients is
-- two requests. Keys stored before this migration keep the empty scope, still honoured for any caller, so a retry
-- across the upgrade is still answered from the stored response.
ALTER TABLE idempotency_keys ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, key);
