-- Self-care login failures per card: after N wrong PINs within a window the card's self-care login is locked for a
-- while. Kept in PostgreSQL so the count holds across API processes and restarts.
CREATE TABLE selfcare_lockouts (
  card_id            BIGINT PRIMARY KEY REFERENCES cards(id) ON DELETE CASCADE,
  failures           INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
  window_started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  locked_until       TIMESTAMPTZ
);
