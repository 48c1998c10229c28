-- A call whose hold ran out while no CDR had arrived is 'unbilled' (it may have been talked: ccard was down, or its
-- CDR was lost) instead of silently expired; its CDR arriving later still bills it. CDRs picked up from a spool
-- directory (mod_json_cdr's err-log-dir / log-dir files) are recorded with source 'spool'.
ALTER TABLE calls DROP CONSTRAINT calls_status_check;
ALTER TABLE calls ADD CONSTRAINT calls_status_check
  CHECK (status IN ('reserved', 'settled', 'released', 'expired', 'unbilled'));
UPDATE calls SET status = 'unbilled' WHERE status = 'expired';
CREATE INDEX calls_unbilled ON calls (created_at) WHERE status = 'unbilled';

ALTER TABLE cdrs DROP CONSTRAINT cdrs_source_check;
ALTER TABLE cdrs ADD CONSTRAINT cdrs_source_check CHECK (source IN ('socket', 'json_cdr', 'import', 'spool'));
