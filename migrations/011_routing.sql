-- Carriers, their buy rates and routing plans (least-cost routing with failover). docs/design.md "Routing plans".

-- A carrier is a FreeSWITCH gateway plus what it costs to reach a destination through it: its buy-rate table is an
-- ordinary rate table (imported with `ccard rates import`), so buy and sell rates share the prefix index.
CREATE TABLE carriers (
  id              BIGSERIAL PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  gateway         TEXT NOT NULL CHECK (gateway ~ '^[A-Za-z0-9_.-]{1,64}$'),
  rate_table_id   BIGINT NOT NULL REFERENCES rate_tables(id),
  max_calls       INTEGER CHECK (max_calls IS NULL OR max_calls >= 1),
  -- The number sent to the carrier: strip this many leading digits, then put prefix_add in front.
  prefix_strip    SMALLINT NOT NULL DEFAULT 0 CHECK (prefix_strip BETWEEN 0 AND 10),
  prefix_add      TEXT NOT NULL DEFAULT '' CHECK (prefix_add ~ '^[0-9]{0,10}$'),
  enabled         BOOLEAN NOT NULL DEFAULT true,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE routing_plans (
  id           BIGSERIAL PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  -- What a caller hears when the cheapest carrier would cost more than the card pays (a prompt name).
  loss_prompt  TEXT NOT NULL DEFAULT 'destination_unprofitable' CHECK (loss_prompt ~ '^[a-z0-9_]{1,64}$'),
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One entry per destination prefix ('' matches every number). mode: 'ordered' (the carriers in position order),
-- 'lcr' (the carriers, or every carrier when none is listed, cheapest buy rate first), 'block' (refused).
CREATE TABLE routing_entries (
  id        BIGSERIAL PRIMARY KEY,
  plan_id   BIGINT NOT NULL REFERENCES routing_plans(id) ON DELETE CASCADE,
  prefix    TEXT NOT NULL CHECK (prefix ~ '^[0-9]{0,20}$'),
  mode      TEXT NOT NULL CHECK (mode IN ('ordered', 'lcr', 'block')),
  UNIQUE (plan_id, prefix)
);

-- Carriers sharing a position share its traffic by weight (a weighted shuffle per call).
CREATE TABLE routing_entry_carriers (
  entry_id    BIGINT NOT NULL REFERENCES routing_entries(id) ON DELETE CASCADE,
  carrier_id  BIGINT NOT NULL REFERENCES carriers(id),
  position    SMALLINT NOT NULL CHECK (position >= 0),
  weight      INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
  PRIMARY KEY (entry_id, carrier_id)
);
CREATE INDEX routing_entry_carriers_carrier ON routing_entry_carriers (carrier_id);

ALTER TABLE series ADD COLUMN routing_plan_id BIGINT REFERENCES routing_plans(id);
ALTER TABLE cards ADD COLUMN routing_plan_id BIGINT REFERENCES routing_plans(id);  -- NULL: the series' plan

-- The carrier a call was sent to and its buy rate, written with the reservation (one row per routed attempt).
CREATE TABLE call_routes (
  call_id      UUID PRIMARY KEY REFERENCES calls(call_id) ON DELETE CASCADE,
  carrier_id   BIGINT NOT NULL REFERENCES carriers(id),
  buy_rate     JSONB NOT NULL   -- {"ratePerMin","connectFee","initialIncrement","subsequentIncrement","prefix"}, micros as strings
);

ALTER TABLE cdrs ADD COLUMN carrier_id BIGINT REFERENCES carriers(id);
ALTER TABLE cdrs ADD COLUMN buy_cost_micros BIGINT CHECK (buy_cost_micros IS NULL OR buy_cost_micros >= 0);

-- What the carrier charges for a call of `billsec` seconds: connect fee + billable seconds at the per-minute rate,
-- billable seconds by the carrier's increments, rounded up to the micro. Exact integer arithmetic.
CREATE FUNCTION ccard_buy_cost(billsec INTEGER, rate JSONB) RETURNS BIGINT LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  per_min BIGINT := (rate->>'ratePerMin')::BIGINT;
  fee     BIGINT := (rate->>'connectFee')::BIGINT;
  ini     INTEGER := (rate->>'initialIncrement')::INTEGER;
  sub     INTEGER := (rate->>'subsequentIncrement')::INTEGER;
  billable BIGINT;
BEGIN
  IF billsec IS NULL OR billsec <= 0 THEN RETURN 0; END IF;
  IF billsec <= ini THEN billable := ini;
  ELSE billable := ini + ((billsec - ini + sub - 1) / sub) * sub;
  END IF;
  RETURN fee + (per_min * billable + 59) / 60;
END $$;

-- The debit inserts the CDR; the carrier and its cost ride along from the call's route, whichever path debits it
-- (socket, mod_json_cdr, import). billed_seconds is what the card paid for; the carrier bills the same leg.
CREATE FUNCTION ccard_cdr_route() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r call_routes%ROWTYPE;
BEGIN
  IF NEW.carrier_id IS NULL THEN
    SELECT * INTO r FROM call_routes WHERE call_id = NEW.call_id;
    IF FOUND THEN
      NEW.carrier_id := r.carrier_id;
      NEW.buy_cost_micros := ccard_buy_cost(NEW.billsec, r.buy_rate);
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER cdrs_route BEFORE INSERT ON cdrs FOR EACH ROW EXECUTE FUNCTION ccard_cdr_route();

-- Carriers and plans live in the same in-memory index as the rates: a change reloads it.
CREATE TRIGGER carriers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON carriers
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
CREATE TRIGGER routing_plans_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON routing_plans
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
CREATE TRIGGER routing_entries_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON routing_entries
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
CREATE TRIGGER routing_entry_carriers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON routing_entry_carriers
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
