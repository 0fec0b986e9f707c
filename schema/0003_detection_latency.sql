-- Detection latency (TIMELINE.md, "The four moments"): how long a problem ran before
-- monitoring told anyone. Read-only views over the `incidents` read model, shared by the
-- API (GET /v1/detection-latency), `hindsight latency`, /dashboard and the Grafana
-- dashboard (deploy/grafana/detection-latency.json).
--
-- What counts: incidents that were detected (detected_at and the latency are known) and
-- were not merged into another incident (the surviving incident carries their history).
-- "Over 5 min" and "over 30 min" are strict: exactly 300 s is not over 5 minutes.

CREATE VIEW detection_latency AS
SELECT
    i.id,
    i.title,
    i.service,
    i.severity,
    i.status,
    i.started_at,
    i.detected_at,
    i.detection_latency_seconds                                        AS latency_seconds,
    i.detected_by,
    i.detection_verdict                                                AS verdict,
    -- The monitor that detected first; a declaration by hand is "human".
    CASE WHEN i.detected_by = 'human' THEN 'human'
         ELSE coalesce(i.first_detector_source, 'unknown') END         AS source,
    -- ISO week (Monday) and month of the impact start, in UTC whatever the session zone.
    (date_trunc('week', i.started_at AT TIME ZONE 'UTC'))::date        AS week,
    to_char(i.started_at AT TIME ZONE 'UTC', 'YYYY-MM')                AS month,
    (i.severity = 'P1' AND i.detection_latency_seconds > 300)          AS p1_over_5m,
    (i.detection_latency_seconds > 1800 OR i.detected_by = 'human')    AS over_30m
FROM incidents i
WHERE i.merged_into IS NULL
  AND i.detected_at IS NOT NULL
  AND i.detection_latency_seconds IS NOT NULL;

-- One row per (incident, kind of check that failed in it): an incident whose uptime
-- check and alert both failed counts once under each kind. Deploys and manual entries
-- are not kinds of detection.
CREATE VIEW detection_latency_kinds AS
SELECT d.*, k.kind
FROM detection_latency d
JOIN incidents i ON i.id = d.id
CROSS JOIN LATERAL (
    SELECT DISTINCT kind FROM jsonb_array_elements_text(i.doc -> 'kinds') AS kind
    WHERE kind NOT IN ('deploy', 'manual')
    UNION ALL
    -- An incident with no monitor kind at all (declared by hand) is its own kind.
    SELECT 'manual' WHERE NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(i.doc -> 'kinds') AS k2
        WHERE k2 NOT IN ('deploy', 'manual'))
) AS k;

-- The aggregates, over all time. The API and the Grafana dashboard compute the same
-- columns over a time range from the views above.
CREATE VIEW detection_latency_by_week AS
SELECT to_char(week, 'YYYY-MM-DD') AS "group", count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m
FROM detection_latency GROUP BY week;

CREATE VIEW detection_latency_by_month AS
SELECT month AS "group", count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m
FROM detection_latency GROUP BY month;

CREATE VIEW detection_latency_by_service AS
SELECT service AS "group", count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m
FROM detection_latency GROUP BY service;

CREATE VIEW detection_latency_by_source AS
SELECT source AS "group", count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m
FROM detection_latency GROUP BY source;

CREATE VIEW detection_latency_by_severity AS
SELECT severity AS "group", count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m
FROM detection_latency GROUP BY severity;

CREATE VIEW detection_latency_by_kind AS
SELECT kind AS "group", count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m
FROM detection_latency_kinds GROUP BY kind;

-- Covering index for the time-range aggregates: the counted rows only, with every column
-- the views read, so a period's figures come from an index-only scan however large
-- `doc` grows. The per-service breakdown over a range uses it too (service is included).
CREATE INDEX incidents_detection_latency ON incidents (started_at)
    INCLUDE (detection_latency_seconds, severity, detected_by, service, first_detector_source)
    WHERE merged_into IS NULL AND detected_at IS NOT NULL
      AND detection_latency_seconds IS NOT NULL;

-- The all-time weekly and per-service figures read the counted rows in group order from
-- these, so no sort of the whole history is needed (the expression is the view's `week`;
-- started_at is included because an index-only scan recomputes the expression from it).
CREATE INDEX incidents_detection_latency_week
    ON incidents (((date_trunc('week', started_at AT TIME ZONE 'UTC'))::date))
    INCLUDE (started_at, detection_latency_seconds, severity, detected_by)
    WHERE merged_into IS NULL AND detected_at IS NOT NULL
      AND detection_latency_seconds IS NOT NULL;
CREATE INDEX incidents_detection_latency_service ON incidents (service)
    INCLUDE (detection_latency_seconds, severity, detected_by)
    WHERE merged_into IS NULL AND detected_at IS NOT NULL
      AND detection_latency_seconds IS NOT NULL;

-- The worst incidents of a period (the dashboard's list): largest latency first.
CREATE INDEX incidents_detection_latency_worst ON incidents (detection_latency_seconds DESC)
    WHERE merged_into IS NULL AND detected_at IS NOT NULL
      AND detection_latency_seconds IS NOT NULL;

GRANT SELECT ON detection_latency, detection_latency_kinds, detection_latency_by_week,
    detection_latency_by_month, detection_latency_by_service, detection_latency_by_source,
    detection_latency_by_severity, detection_latency_by_kind
TO hindsight_service;
