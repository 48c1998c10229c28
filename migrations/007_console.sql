-- The web console: operator accounts, their sessions, the audit log, background jobs, and the indexes the card grid
-- pages with (server-side paging, sorting and filtering over millions of cards).

-- password_hash: "scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>" (parameters kept per hash, so they can be raised later).
-- failures / window_started_at / locked_until: login lockout per operator, as the cardholders' PIN lockout.
CREATE TABLE operators (
  id                  BIGSERIAL PRIMARY KEY,
  login               TEXT NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9_.@-]{1,64}$'),
  role                TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  password_hash       TEXT NOT NULL,
  preferences         JSONB NOT NULL DEFAULT '{}',
  failures            INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
  window_started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  locked_until        TIMESTAMPTZ,
  created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  password_changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A session is known by the SHA-256 of its cookie value (a stolen table does not give usable cookies).
-- expires_at is the absolute end; last_seen_at + the idle timeout is the other one.
CREATE TABLE operator_sessions (
  token_hash    BYTEA PRIMARY KEY,
  operator_id   BIGINT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
  csrf_token    TEXT NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at    TIMESTAMPTZ NOT NULL,
  ip            TEXT,
  user_agent    TEXT
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- Every change made through the API or the console. actor: "operator:<login>" or "apikey:<name>".
CREATE TABLE audit_log (
  id        BIGSERIAL PRIMARY KEY,
  at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,     -- e.g. "PATCH /v1/cards/:serial"
  object    TEXT,              -- e.g. "card:300-000000001"
  status    INTEGER NOT NULL,  -- the HTTP status answered
  request   JSONB,             -- the request body (secrets removed)
  before    JSONB,
  after     JSONB
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_object ON audit_log (object, at);

-- Long operations (a series of a million cards) run in the background; progress is kept here so any worker
-- process can answer GET /v1/jobs/:id.
CREATE TABLE jobs (
  id          UUID PRIMARY KEY,
  kind        TEXT NOT NULL,
  actor       TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
  phase       TEXT NOT NULL DEFAULT '',
  done        BIGINT NOT NULL DEFAULT 0,
  total       BIGINT NOT NULL DEFAULT 0,
  input       JSONB,
  result      JSONB,
  error       TEXT,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The card grid. Serials sort and prefix-match in byte order (COLLATE "C": digits and '-', the same order under any
-- database collation), and a series is a serial range ("300-" .. "300."), so one index serves sort by serial, a
-- series filter and a serial prefix. Balance and last use sort with their own index (id breaks ties; the most
-- recent use first, never-used cards last).
CREATE INDEX cards_serial_c ON cards (serial COLLATE "C");
CREATE INDEX cards_balance_id ON cards (balance_micros, id);
CREATE INDEX cards_last_used_id ON cards (last_used_at DESC NULLS LAST, id DESC);

-- Reports over a date range and the live view of calls in progress.
CREATE INDEX calls_created ON calls (created_at);
CREATE INDEX cdrs_created ON cdrs (created_at);
