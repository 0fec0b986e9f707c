-- Read models: a pure function of the event log. `hindsight rebuild` truncates them all
-- and replays; nothing here is a fact of its own.

CREATE TABLE projector_checkpoint (
    name            text PRIMARY KEY,
    transaction_id  bigint NOT NULL DEFAULT 0,
    position        bigint NOT NULL DEFAULT 0,
    events          bigint NOT NULL DEFAULT 0,     -- events projected so far
    -- Where projector_state was last saved (at most `position`): a restarted projector
    -- loads that state and re-folds, without writing, the events since.
    snapshot_transaction_id  bigint NOT NULL DEFAULT 0,
    snapshot_position        bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The engine's folded state per service as of the snapshot cursor above, so a restarted
-- projector resumes near its checkpoint instead of replaying the whole log.
CREATE TABLE projector_state (
    service  text PRIMARY KEY,
    state    jsonb NOT NULL
);

CREATE TABLE incidents (
    id                         text PRIMARY KEY,
    service                    text NOT NULL,
    title                      text NOT NULL,
    severity                   text NOT NULL,
    status                     text NOT NULL,
    started_at                 timestamptz NOT NULL,
    detected_at                timestamptz,
    acknowledged_at            timestamptz,
    resolved_at                timestamptz,
    detection_latency_seconds  double precision,
    duration_seconds           double precision,
    detected_by                text NOT NULL,
    detection_verdict          text NOT NULL,
    first_detector_source      text,
    public                     boolean NOT NULL DEFAULT false,
    merged_into                text,
    version                    integer NOT NULL DEFAULT 0,
    summary                    json NOT NULL,   -- without its timeline, in the API's key order (json keeps the text)
    doc                        jsonb NOT NULL   -- the full incident with its timeline, for queries and drafts
);
CREATE INDEX incidents_started ON incidents (started_at DESC) WHERE merged_into IS NULL;
CREATE INDEX incidents_service ON incidents (service, started_at DESC);
CREATE INDEX incidents_open ON incidents (status) WHERE status = 'open';

CREATE TABLE timeline_entries (
    incident_id  text NOT NULL,
    seq          integer NOT NULL,
    at           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    position     bigint NOT NULL,
    marker       text,
    source       text NOT NULL,
    kind         text NOT NULL,
    subject      text NOT NULL,
    state        text NOT NULL,
    text         text NOT NULL,
    repeats      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE subject_states (
    service      text NOT NULL,
    source       text NOT NULL,
    subject      text NOT NULL,
    kind         text NOT NULL,
    state        text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    position     bigint NOT NULL,
    summary      text NOT NULL DEFAULT '',
    PRIMARY KEY (service, source, subject)
);

CREATE TABLE service_risks (
    service   text NOT NULL,
    subject   text NOT NULL,
    kind      text NOT NULL,
    reason    text NOT NULL,
    since     timestamptz NOT NULL,
    position  bigint NOT NULL
);
CREATE INDEX service_risks_service ON service_risks (service);

-- Which incident each signal joined (or recovered): (delivery position, signal index).
CREATE TABLE signal_incidents (
    position     bigint NOT NULL,
    idx          integer NOT NULL,
    incident_id  text,
    PRIMARY KEY (position, idx)
);
CREATE INDEX signal_incidents_incident ON signal_incidents (incident_id);

-- What each delivery was understood as, for the delivery log and "as of" replays.
CREATE TABLE delivery_log (
    position        bigint PRIMARY KEY,
    transaction_id  bigint NOT NULL,
    source          text NOT NULL,
    received_at     timestamptz NOT NULL,
    outcome         text NOT NULL,               -- understood | invalid | unmapped | unsupported
    error           text,
    signal_count    integer NOT NULL,
    services        text[] NOT NULL,
    signals         jsonb NOT NULL
);
CREATE INDEX delivery_log_source ON delivery_log (source, position DESC);
CREATE INDEX delivery_log_outcome ON delivery_log (outcome, position DESC);
CREATE INDEX delivery_log_services ON delivery_log USING gin (services);

CREATE TABLE action_items (
    id           text PRIMARY KEY,
    incident_id  text NOT NULL,
    status       text NOT NULL,
    owner        text,
    due_date     date,
    created_at   timestamptz NOT NULL,
    doc          jsonb NOT NULL
);
CREATE INDEX action_items_incident ON action_items (incident_id);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON
    projector_checkpoint, projector_state, incidents, timeline_entries, subject_states,
    service_risks, signal_incidents, delivery_log, action_items
TO hindsight_service;
