"""The incident engine's rules (TIMELINE.md "Incidents"), exact to the second."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import orjson

from ingest.manual import IncidentMerged, IncidentNote
from ingest.signals import Signal
from projections.engine.fold import Engine, EngineConfig, incident_id_for
from tests.projections.test_engine_support import T0, Log, deploy, marked, sig, t, texts

# --- Rule 1: opening, ids, services -----------------------------------------------------


def test_a_failing_signal_opens_an_incident_for_its_service() -> None:
    log = Log()
    log.deliver(sig(at=t(0), summary="connect ECONNREFUSED"))
    incident = log.only()
    assert incident.service == "checkout"
    assert incident.status == "open"
    assert incident.started_at == t(0)
    assert incident.subjects == ("Checkout API",)
    assert incident.title == "checkout: Checkout API down"
    assert texts(incident) == [
        "Checkout API (uptime-kuma) down: connect ECONNREFUSED",
        "Detected: Checkout API (uptime-kuma) notified",
    ]


def test_the_incident_id_is_derived_from_service_subject_and_time() -> None:
    log = Log()
    log.deliver(sig(at=t(0, 7)))
    digest = hashlib.sha256(b"checkout\x1fCheckout API\x1f2025-03-14T10:00:07Z")
    assert log.only().id == "inc_" + digest.hexdigest()[:16]


def test_the_same_log_gives_the_same_id_in_another_engine() -> None:
    first, second = Log(), Log()
    for log in (first, second):
        log.deliver(sig(at=t(3)))
    assert first.only().id == second.only().id == incident_id_for("checkout", sig(at=t(3)))


def test_an_id_still_held_is_never_reused() -> None:
    """The same failure reported again, after its incident closed, opens a new id."""
    log = Log(reopen_window=timedelta(minutes=1))
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(1)))
    log.deliver(sig(at=t(30)))  # a new failure, beyond the window
    log.deliver(sig(state="ok", at=t(31)))
    ids = [i.id for i in log.incidents()]
    assert len(set(ids)) == 2


def test_later_failing_signals_of_the_same_service_join_the_open_incident() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(2)))
    incident = log.only()
    assert incident.subjects == ("Checkout API", "HighErrorRate")
    assert incident.sources == ("alertmanager", "uptime-kuma")
    assert incident.kinds == ("alert", "uptime")


def test_a_failing_signal_of_another_service_opens_its_own_incident() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.deliver(sig("Search API", service="search", at=t(1)))
    assert [i.service for i in log.incidents()] == ["checkout", "search"]


def test_a_signal_without_a_service_belongs_to_its_subject() -> None:
    log = Log()
    log.deliver(sig("nightly-backup", kind="cron", source="healthchecks", service=None))
    assert log.only().service == "nightly-backup"


def test_the_configured_mapping_wins_over_the_payload_service() -> None:
    engine = Engine(EngineConfig(services={
        "shop": ["checkout api", "acme/checkout-*"],
        "payments": ["acme/*"],
        "zeta": ["Checkout API"],
    }))
    # Case-insensitive; an exact name beats a glob; among globs the sorted name wins.
    assert engine.service_of(sig("CHECKOUT API", service="other")) == "shop"
    assert engine.service_of(sig("acme/checkout-service production")) == "payments"
    assert engine.service_of(sig("acme/ledger")) == "payments"
    assert engine.service_of(sig("unmapped", service=" hinted ")) == "hinted"
    assert engine.service_of(sig("unmapped", service=None)) == "unmapped"


# --- Rule 2: joining and reopening ---------------------------------------------------------


def test_a_failure_within_the_reopen_window_reopens_the_incident() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(5)))
    assert log.only().status == "resolved"
    log.deliver(sig(at=t(20)))  # 15 min after the recovery: still inside the window
    incident = log.only()
    assert incident.status == "open"
    assert incident.resolved_at is None
    log.deliver(sig(state="ok", at=t(22)))
    incident = log.only()
    assert incident.resolved_at == t(22)
    assert incident.duration_seconds == 22 * 60


def test_a_failure_after_the_reopen_window_opens_a_new_incident() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(5)))
    log.deliver(sig(at=t(20, 1)))  # one second past the window
    first, second = log.incidents()
    assert (first.status, first.resolved_at) == ("resolved", t(5))
    assert (second.status, second.started_at) == ("open", t(20, 1))


# --- Rule 3: subject states and resolution -----------------------------------------------


def test_the_incident_resolves_only_when_every_subject_that_failed_is_ok() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(1)))
    log.deliver(sig("HighErrorRate", "ok", source="alertmanager", kind="alert", at=t(9)))
    assert log.only().status == "open"
    log.deliver(sig("Checkout API", "ok", at=t(7)))  # arrives last, happened before
    incident = log.only()
    assert incident.status == "resolved"
    assert incident.resolved_at == t(9)  # the latest recovery, not the last to arrive
    (resolved,) = marked(incident, "resolved")
    assert resolved.subject == "HighErrorRate"


def test_only_ok_recovers_a_warning_or_info_leaves_the_subject_failing() -> None:
    """TIMELINE.md rule 3: only ``ok`` recovers; a warning or info signal for a failing
    subject leaves it failing (its state, a risk, is still the latest signal)."""
    log = Log()
    log.deliver(sig("shop.example.com", source="native", kind="ssl", at=t(0)))
    log.deliver(sig("shop.example.com", "warning", source="native", kind="ssl", at=t(5),
                    summary="certificate expires in 7 days"))
    log.deliver(sig("shop.example.com", "info", source="native", kind="ssl", at=t(6)))
    incident = log.only()
    assert (incident.status, incident.resolved_at) == ("open", None)
    assert [e.state for e in incident.timeline if e.marker != "detected"] == ["failing"]
    log.deliver(sig("shop.example.com", "ok", source="native", kind="ssl", at=t(9)))
    incident = log.only()
    assert (incident.status, incident.resolved_at) == ("resolved", t(9))


def test_a_warning_that_arrived_before_a_late_failure_does_not_end_it() -> None:
    """TIMELINE.md rules 3 and 11: the same, whatever the arrival order."""
    log = Log()
    log.deliver(sig("Checkout API", "warning", at=t(5)))
    log.deliver(sig("Checkout API", at=t(0)), received=t(7))
    assert (log.only().status, log.only().resolved_at) == ("open", None)


def test_a_subjects_state_is_its_latest_signal_by_time_not_by_arrival() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig(at=t(6)))  # still failing at 10:06
    log.deliver(sig(state="ok", at=t(3)))  # an older recovery, arriving late
    incident = log.only()
    assert incident.status == "open"
    states = log.engine.subject_states("checkout")
    assert [(s.subject, s.state, s.occurred_at) for s in states] == [
        ("Checkout API", "failing", t(6))]


def test_equal_times_are_ordered_by_log_position() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(4)))
    log.deliver(sig(at=t(4)))  # same second, later in the log: the failure is the state
    assert log.only().status == "open"


# --- Rule 4: repeats, failing periods, quiet recoveries ----------------------------------


def test_repeats_add_no_entry_and_are_counted_on_the_entry_they_repeat() -> None:
    log = Log()
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(0)))
    for minutes in (240, 480):  # Alertmanager's repeat_interval
        log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(0),
                        notified=t(minutes)))
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(500)))
    incident = log.only()
    failing = [e for e in incident.timeline if e.state == "failing" and e.marker != "detected"]
    assert len(failing) == 1
    assert failing[0].repeats == 3
    assert failing[0].last_repeat_at == t(500)
    assert incident.signal_count == 4


def alert(state: str = "failing", **options: object) -> Signal:
    return sig("HighErrorRate", state, source="alertmanager", kind="alert",
               **options)  # type: ignore[arg-type]


def test_a_resolution_that_carries_the_alerts_start_is_not_a_repeat() -> None:
    """Alertmanager's "resolved" repeats the alert's ``startsAt``: it ends the run, it
    does not report the failure again."""
    log = Log()
    log.deliver(alert(at=t(0)))
    log.deliver(alert("ok", at=t(20), started=t(0)))
    (failing,) = [e for e in log.only().timeline if e.state == "failing" and e.marker != "detected"]
    assert (failing.repeats, failing.last_repeat_at) == (0, None)


def test_a_firing_alert_and_its_resolution_count_no_repeat_in_either_order() -> None:
    for order in ((alert(at=t(0)), alert("ok", at=t(20), started=t(0))),
                  (alert("ok", at=t(20), started=t(0)), alert(at=t(0)))):
        log = Log()
        for signal in order:
            log.deliver(signal, received=t(25))
        failing = [e for e in log.only().timeline
                   if e.state == "failing" and e.marker != "detected"]
        assert [(e.repeats, e.last_repeat_at) for e in failing] == [(0, None)]


def test_the_last_repeat_is_when_it_was_notified_not_when_the_alert_started() -> None:
    """Repeats of an alert carry its original ``startsAt``: the time of the last repeat
    is its notification (the draft's "×2 repeats until 18:00")."""
    log = Log()
    log.deliver(alert(at=t(0), notified=t(0, 30)))
    for minutes in (240, 480):  # repeat_interval: the same startsAt, sent again
        log.deliver(alert(at=t(0), notified=t(minutes)))
    log.deliver(alert("ok", at=t(500), started=t(0)))  # listed once more, resolved
    (failing,) = [e for e in log.only().timeline if e.state == "failing" and e.marker != "detected"]
    assert (failing.repeats, failing.last_repeat_at) == (2, t(480))


def test_repeat_counts_survive_a_dump_and_load() -> None:
    log = Log()
    log.deliver(alert(at=t(0)))
    log.deliver(alert(at=t(0), notified=t(240)))
    restored = Engine(EngineConfig())
    restored.load("checkout", orjson.loads(orjson.dumps(log.engine.dump("checkout"))))
    log.deliver(alert(at=t(0), notified=t(120)))  # a late copy of an earlier repeat
    restored.apply_delivery(log.position, t(120), [alert(at=t(0), notified=t(120))])
    assert restored.incidents() == log.engine.incidents()
    (entry, _) = restored.incidents()[0].timeline
    assert (entry.repeats, entry.last_repeat_at) == (2, t(240))


def test_a_recovery_with_its_own_start_puts_both_ends_on_the_timeline() -> None:
    log = Log()
    period = sig("DiskFull", "ok", source="alertmanager", kind="alert", at=t(12),
                 started=t(2), notified=t(12))
    log.deliver(period, received=t(13, 5))
    incident = log.only()
    assert incident.started_at == t(2)
    assert incident.resolved_at == t(12)
    assert incident.status == "resolved"
    assert incident.detected_at == t(13, 5)  # notified when received
    assert incident.detection_latency_seconds == 11 * 60 + 5
    assert [(e.at, e.marker, e.state) for e in incident.timeline] == [
        (t(2), "started", "failing"),
        (t(12), "resolved", "ok"),
        (t(13, 5), "detected", "failing"),
    ]


def test_a_recovery_with_its_own_start_joins_the_open_incident() -> None:
    log = Log()
    log.deliver(sig(at=t(5)))
    log.deliver(sig("DiskFull", "ok", source="alertmanager", kind="alert", at=t(8),
                    started=t(1)), received=t(9))
    incident = log.only()
    assert incident.started_at == t(1)
    assert incident.subjects == ("Checkout API", "DiskFull")
    assert incident.status == "open"


def test_an_ok_for_a_subject_that_never_failed_opens_nothing_but_is_kept() -> None:
    log = Log()
    log.deliver(sig(state="ok", at=t(0)))
    assert log.engine.incidents() == []
    (state,) = log.engine.subject_states("checkout")
    assert (state.state, state.occurred_at) == ("ok", t(0))


def test_an_ok_from_another_subject_adds_nothing_to_the_open_incident() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.deliver(sig("Search API", "ok", at=t(1)))
    assert log.only().signal_count == 1


# --- Rule 5: out of order -----------------------------------------------------------------


def test_a_late_signal_with_an_earlier_time_moves_started_at() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(5)))
    opened = log.only().id
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(2),
                    notified=t(6)))
    incident = log.only()
    assert incident.id == opened  # the id never moves
    assert incident.started_at == t(2)
    assert [e.at for e in incident.timeline] == sorted(e.at for e in incident.timeline)
    (started,) = marked(incident, "started")
    assert (started.subject, started.at) == ("HighErrorRate", t(2))


def test_a_missed_cron_run_long_before_the_outage_joins_the_open_incident() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(30)))
    log.deliver(sig("payment-reconciliation", source="healthchecks", kind="cron", at=t(0),
                    notified=t(45)))
    incident = log.only()
    assert incident.started_at == t(0)
    assert incident.detection_latency_seconds == 30 * 60


def test_a_late_failure_still_failing_joins_every_later_incident_into_one() -> None:
    """Had it arrived in time, the open failure would have kept the first incident
    open and the 10:60 failure would have joined it: arrival order does not matter, so
    the later incident is merged into the first."""
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.deliver(sig("Checkout API", "ok", at=t(10)))
    log.deliver(sig("Checkout API", at=t(60)))  # a later, separate incident, for now
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(4)))
    first, second = log.incidents()
    assert first.subjects == ("Checkout API", "HighErrorRate")
    assert first.status == "open"  # HighErrorRate has not recovered
    assert second.merged_into == first.id


def test_a_late_failure_inside_a_past_incident_joins_it() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.deliver(sig("Checkout API", "ok", at=t(10)))
    log.deliver(sig("Checkout API", at=t(60)))  # a later, separate incident
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(4)))
    log.deliver(sig("HighErrorRate", "ok", source="alertmanager", kind="alert", at=t(8)))
    # Merged while HighErrorRate seemed to fail for good, split again once it recovered.
    first, second = [i for i in log.incidents() if i.merged_into is None]
    assert (first.subjects, first.resolved_at) == (("Checkout API", "HighErrorRate"), t(10))
    assert (second.subjects, second.started_at) == (("Checkout API",), t(60))


def test_a_failure_that_joined_a_later_incident_leaves_it_when_its_recovery_shows_it_was_over(
) -> None:
    """Down 10:00, the next failure a day later arrives first: the 10:00 failure joins it
    while its end is unknown, and is split off, under its own id, once its recovery
    arrives: the same incidents and ids as in time order."""
    in_time, late = Log(), Log()
    down0, up0 = sig(at=t(0)), sig(state="ok", at=t(3))
    down1 = sig(at=t(0) + timedelta(days=1))
    for log, order in ((in_time, (down0, up0, down1)), (late, (down1, down0, up0))):
        for signal in order:
            log.deliver(signal)
    assert [(i.id, i.started_at, i.resolved_at, i.signal_count) for i in late.incidents()
            if i.merged_into is None] == [
        (i.id, i.started_at, i.resolved_at, i.signal_count) for i in in_time.incidents()]


def test_signal_rows_follow_a_split_and_a_merge() -> None:
    """TIMELINE.md rule 11 (determinism): ``signal_incidents`` rows (``Changes.joins``)
    name each signal's current incident, after a split or a merge moved it, so the live
    projection (a batch per event) and a rebuild (one batch) write the same rows."""
    log = Log()
    rows: dict[tuple[int, int], str | None] = {}

    def deliver(signal: Signal) -> int:
        position = log.deliver(signal)
        rows.update(log.engine.take_changes().joins)
        return position

    down1 = deliver(sig(at=t(0) + timedelta(days=1)))
    down0 = deliver(sig(at=t(0)))  # still failing as far as we know: joins the later one
    up0 = deliver(sig(state="ok", at=t(3)))  # over long before: split off
    first, second = log.incidents()
    assert rows == {(down1, 0): second.id, (down0, 0): first.id, (up0, 0): first.id}
    log.manual(first.id, IncidentMerged(other_id=second.id), t(0) + timedelta(days=1))
    rows.update(log.engine.take_changes().joins)
    assert set(rows.values()) == {first.id}  # the survivor (the older) has them all
    batch = Engine(EngineConfig())
    for event in log.events:
        if event[0] == "delivery":
            batch.apply_delivery(*event[1:])
        else:
            batch.apply_manual(*event[1:4], incident_id=event[4])
    assert batch.take_changes().joins == rows


def test_a_repeat_storm_is_one_entry_and_a_count() -> None:
    log = Log()
    firing = sig("HighErrorRate", source="alertmanager", kind="alert", at=t(0))
    for n in range(2000):
        log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(0),
                        notified=t(5 * n)))
    log.deliver(sig("HighErrorRate", "ok", source="alertmanager", kind="alert", at=t(20000),
                    started=t(0)))
    incident = log.only()
    assert incident.signal_count == 2001
    assert [(e.at, e.repeats, e.state) for e in incident.timeline if e.marker != "detected"] == [
        (t(0), 1999, "failing"), (t(20000), 0, "ok")]  # the resolution is no repeat
    assert incident.timeline[0].received_at == firing.notified_at
    state = log.engine.dump("checkout")
    assert len(orjson.dumps(state)) < 5000  # repeats as counts, not facts


def test_a_late_failure_whose_recovery_arrived_first_is_its_own_resolved_incident() -> None:
    log = Log()
    log.deliver(sig("Search API", "ok", service="checkout", at=t(5)))  # kept
    log.deliver(sig("Checkout API", at=t(60)))
    log.deliver(sig("Search API", at=t(1)), received=t(70))  # over long before 10:60
    past, current = log.incidents()
    assert (past.started_at, past.resolved_at, past.status) == (t(1), t(5), "resolved")
    assert current.started_at == t(60)


# --- Rule 6: warnings and certificates ----------------------------------------------------


def test_a_warning_opens_no_incident_and_is_a_risk_until_the_subject_is_ok() -> None:
    log = Log()
    log.deliver(sig("shop.example.com", "warning", source="native", kind="ssl", at=t(0),
                    summary="certificate expires in 7 days"))
    assert log.engine.incidents() == []
    (risk,) = log.engine.risks("checkout")
    assert (risk.subject, risk.kind, risk.reason, risk.since) == (
        "shop.example.com", "ssl", "certificate expires in 7 days", t(0))
    log.deliver(sig("shop.example.com", "ok", source="native", kind="ssl", at=t(60)))
    assert log.engine.risks("checkout") == ()


def test_an_expired_certificate_is_failing_from_its_not_after() -> None:
    log = Log()
    log.deliver(sig("shop.example.com", source="native", kind="ssl", at=t(0),
                    notified=t(20), attributes=(("expires_at", "2025-03-14T10:00:00Z"),)))
    incident = log.only()
    assert incident.started_at == t(0)
    assert incident.detection_latency_seconds == 20 * 60
    assert incident.timeline[0].text == "shop.example.com (native) certificate expired or invalid"
    assert log.engine.risks("checkout") == ()


# --- Rule 7: deploys ------------------------------------------------------------------------


def test_deploys_open_no_incident_even_when_they_fail() -> None:
    log = Log()
    log.deliver(deploy(t(0), "started"), deploy(t(3), "failed"))
    assert log.engine.incidents() == []


def test_deploys_from_two_hours_before_impact_until_resolution_are_on_the_timeline() -> None:
    log = Log()
    log.deliver(deploy(t(-121), ref="aaaaaaa"))  # before the lookback
    log.deliver(deploy(t(-120), ref="bbbbbbb"))  # exactly two hours before
    log.deliver(deploy(t(-2, -10), ref="4f2c9e1"))
    log.deliver(sig(at=t(0)))
    log.deliver(deploy(t(5), "started", ref="c0ffee1"))
    log.deliver(sig(state="ok", at=t(10)))
    log.deliver(deploy(t(11), ref="ddddddd"))  # after resolution
    incident = log.only()
    deploys = marked(incident, "deploy")
    assert [(e.at, e.text, e.candidate_factor) for e in deploys] == [
        (t(-120), "Deployment of bbbbbbb to production succeeded", True),
        (t(-2, -10), "Deployment of 4f2c9e1 to production succeeded", True),
        (t(5), "Deployment of c0ffee1 to production started", False),
    ]


def test_a_deploy_arriving_after_the_incident_opened_but_dated_before_it_is_shown() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(deploy(t(-3)), received=t(1))
    (entry,) = marked(log.only(), "deploy")
    assert (entry.at, entry.received_at, entry.candidate_factor) == (t(-3), t(1), True)


def test_a_failed_deploy_is_a_risk_until_a_later_deploy_of_the_same_subject_succeeds() -> None:
    log = Log()
    log.deliver(deploy(t(0), "failed"))
    log.deliver(deploy(t(1), "pipeline_failed", subject="acme/ledger production"))
    risks = log.engine.risks("checkout")
    assert [(r.subject, r.reason) for r in risks] == [
        ("acme/checkout-service production", "Deployment of 4f2c9e1 to production failed"),
        ("acme/ledger production", "Pipeline for 4f2c9e1 to production failed"),
    ]
    log.deliver(deploy(t(5), "started"))  # starting is not succeeding
    assert len(log.engine.risks("checkout")) == 2
    log.deliver(deploy(t(8), "succeeded"))
    assert [r.subject for r in log.engine.risks("checkout")] == ["acme/ledger production"]
    log.deliver(deploy(t(7), "failed"), received=t(9))  # an older failure, arriving late
    assert [r.subject for r in log.engine.risks("checkout")] == ["acme/ledger production"]


def test_a_full_commit_sha_is_shortened_in_the_text() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(deploy(t(-1), ref="4f2c9e1" + "0" * 33))
    (entry,) = marked(log.only(), "deploy")
    assert entry.text == "Deployment of 4f2c9e1 to production succeeded"


# --- Rule 9: severity -----------------------------------------------------------------------


def test_severity_is_the_highest_of_the_signals() -> None:
    log = Log()
    log.deliver(sig("A", at=t(0), severity="P3"))
    log.deliver(sig("B", at=t(1), severity="P2"))
    log.deliver(sig("C", at=t(2), severity="P4"))
    assert log.only().severity == "P2"


def test_a_signal_without_severity_takes_its_sources_default_else_p3() -> None:
    log = Log(default_severity={"healthchecks": "P2"})
    log.deliver(sig("backup", kind="cron", source="healthchecks", at=t(0)))
    log.deliver(sig("Search", service="search", at=t(0)))
    (checkout,), (search,) = log.incidents("checkout"), log.incidents("search")
    assert (checkout.severity, search.severity) == ("P2", "P3")


# --- The four moments, latency and the verdict --------------------------------------------


def test_the_four_moments_and_detection_latency() -> None:
    log = Log()
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", at=t(0),
                    notified=t(1, 30)))
    log.deliver(sig("Checkout API", at=t(0, 40), notified=t(0, 50)))
    log.deliver(sig("Checkout", source="pagerduty", kind="alert", action="acknowledged",
                    at=t(4)))
    log.deliver(sig("HighErrorRate", "ok", source="alertmanager", kind="alert", at=t(20)))
    log.deliver(sig("Checkout API", "ok", at=t(25)))
    incident = log.only()
    assert incident.started_at == t(0)
    assert incident.detected_at == t(0, 50)
    assert incident.acknowledged_at == t(4)
    assert incident.resolved_at == t(25)
    assert incident.detection_latency_seconds == 50.0
    assert incident.duration_seconds == 1500.0
    assert incident.detected_by == "monitor"
    assert [(e.marker, e.at) for e in incident.timeline if e.marker] == [
        ("started", t(0)),
        ("detected", t(0, 50)),
        ("acknowledged", t(4)),
        ("resolved", t(25)),
    ]
    assert incident.first_detector == "Checkout API"
    assert incident.late_detector == "HighErrorRate"  # failed first, notified last


def test_detection_latency_can_be_zero() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    incident = log.only()
    assert incident.detection_latency_seconds == 0.0
    assert incident.late_detector is None


def test_latency_is_never_negative_when_clocks_disagree() -> None:
    """A notification stamped before the failure it reports (skewed clocks) keeps its
    true time on the timeline; the latency is 0, never negative."""
    log = Log()
    log.deliver(sig(at=t(1), notified=t(0, 50)))
    incident = log.only()
    assert incident.detected_at == t(0, 50)
    assert incident.detection_latency_seconds == 0.0


def test_a_p1_detected_after_more_than_five_minutes_has_a_gap() -> None:
    log = Log()
    log.deliver(sig(at=t(0), severity="P1", notified=t(5, 1)))
    assert log.only().detection_verdict == "gap"


def test_a_p1_detected_within_five_minutes_is_ok() -> None:
    log = Log()
    log.deliver(sig(at=t(0), severity="P1", notified=t(5)))
    assert log.only().detection_verdict == "ok"


def test_a_p2_detected_after_ten_minutes_is_ok() -> None:
    log = Log()
    log.deliver(sig(at=t(0), severity="P2", notified=t(10)))
    assert log.only().detection_verdict == "ok"


def test_detection_after_more_than_thirty_minutes_is_critical() -> None:
    log = Log()
    log.deliver(sig(at=t(0), severity="P4", notified=t(30, 1)))
    assert log.only().detection_verdict == "critical"


def test_publicity_follows_severity_and_uptime_checks() -> None:
    log = Log()
    log.deliver(sig("HighErrorRate", source="alertmanager", kind="alert", service="a",
                    severity="P2", at=t(0)))
    log.deliver(sig("Latency", source="alertmanager", kind="alert", service="b",
                    severity="P3", at=t(0)))
    log.deliver(sig("Homepage", service="c", severity="P4", at=t(0)))
    assert [log.incidents(s)[0].public for s in "abc"] == [True, False, True]


# --- On-call acknowledgements --------------------------------------------------------------


def test_a_pagerduty_acknowledgement_sets_acknowledged_at_of_the_open_incident() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig("Checkout", source="pagerduty", kind="alert", action="acknowledged",
                    at=t(6)))
    log.deliver(sig("Checkout", source="pagerduty", kind="alert", action="acknowledged",
                    at=t(3)), received=t(7))  # an earlier one, late
    incident = log.only()
    assert incident.acknowledged_at == t(3)
    acks = [e for e in incident.timeline if e.action == "acknowledged"]
    assert [(e.at, e.marker, e.text) for e in acks] == [
        (t(3), "acknowledged", "Checkout (pagerduty) page acknowledged"),
        (t(6), None, "Checkout (pagerduty) page acknowledged"),
    ]
    assert incident.subjects == ("Checkout API",)  # an acknowledgement is not a failure


def test_an_acknowledgement_that_arrives_before_its_failure_applies_when_it_arrives() -> None:
    """TIMELINE.md rule 11: an acknowledgement that arrives before the failure it belongs
    to is kept and applies when that failure arrives. It belongs to the incident of its
    service whose span contains its time."""
    log = Log()
    ack = log.deliver(sig("Checkout", source="pagerduty", kind="alert",
                          action="acknowledged", at=t(4)))
    assert log.engine.incidents() == []  # an acknowledgement opens nothing
    assert log.engine.take_changes().joins == {(ack, 0): None}
    log.deliver(sig(at=t(0)), received=t(6))
    incident = log.only()
    assert incident.acknowledged_at == t(4)
    assert log.engine.take_changes().joins[(ack, 0)] == incident.id
    assert incident.subjects == ("Checkout API",)


def test_an_early_acknowledgement_waits_for_the_incident_whose_span_holds_it() -> None:
    """TIMELINE.md rule 11: an acknowledgement dated after an incident resolved is not
    that incident's; it applies to the next one whose span holds it, and survives a
    dump and load meanwhile."""
    log = Log(reopen_window=timedelta(minutes=5))
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(3)))
    log.deliver(sig("Checkout", source="pagerduty", kind="alert", action="acknowledged",
                    at=t(32)))
    assert log.only().acknowledged_at is None
    restored = Log()
    restored.engine = Engine(EngineConfig(reopen_window=timedelta(minutes=5)))
    restored.engine.load("checkout", orjson.loads(orjson.dumps(log.engine.dump("checkout"))))
    restored.position = log.position
    for each in (log, restored):
        each.deliver(sig(at=t(30)), received=t(40))
        first, second = each.incidents()
        assert (first.acknowledged_at, second.acknowledged_at) == (None, t(32))


# --- Changes and retention ------------------------------------------------------------------


def test_take_changes_reports_each_change_once() -> None:
    log = Log()
    position = log.deliver(sig(at=t(0)), deploy(t(-1), "failed"))
    changes = log.engine.take_changes()
    (incident,) = changes.incidents
    assert changes.joins == {(position, 0): incident.id, (position, 1): None}
    assert changes.services == ("checkout",)
    assert [r.kind for r in changes.risks["checkout"]] == ["deploy"]
    assert [(s.source, s.subject) for s in changes.subjects] == [  # by service, source
        ("github", "acme/checkout-service production"), ("uptime-kuma", "Checkout API")]
    empty = log.engine.take_changes()
    assert (empty.incidents, empty.services, empty.joins) == ((), (), {})
    log.deliver(sig(state="ok", at=t(3)))
    (resolved,) = log.engine.take_changes().incidents
    assert resolved.status == "resolved"


def test_an_unchanged_incident_is_not_reported() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.engine.take_changes()
    log.deliver(deploy(t(-300)))  # far outside the window: the incident is the same
    assert log.engine.take_changes().incidents == ()


def test_resolved_incidents_older_than_the_retention_leave_memory() -> None:
    log = Log(retention=timedelta(days=1))
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(10)))
    log.deliver(sig("Other", at=t(0) + timedelta(days=1, minutes=11)))
    assert [i.started_at for i in log.incidents()] == [T0 + timedelta(days=1, minutes=11)]


def test_a_manual_event_about_an_archived_incident_reaches_it() -> None:
    """TIMELINE.md rule 11: whatever the projector forgets, a manual event about an old
    incident reaches that incident (retention archives it; the event brings it back)."""
    log = Log(retention=timedelta(days=1))
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(10)))
    (old,) = log.engine.take_changes().incidents
    log.deliver(sig("Other", at=t(0) + timedelta(days=2)))
    assert old.id not in [i.id for i in log.incidents()]  # out of memory
    log.engine.take_changes()
    log.manual(old.id, IncidentNote(at=t(5), text="Rolled back"), t(0) + timedelta(days=2))
    (noted,) = log.engine.take_changes().incidents
    assert noted.id == old.id
    assert (noted.started_at, noted.resolved_at, noted.version) == (t(0), t(10), 1)
    assert [e.text for e in marked(noted, "note")] == ["Rolled back"]


def test_a_late_failure_inside_an_archived_incident_joins_it_and_never_reuses_its_id() -> None:
    """TIMELINE.md rule 11: a late signal about an old incident reaches it; an incident id
    is never reused (the same failure re-sent joins the incident it opened)."""
    log = Log(retention=timedelta(days=1))
    log.deliver(sig(at=t(0)))
    log.deliver(sig("Search API", at=t(2)))
    log.deliver(sig(state="ok", at=t(10)))
    log.deliver(sig("Search API", "ok", at=t(8)))
    (old,) = log.engine.take_changes().incidents
    log.deliver(sig("Other", at=t(0) + timedelta(days=2)))
    log.engine.take_changes()
    log.deliver(sig(at=t(0)), received=t(0) + timedelta(days=2, minutes=1))  # re-sent
    log.deliver(sig("Payments API", "ok", at=t(6), started=t(4)),  # a failing period
                received=t(0) + timedelta(days=2, minutes=2))
    changed = {i.id: i for i in log.engine.take_changes().incidents}
    assert set(changed) == {old.id}
    joined = changed[old.id]
    assert joined.subjects == ("Checkout API", "Payments API", "Search API")
    assert (joined.started_at, joined.resolved_at, joined.signal_count) == (t(0), t(10), 6)


def test_an_incident_changed_then_pruned_in_one_batch_is_still_emitted() -> None:
    """One batch holds an incident's last change and, a month later in data time, the
    event that prunes it: the read model still gets its final value."""
    log = Log(retention=timedelta(days=30))
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(10)))
    log.deliver(sig("Search API", "ok", at=t(0) + timedelta(days=31)))
    assert log.engine.incidents() == []
    (emitted,) = log.engine.take_changes().incidents
    assert (emitted.status, emitted.started_at, emitted.resolved_at) == (
        "resolved", t(0), t(10))
    assert log.engine.take_changes().incidents == ()


def test_a_restored_engine_measures_retention_from_the_data_time_it_had_seen() -> None:
    """The watermark is state: a recovery received late (an import) resolves an incident
    already past retention, and both engines forget it at that same event."""
    config = EngineConfig(retention=timedelta(hours=1))
    straight = Log(config)
    straight.deliver(sig("X", at=t(0)))
    straight.deliver(sig("Y", "ok", at=t(75)))  # data time is now 11:15
    restored = Log(config)
    for service in straight.engine.services():
        restored.engine.load(service, straight.engine.dump(service))
    restored.position = straight.position
    for log in (straight, restored):
        log.deliver(sig("X", "ok", at=t(12)), received=t(30))  # resolved 10:12 < 10:15
    assert straight.engine.incidents() == restored.engine.incidents() == []


def test_dump_is_plain_json_and_load_restores_the_same_incidents() -> None:
    log = Log()
    log.deliver(sig(at=t(0), summary="connect ECONNREFUSED"), deploy(t(-5), "failed"))
    log.deliver(sig("shop.example.com", "warning", source="native", kind="ssl", at=t(1)))
    state = log.engine.dump("checkout")
    assert orjson.loads(orjson.dumps(state)) == state
    fresh = Engine(EngineConfig())
    fresh.load("checkout", orjson.loads(orjson.dumps(state)))
    assert fresh.incidents() == log.engine.incidents()
    assert fresh.risks("checkout") == log.engine.risks("checkout")
    assert fresh.take_changes().incidents == ()  # restoring is not a change
    assert fresh.dump("checkout") == state
