-- Idempotent appends with a retry window (ARCHITECTURE.md, "Idempotent appends").
--
-- A delivery whose tool sends a delivery id is deduplicated by its idempotency key, for
-- ever (the unique key of 0001). A delivery identified only by its source and bytes is a
-- retry only within `dedup_window_seconds` of a stored report of the same bytes: the same
-- bytes later are a new report (Alertmanager's repeat_interval, Cronitor's identical body
-- on another day). Such a delivery carries `dedup_span`: on one number line, its bytes'
-- slot (from a hash of source and body) plus its receipt in microseconds, widened by half
-- the window either side. Two spans overlap exactly when the bytes are the same and the
-- receipts are less than a window apart, so the exclusion constraint lets at most one
-- report stand per window, however many ingest processes race (it waits for a concurrent
-- writer like a unique key does; `INSERT ... ON CONFLICT DO NOTHING` skips the loser).
-- A plain range, not (key, tstzrange): `btree_gist` is not always installed.
ALTER TABLE events ADD COLUMN dedup_span numrange;
ALTER TABLE events ADD CONSTRAINT events_dedup_window
    EXCLUDE USING gist (dedup_span WITH &&) WHERE (dedup_span IS NOT NULL);

-- The delivery log lists each copy's receipt as a duplicate of the report it repeats.
ALTER TABLE delivery_log ADD COLUMN duplicate_of bigint;
