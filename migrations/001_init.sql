-- ccard schema. Every amount is BIGINT micro-units of the currency (1.00 = 1000000). Never a float.

CREATE TABLE rate_tables (
  id                    BIGSERIAL PRIMARY KEY,
  name                  TEXT NOT NULL UNIQUE,
  currency              CHAR(3) NOT NULL DEFAULT 'USD',
  decimals              SMALLINT NOT NULL DEFAULT 2 CHECK (decimals BETWEEN 0 AND 6),
  rounding              TEXT NOT NULL DEFAULT 'up' CHECK (rounding IN ('up', 'half_up', 'down')),
  min_billable_seconds  INTEGER NOT NULL DEFAULT 0 CHECK (min_billable_seconds >= 0),
  created_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE rates (
  id                    BIGSERIAL PRIMARY KEY,
  rate_table_id         BIGINT NOT NULL REFERENCES rate_tables(id) ON DELETE CASCADE,
  prefix                TEXT NOT NULL CHECK (prefix ~ '^[0-9]{1,20}$'),
  destination           TEXT NOT NULL DEFAULT '',
  rate_per_min_micros   BIGINT NOT NULL CHECK (rate_per_min_micros >= 0),
  connect_fee_micros    BIGINT NOT NULL DEFAULT 0 CHECK (connect_fee_micros >= 0),
  initial_increment     INTEGER NOT NULL DEFAULT 60 CHECK (initial_increment >= 1),
  subsequent_increment  INTEGER NOT NULL DEFAULT 60 CHECK (subsequent_increment >= 1),
  effective_from        TIMESTAMPTZ,
  effective_to          TIMESTAMPTZ,
  CHECK (effective_to IS NULL OR effective_from IS NULL OR effective_to > effective_from)
);
CREATE INDEX rates_table_prefix ON rates (rate_table_id, prefix);

CREATE TABLE tax_profiles (
  id        BIGSERIAL PRIMARY KEY,
  name      TEXT NOT NULL UNIQUE,
  rate_ppm  INTEGER NOT NULL CHECK (rate_ppm >= 0)   -- parts per million: 20% = 200000
);

CREATE TABLE series (
  id                        BIGSERIAL PRIMARY KEY,
  name                      TEXT NOT NULL,
  series_number             TEXT NOT NULL UNIQUE CHECK (series_number ~ '^[0-9]{1,9}$'),
  card_count                INTEGER NOT NULL CHECK (card_count >= 0),
  currency                  CHAR(3) NOT NULL DEFAULT 'USD',
  initial_balance_micros    BIGINT NOT NULL DEFAULT 0 CHECK (initial_balance_micros >= 0),
  pin_length                SMALLINT NOT NULL DEFAULT 10 CHECK (pin_length BETWEEN 8 AND 20),
  initial_status            TEXT NOT NULL DEFAULT 'pending' CHECK (initial_status IN ('pending', 'active', 'disabled')),
  rate_table_id             BIGINT NOT NULL REFERENCES rate_tables(id),
  tax_profile_id            BIGINT REFERENCES tax_profiles(id),
  activation_fee_micros     BIGINT NOT NULL DEFAULT 0 CHECK (activation_fee_micros >= 0),
  maintenance_fee_micros    BIGINT NOT NULL DEFAULT 0 CHECK (maintenance_fee_micros >= 0),
  maintenance_period_hours  INTEGER CHECK (maintenance_period_hours IS NULL OR maintenance_period_hours > 0),
  expiry_date               TIMESTAMPTZ,
  expiry_days               INTEGER CHECK (expiry_days IS NULL OR expiry_days > 0),
  max_concurrent_calls      INTEGER NOT NULL DEFAULT 1 CHECK (max_concurrent_calls >= 1),
  selfcare                  BOOLEAN NOT NULL DEFAULT false,
  status                    TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped', 'deleted')),
  notes                     TEXT NOT NULL DEFAULT '',
  created_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- status: pending (never used; activated on first use), active, disabled, expired.
-- balance_version increases with every balance change; the live store (Redis) uses it to ignore stale writes.
CREATE TABLE cards (
  id                        BIGSERIAL PRIMARY KEY,
  series_id                 BIGINT NOT NULL REFERENCES series(id),
  serial                    TEXT NOT NULL UNIQUE,
  pin_hash                  BYTEA NOT NULL UNIQUE,      -- HMAC-SHA256(secret, pin): a PIN lookup is one indexed query
  pin_cipher                BYTEA,                      -- AES-256-GCM(secret, pin): only for an explicit PIN export
  status                    TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'disabled', 'expired')),
  currency                  CHAR(3) NOT NULL DEFAULT 'USD',
  balance_micros            BIGINT NOT NULL DEFAULT 0,
  credit_limit_micros       BIGINT NOT NULL DEFAULT 0 CHECK (credit_limit_micros >= 0),
  balance_version           BIGINT NOT NULL DEFAULT 1,
  rate_table_id             BIGINT REFERENCES rate_tables(id),  -- NULL: the series' table
  max_concurrent_calls      INTEGER CHECK (max_concurrent_calls IS NULL OR max_concurrent_calls >= 1),
  activated_at              TIMESTAMPTZ,
  expires_at                TIMESTAMPTZ,
  last_used_at              TIMESTAMPTZ,
  maintenance_charged_periods INTEGER NOT NULL DEFAULT 0,
  created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT balance_floor CHECK (balance_micros >= -credit_limit_micros)
);
CREATE INDEX cards_series ON cards (series_id);
CREATE INDEX cards_status ON cards (status);

CREATE TABLE access_numbers (
  did                   TEXT PRIMARY KEY CHECK (did ~ '^\+?[0-9]{3,20}$'),
  language              TEXT NOT NULL DEFAULT 'en',
  auth_mode             TEXT NOT NULL DEFAULT 'pin' CHECK (auth_mode IN ('pin', 'cli', 'cli-then-pin')),
  gateway               TEXT NOT NULL CHECK (gateway ~ '^[A-Za-z0-9_.-]{1,64}$'),
  failover_gateway      TEXT CHECK (failover_gateway IS NULL OR failover_gateway ~ '^[A-Za-z0-9_.-]{1,64}$'),
  min_digits            SMALLINT NOT NULL DEFAULT 11 CHECK (min_digits BETWEEN 3 AND 20),
  max_digits            SMALLINT NOT NULL DEFAULT 14 CHECK (max_digits BETWEEN 3 AND 20),
  allowed_prefixes      TEXT[] NOT NULL DEFAULT '{}',
  denied_prefixes       TEXT[] NOT NULL DEFAULT '{}',
  country_code          TEXT NOT NULL DEFAULT '1' CHECK (country_code ~ '^[0-9]{1,4}$'),
  national_prefix       TEXT NOT NULL DEFAULT '' CHECK (national_prefix ~ '^[0-9]{0,4}$'),
  pin_length            SMALLINT NOT NULL DEFAULT 10 CHECK (pin_length BETWEEN 4 AND 20),
  pin_tries             SMALLINT NOT NULL DEFAULT 3 CHECK (pin_tries BETWEEN 1 AND 10),
  bind_cli_after_pin    BOOLEAN NOT NULL DEFAULT false,
  max_calls_per_session SMALLINT NOT NULL DEFAULT 3 CHECK (max_calls_per_session >= 1),
  enabled               BOOLEAN NOT NULL DEFAULT true,
  created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (min_digits <= max_digits)
);

CREATE TABLE caller_ids (
  caller_id   TEXT PRIMARY KEY CHECK (caller_id ~ '^\+?[0-9]{3,20}$'),
  card_id     BIGINT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX caller_ids_card ON caller_ids (card_id);

-- One row per bridge attempt: the funds held for it and how it ended. call_id is the carrier leg's uuid
-- (ccard sets it with origination_uuid), so a CDR from the socket, from mod_json_cdr or from an import
-- all name the same call.
CREATE TABLE calls (
  call_id          UUID PRIMARY KEY,
  card_id          BIGINT NOT NULL REFERENCES cards(id),
  ivr_uuid         UUID,
  did              TEXT,
  caller_id        TEXT,
  destination      TEXT NOT NULL,
  rate             JSONB NOT NULL,            -- the rate and table rules used, so the debit costs what was promised
  max_seconds      INTEGER NOT NULL CHECK (max_seconds >= 0),
  reserved_micros  BIGINT NOT NULL CHECK (reserved_micros >= 0),
  status           TEXT NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'settled', 'released', 'expired')),
  hold_until       TIMESTAMPTZ NOT NULL,      -- the reservation's deadline (cap + margin)
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  settled_at       TIMESTAMPTZ
);
CREATE INDEX calls_open ON calls (card_id) WHERE status = 'reserved';

CREATE TABLE cdrs (
  id               BIGSERIAL PRIMARY KEY,
  call_id          UUID NOT NULL UNIQUE,      -- carrier leg uuid: a CDR is recorded (and debited) once
  card_id          BIGINT NOT NULL REFERENCES cards(id),
  ivr_uuid         UUID,
  did              TEXT,
  caller_id        TEXT,
  destination      TEXT NOT NULL,
  prefix           TEXT,
  rate_per_min_micros BIGINT,
  billsec          INTEGER NOT NULL CHECK (billsec >= 0),
  billmsec         INTEGER,
  billed_seconds   INTEGER NOT NULL CHECK (billed_seconds >= 0),
  cost_micros      BIGINT NOT NULL CHECK (cost_micros >= 0),
  uncollected_micros BIGINT NOT NULL DEFAULT 0 CHECK (uncollected_micros >= 0),
  hangup_cause     TEXT,
  answered_at      TIMESTAMPTZ,
  ended_at         TIMESTAMPTZ,
  source           TEXT NOT NULL CHECK (source IN ('socket', 'json_cdr', 'import')),
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cdrs_card ON cdrs (card_id, created_at);

-- Every balance change. The card's balance always equals the sum of its ledger amounts.
CREATE TABLE ledger (
  id                   BIGSERIAL PRIMARY KEY,
  card_id              BIGINT NOT NULL REFERENCES cards(id),
  amount_micros        BIGINT NOT NULL,
  balance_after_micros BIGINT NOT NULL,
  reason               TEXT NOT NULL CHECK (reason IN ('initial', 'activation_fee', 'call', 'maintenance_fee', 'topup', 'adjustment')),
  ref                  TEXT NOT NULL,         -- makes the change idempotent: call id, period number, idempotency key
  note                 TEXT NOT NULL DEFAULT '',
  created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (card_id, reason, ref)
);
CREATE INDEX ledger_card ON ledger (card_id, id);

CREATE TABLE api_keys (
  id          BIGSERIAL PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  key_hash    BYTEA NOT NULL UNIQUE,   -- SHA-256 of the key; the key itself is shown once
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  revoked_at  TIMESTAMPTZ
);

CREATE TABLE idempotency_keys (
  key           TEXT PRIMARY KEY,
  request_hash  TEXT NOT NULL,
  status_code   INTEGER NOT NULL,
  response      JSONB NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rate changes wake every ccard process so its in-memory prefix index reloads.
CREATE FUNCTION notify_rates_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ccard_rates_changed', '');
  RETURN NULL;
END $$;
CREATE TRIGGER rates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rates
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
CREATE TRIGGER rate_tables_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rate_tables
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
