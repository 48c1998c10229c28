-- Resellers: a series belongs to the operator (reseller_id NULL) or to one reseller, who sells its cards, sees only
-- their own through the API, and pays for the value of their cards out of a wholesale balance. docs/design.md.
CREATE TABLE resellers (
  id                   BIGSERIAL PRIMARY KEY,
  name                 TEXT NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  currency             CHAR(3) NOT NULL DEFAULT 'USD',
  balance_micros       BIGINT NOT NULL DEFAULT 0,
  credit_limit_micros  BIGINT NOT NULL DEFAULT 0 CHECK (credit_limit_micros >= 0),
  -- The reseller pays face value minus this discount for the value of its cards (parts per million: 20% = 200000).
  discount_ppm         INTEGER NOT NULL DEFAULT 0 CHECK (discount_ppm BETWEEN 0 AND 1000000),
  created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT reseller_floor CHECK (balance_micros >= -credit_limit_micros)
);

-- Every change of a reseller's wholesale balance. The balance always equals the sum of its ledger amounts.
CREATE TABLE reseller_ledger (
  id                   BIGSERIAL PRIMARY KEY,
  reseller_id          BIGINT NOT NULL REFERENCES resellers(id),
  amount_micros        BIGINT NOT NULL,
  balance_after_micros BIGINT NOT NULL,
  -- generation: a series' cards (count x initial balance); card_topup: a top-up of one of its cards.
  reason               TEXT NOT NULL CHECK (reason IN ('topup', 'generation', 'card_topup', 'adjustment')),
  ref                  TEXT NOT NULL,
  note                 TEXT NOT NULL DEFAULT '',
  created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (reseller_id, reason, ref)
);
CREATE INDEX reseller_ledger_reseller ON reseller_ledger (reseller_id, id);

ALTER TABLE series ADD COLUMN reseller_id BIGINT REFERENCES resellers(id);
CREATE INDEX series_reseller ON series (reseller_id);
-- A reseller's API key: it sees and changes only that reseller's series, cards and CDRs.
ALTER TABLE api_keys ADD COLUMN reseller_id BIGINT REFERENCES resellers(id);
