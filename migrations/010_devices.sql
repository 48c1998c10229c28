-- FreeSWITCH asks ccard over mod_xml_curl (issue 11): access numbers served to the dialplan binding, cards as SIP
-- accounts (devices) for the directory binding, provisioning codes with the operator's branding, recharge vouchers.

-- The dialplan binding answers from an in-memory set of enabled access numbers; this tells every ccard to reload it.
CREATE FUNCTION notify_access_numbers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ccard_access_numbers_changed', '');
  RETURN NULL;
END $$;
CREATE TRIGGER access_numbers_changed AFTER INSERT OR UPDATE OR DELETE ON access_numbers
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_numbers_changed();
CREATE TRIGGER access_numbers_truncated AFTER TRUNCATE ON access_numbers
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_numbers_changed();

-- An access number may offer voucher recharge after the balance announcement (a menu key).
ALTER TABLE access_numbers ADD COLUMN voucher_recharge BOOLEAN NOT NULL DEFAULT false;

-- A SIP account of a card. Only the digest's A1 hash is kept: md5(username:realm:password), which is what
-- mod_sofia needs to check a digest (directory param "a1-hash"); the password itself is shown once.
CREATE TABLE devices (
  id               BIGSERIAL PRIMARY KEY,
  card_id          BIGINT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
  username         TEXT NOT NULL UNIQUE CHECK (username ~ '^[0-9]{6,20}$'),
  name             TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9 _.-]{1,64}$'),
  realm            TEXT NOT NULL CHECK (realm ~ '^[A-Za-z0-9.:-]{1,253}$'),
  a1_hash          TEXT NOT NULL CHECK (a1_hash ~ '^[0-9a-f]{32}$'),
  lines            INTEGER NOT NULL DEFAULT 1 CHECK (lines BETWEEN 1 AND 100),
  enabled          BOOLEAN NOT NULL DEFAULT true,
  password_set_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (card_id, name)
);
CREATE INDEX devices_card ON devices (card_id);

-- A provisioning code: typed into a dialler once, answers branding + fresh SIP credentials. Stored hashed.
CREATE TABLE provisioning_codes (
  id          BIGSERIAL PRIMARY KEY,
  code_hash   BYTEA NOT NULL UNIQUE,
  device_id   BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
  expires_at  TIMESTAMPTZ NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The operator's branding, one row.
CREATE TABLE brand (
  id              BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
  name            TEXT NOT NULL DEFAULT '',
  logo_url        TEXT NOT NULL DEFAULT '',
  primary_color   TEXT NOT NULL DEFAULT '',
  secondary_color TEXT NOT NULL DEFAULT '',
  support_number  TEXT NOT NULL DEFAULT '',
  topup_url       TEXT NOT NULL DEFAULT '',
  sip_domain      TEXT NOT NULL DEFAULT '',
  sip_proxy       TEXT NOT NULL DEFAULT '',
  sip_transport   TEXT NOT NULL DEFAULT 'udp' CHECK (sip_transport IN ('udp', 'tcp', 'tls')),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Recharge vouchers: the number is hashed at rest (HMAC, like PINs) and encrypted for an explicit export.
CREATE TABLE vouchers (
  id              BIGSERIAL PRIMARY KEY,
  batch           TEXT NOT NULL,
  number_hash     BYTEA NOT NULL UNIQUE,
  number_cipher   BYTEA NOT NULL,
  value_micros    BIGINT NOT NULL CHECK (value_micros > 0),
  currency        CHAR(3) NOT NULL,
  expires_at      TIMESTAMPTZ,
  used_at         TIMESTAMPTZ,
  used_by_card_id BIGINT REFERENCES cards(id),
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX vouchers_batch ON vouchers (batch, id);

-- Security-relevant device events (redemptions, password resets). A general audit log may replace it.
CREATE TABLE device_audit (
  id         BIGSERIAL PRIMARY KEY,
  at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  action     TEXT NOT NULL,
  device_id  BIGINT,
  card_id    BIGINT,
  actor      TEXT NOT NULL DEFAULT '',
  ip         TEXT NOT NULL DEFAULT '',
  detail     JSONB NOT NULL DEFAULT '{}'
);
