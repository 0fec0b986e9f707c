-- The event store: one append-only table of events, read in commit-safe order.

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's id. Readers order by (transaction_id, position) and read
    -- only below the oldest running transaction (pg_snapshot_xmin), so an event that
    -- commits late can never be skipped: see ingest/store.py, read().
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream          text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version >= 1),
    type            text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    metadata        jsonb NOT NULL DEFAULT '{}',
    body            bytea,                       -- a delivery's raw body, verbatim
    idempotency_key text,
    occurred_at     timestamptz,                 -- the source's own time, when it has one
    received_at     timestamptz NOT NULL,        -- when the request reached us (or the recorded time of an import)
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_stream_version UNIQUE (stream, stream_version),
    CONSTRAINT events_idempotency_key UNIQUE (idempotency_key)
);

CREATE INDEX events_read_order ON events (transaction_id, position);
CREATE INDEX events_type_received ON events (type, received_at);

-- Append-only, second line of defence (the first is the service role's privileges):
-- ENABLE ALWAYS so the triggers fire even under session_replication_role = replica.
CREATE FUNCTION events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete;
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_truncate;

-- The role the service runs as: it may read and append events, nothing else on them.
-- Roles are cluster-wide, so several databases (tests) may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hindsight_service') THEN
        BEGIN
            CREATE ROLE hindsight_service NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    BEGIN
        EXECUTE format('GRANT hindsight_service TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
        RAISE NOTICE 'cannot grant hindsight_service to %; the service keeps its own role', current_user;
    END;
END
$$;

GRANT USAGE ON SCHEMA public TO hindsight_service;
REVOKE ALL ON events FROM hindsight_service;
GRANT SELECT, INSERT ON events TO hindsight_service;

-- /readyz, running as the service role, checks that every migration is applied.
GRANT SELECT ON schema_migrations TO hindsight_service;
