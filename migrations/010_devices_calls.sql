-- A device's calls in progress, for its `lines` limit (simultaneous calls from one device). One row per socket call,
-- removed when the call flow ends; a row older than the longest possible call is stale (a crash) and ignored.
CREATE TABLE device_calls (
  ivr_uuid    TEXT PRIMARY KEY,
  device_id   BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  started_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX device_calls_device ON device_calls (device_id, started_at);
