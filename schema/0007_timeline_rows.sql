-- An incident's timeline as rows, written as deltas (issue 11, item 4): the live
-- projector writes only the entries a batch changed, not the whole timeline again.
--
-- Why: in an alert storm one incident holds thousands of entries, and the projector
-- wakes for every small batch. With the timeline inside `incidents.doc` and re-copied
-- into `timeline_entries` (keyed by its index), every batch re-encoded and rewrote all
-- of it: megabytes of jsonb and thousands of rows per batch for one new entry.
--
-- Now:
-- - `incidents.doc` holds the incident without its timeline (the same fields as
--   `summary`, as jsonb for queries);
-- - `timeline_entries` holds one row per entry, keyed by the entry's time, its event's
--   position and its rank among the incident's entries at that (time, position); the key
--   orders the timeline, so inserting an earlier entry moves no other row. `doc` is the
--   entry as the API shows it (json: its text is kept, nothing to parse on write);
-- - `incident_documents` gives an incident with its timeline back, in order, with the
--   row's version (its xmin and the document's hash: what a reader's cache compares).
--
-- The read models are a function of the log: this migration empties them and moves the
-- checkpoint to the start, so the projector replays the log into the new shape.

DROP TABLE timeline_entries;
CREATE TABLE timeline_entries (
    incident_id  text NOT NULL,
    at           timestamptz NOT NULL,
    position     bigint NOT NULL,
    rank         integer NOT NULL,        -- among the incident's entries at (at, position)
    received_at  timestamptz NOT NULL,
    marker       text,
    source       text NOT NULL,
    kind         text NOT NULL,
    subject      text NOT NULL,
    state        text NOT NULL,
    text         text NOT NULL,
    repeats      integer NOT NULL DEFAULT 0,
    doc          json NOT NULL,
    PRIMARY KEY (incident_id, at, position, rank)
);

CREATE VIEW incident_documents AS
SELECT i.id, i.xmin::text AS row_xmin, jsonb_hash_extended(i.doc, 0) AS doc_hash, i.doc,
       (SELECT coalesce(json_agg(t.doc ORDER BY t.at, t.position, t.rank), '[]'::json)
        FROM timeline_entries t WHERE t.incident_id = i.id) AS timeline
FROM incidents i;

TRUNCATE projector_state, incidents, subject_states, service_risks, signal_incidents,
    delivery_log, action_items;
UPDATE projector_checkpoint SET transaction_id = 0, position = 0, events = 0,
    snapshot_transaction_id = 0, snapshot_position = 0, updated_at = now();

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON timeline_entries TO hindsight_service;
GRANT SELECT ON incident_documents TO hindsight_service;
