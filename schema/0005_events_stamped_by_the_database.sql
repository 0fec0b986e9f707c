-- What the database decides about an event, only the database writes (docs/security.md).
--
-- Readers order the log by (transaction_id, position) and read only below the oldest
-- running transaction (ingest/store.py): a row written with a forged low transaction_id
-- would sort behind the projector's checkpoint and never be read, and a forged
-- recorded_at would lie about when the log received it. So:
--
-- 1. A BEFORE INSERT trigger stamps transaction_id with the writing transaction's id
--    (pg_current_xact_id()) and recorded_at with clock_timestamp(), whatever the INSERT
--    or COPY sent. ENABLE ALWAYS, as the append-only triggers of 0001: it fires under
--    session_replication_role = replica too. (pg_restore creates triggers after loading
--    the data, so a restore keeps the dumped values: docs/operations.md.)
-- 2. position is GENERATED ALWAYS AS IDENTITY (0001): an explicit value is refused
--    unless the INSERT says OVERRIDING SYSTEM VALUE, which needs INSERT on the column.
-- 3. The service role may insert only the columns ingest writes (ingest/store.py's
--    _INSERT and _INSERT_INDEPENDENT, dedup_span from 0004): an INSERT naming
--    transaction_id, recorded_at or position is refused outright.

CREATE FUNCTION events_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.transaction_id := pg_current_xact_id();
    NEW.recorded_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER events_stamp BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_stamp();
ALTER TABLE events ENABLE ALWAYS TRIGGER events_stamp;

REVOKE INSERT ON events FROM hindsight_service;
GRANT INSERT (stream, stream_version, type, data, metadata, body, idempotency_key,
              occurred_at, received_at, dedup_span)
    ON events TO hindsight_service;
