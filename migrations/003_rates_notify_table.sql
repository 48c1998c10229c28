-- Rate changes name the rate table that changed (the NOTIFY payload is its id), so each ccard process reloads only
-- that table instead of every rate of every table. An empty payload (TRUNCATE) still means "reload everything".
-- Statement-level triggers with transition tables: one notification per table per statement, however many rows.
-- pg_notify drops identical payloads within a transaction, so an import notifies each table once.
DROP TRIGGER rates_changed ON rates;
DROP TRIGGER rate_tables_changed ON rate_tables;

CREATE FUNCTION notify_rates_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t BIGINT;
BEGIN
  FOR t IN SELECT DISTINCT rate_table_id FROM new_rows LOOP
    PERFORM pg_notify('ccard_rates_changed', t::text);
  END LOOP;
  RETURN NULL;
END $$;

CREATE FUNCTION notify_rates_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t BIGINT;
BEGIN
  FOR t IN SELECT DISTINCT rate_table_id FROM old_rows LOOP
    PERFORM pg_notify('ccard_rates_changed', t::text);
  END LOOP;
  RETURN NULL;
END $$;

CREATE FUNCTION notify_rates_updated_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t BIGINT;
BEGIN
  FOR t IN SELECT rate_table_id FROM old_rows UNION SELECT rate_table_id FROM new_rows LOOP
    PERFORM pg_notify('ccard_rates_changed', t::text);
  END LOOP;
  RETURN NULL;
END $$;

CREATE FUNCTION notify_rate_table_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('ccard_rates_changed', OLD.id::text);
  ELSE
    PERFORM pg_notify('ccard_rates_changed', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER rates_inserted AFTER INSERT ON rates REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_new_rows();
CREATE TRIGGER rates_updated AFTER UPDATE ON rates REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_updated_rows();
CREATE TRIGGER rates_deleted AFTER DELETE ON rates REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_old_rows();
CREATE TRIGGER rates_truncated AFTER TRUNCATE ON rates
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
CREATE TRIGGER rate_tables_changed AFTER INSERT OR UPDATE OR DELETE ON rate_tables
  FOR EACH ROW EXECUTE FUNCTION notify_rate_table_row();
CREATE TRIGGER rate_tables_truncated AFTER TRUNCATE ON rate_tables
  FOR EACH STATEMENT EXECUTE FUNCTION notify_rates_changed();
