"""Manual events: the vocabulary (ingest.manual) and how they win in the engine
(TIMELINE.md rule 10 and "The four moments")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingest.manual import (
    IncidentAcknowledged,
    IncidentDeclared,
    IncidentImpactStartCorrected,
    IncidentMerged,
    IncidentNote,
    IncidentPublicitySet,
    IncidentResolved,
    IncidentSeveritySet,
    manual_event_from_json,
    manual_event_to_json,
)
from tests.projections.test_engine_support import Log, marked, sig, t


def declared(started: int | None = None, **overrides: object) -> IncidentDeclared:
    fields: dict[str, object] = {
        "incident_id": "checkout-outage", "service": "checkout",
        "title": "Customers cannot pay",
        "started_at": None if started is None else t(started),
    }
    fields.update(overrides)
    return IncidentDeclared.model_validate(fields)


# --- The vocabulary -------------------------------------------------------------------------


def test_every_manual_event_round_trips_through_json() -> None:
    events = [
        declared(-20, severity="P1", summary="Reported by support"),
        IncidentNote(at=t(3), text="Rolled back checkout-service to the previous release"),
        IncidentSeveritySet(severity="P2", reason="only card payments"),
        IncidentImpactStartCorrected(started_at=t(-25), evidence="first 502 in the LB logs"),
        IncidentAcknowledged(at=t(1)),
        IncidentResolved(resolved_at=t(30), text="error rate back to baseline"),
        IncidentMerged(other_id="inc_0123456789abcdef"),
        IncidentPublicitySet(public=False),
    ]
    for event in events:
        data = manual_event_to_json(event)
        assert "type" not in data
        assert manual_event_from_json(event.type, data) == event


def test_times_are_normalised_to_utc() -> None:
    event = manual_event_from_json("incident.acknowledged", {"at": "2025-03-14T12:00:00+02:00"})
    assert isinstance(event, IncidentAcknowledged)
    assert event.at == t(0)
    assert manual_event_to_json(event) == {"at": "2025-03-14T10:00:00Z"}


@pytest.mark.parametrize(
    ("type_", "data", "message"),
    [
        ("incident.exploded", {}, "unknown manual event type: 'incident.exploded'"),
        ("incident.note", {"at": "2025-03-14T10:00:00", "text": "x"},
         "at: Input should have timezone info"),
        ("incident.note", {"at": "2025-03-14T10:00:00Z"}, "text: Field required"),
        ("incident.note", {"at": "2025-03-14T10:00:00Z", "text": "  "},
         "text: String should have at least 1 character"),
        ("incident.severity_set", {"severity": "P0"}, "severity: Input should be 'P1', 'P2', "
         "'P3' or 'P4'"),
        ("incident.publicity_set", {"public": True, "by": "alice"},
         "by: Extra inputs are not permitted"),
        ("incident.merged", {"other_id": "../x"}, "other_id: String should match pattern "
         "'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'"),
        ("incident.resolved", {"type": "incident.note", "resolved_at": "2025-03-14T10:00:00Z"},
         "type: does not match the event type"),
    ],
)
def test_a_bad_manual_event_is_refused_with_a_short_message(
    type_: str, data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        manual_event_from_json(type_, data)
    assert str(caught.value) == message


# --- Declaring ------------------------------------------------------------------------------


def test_a_declared_incident_no_monitor_saw_is_detected_by_a_human() -> None:
    log = Log()
    log.manual(None, declared(-20), recorded=t(0))
    incident = log.only()
    assert incident.id == "checkout-outage"
    assert (incident.title, incident.service, incident.severity) == (
        "Customers cannot pay", "checkout", "P3")
    assert (incident.started_at, incident.detected_at) == (t(-20), t(0))
    assert incident.detected_by == "human"
    assert incident.detection_latency_seconds == 1200.0
    assert incident.detection_verdict == "critical"
    assert incident.version == 1
    assert [(e.at, e.marker, e.text) for e in incident.timeline] == [
        (t(-20), "started", "Impact started (as reported)"),
        (t(0), "detected", "Incident declared: Customers cannot pay"),
    ]


def test_a_declaration_without_a_start_starts_when_it_was_declared() -> None:
    log = Log()
    log.manual(None, declared(), recorded=t(0))
    incident = log.only()
    assert incident.started_at == incident.detected_at == t(0)
    assert incident.detection_latency_seconds == 0.0
    assert incident.detection_verdict == "critical"  # a human found it


def test_signals_after_a_declaration_join_it_and_leave_it_human_detected() -> None:
    log = Log()
    log.manual(None, declared(-20), recorded=t(0))
    log.deliver(sig(at=t(-10), notified=t(2)))
    incident = log.only()
    assert incident.id == "checkout-outage"
    assert incident.subjects == ("Checkout API",)
    assert (incident.started_at, incident.detected_by) == (t(-20), "human")
    assert incident.late_detector == "Checkout API"


def test_a_monitor_that_notified_before_the_declaration_detected_it() -> None:
    log = Log()
    log.manual(None, declared(), recorded=t(0))
    log.deliver(sig(at=t(-10), notified=t(-9)), received=t(5))  # a late delivery
    incident = log.only()
    assert (incident.detected_by, incident.detected_at) == ("monitor", t(-9))
    assert incident.started_at == t(-10)
    assert incident.detection_verdict == "ok"


def test_declaring_an_id_twice_keeps_the_first_declaration() -> None:
    log = Log()
    log.manual(None, declared(), recorded=t(0))
    log.manual(None, declared(title="Something else"), recorded=t(1))
    incident = log.only()
    assert (incident.title, incident.version) == ("Customers cannot pay", 2)


# --- Notes, severity, impact start, acknowledgement -------------------------------------


def test_a_note_sits_at_its_own_time() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    inc_id = log.only().id
    log.manual(inc_id, IncidentNote(at=t(3), text="Rolled back to 4f2c9e1"), recorded=t(40))
    (note,) = marked(log.only(), "note")
    assert (note.at, note.received_at, note.text, note.state) == (
        t(3), t(40), "Rolled back to 4f2c9e1", "note")
    assert log.only().version == 1


def test_a_severity_set_by_an_engineer_wins_over_the_signals() -> None:
    log = Log()
    log.deliver(sig("A", at=t(0), severity="P3"))
    inc_id = log.only().id
    log.manual(inc_id, IncidentSeveritySet(severity="P1", reason="all payments fail"), t(2))
    log.deliver(sig("B", at=t(3), severity="P2"))
    assert log.only().severity == "P1"
    log.manual(inc_id, IncidentSeveritySet(severity="P4"), t(4))  # the latest choice wins
    assert log.only().severity == "P4"


def test_a_corrected_impact_start_overrides_started_at() -> None:
    log = Log()
    log.deliver(sig(at=t(0), notified=t(1)))
    inc_id = log.only().id
    log.manual(inc_id, IncidentImpactStartCorrected(started_at=t(-7),
                                                    evidence="first 502 in the LB logs"), t(20))
    incident = log.only()
    assert incident.started_at == t(-7)
    assert incident.detection_latency_seconds == 8 * 60
    (started,) = marked(incident, "started")
    assert (started.at, started.text) == (
        t(-7), "Impact start corrected to this time: first 502 in the LB logs")
    log.deliver(sig("B", at=t(-30)))  # a late, earlier signal does not undo the correction
    assert log.only().started_at == t(-7)


def test_an_engineers_acknowledgement_counts_when_earlier_than_the_pages() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    inc_id = log.only().id
    log.deliver(sig("Checkout", source="pagerduty", kind="alert", action="acknowledged",
                    at=t(5)))
    log.manual(inc_id, IncidentAcknowledged(at=t(2)), recorded=t(6))
    incident = log.only()
    assert incident.acknowledged_at == t(2)
    (ack,) = marked(incident, "acknowledged")
    assert (ack.source, ack.text) == ("manual", "Incident acknowledged")


# --- Resolving by hand ----------------------------------------------------------------------


def test_a_manual_resolution_wins_over_failing_signals() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig(at=t(0), notified=t(10)))  # a reminder, before the engineer resolved
    inc_id = log.only().id
    log.manual(inc_id, IncidentResolved(resolved_at=t(12), text="fixed upstream"), t(13))
    incident = log.only()
    assert (incident.status, incident.resolved_at, incident.duration_seconds) == (
        "resolved", t(12), 720.0)
    (resolved,) = marked(incident, "resolved")
    assert resolved.text == "Incident resolved: fixed upstream"


def test_a_failure_within_the_window_after_a_manual_resolution_reopens_it() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    inc_id = log.only().id
    log.manual(inc_id, IncidentResolved(resolved_at=t(12)), t(13))
    log.deliver(sig(at=t(20)))
    incident = log.only()
    assert (incident.status, incident.resolved_at) == ("open", None)
    assert marked(incident, "resolved") == []


def test_a_failure_beyond_the_window_after_a_manual_resolution_opens_a_new_incident() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    inc_id = log.only().id
    log.manual(inc_id, IncidentResolved(resolved_at=t(12)), t(13))
    log.deliver(sig(at=t(28)))
    first, second = log.incidents()
    assert (first.id, first.status) == (inc_id, "resolved")
    assert (second.status, second.started_at) == ("open", t(28))


# --- Merging --------------------------------------------------------------------------------


def test_merging_keeps_the_older_incident_whichever_was_named() -> None:
    for posted_to_newer in (True, False):
        log = Log()
        log.deliver(sig("Checkout API", at=t(0)))
        log.deliver(sig("ledger-db", service="ledger", kind="alert", source="alertmanager",
                        at=t(3)))
        older, newer = log.incidents("checkout")[0], log.incidents("ledger")[0]
        target, other = (newer, older) if posted_to_newer else (older, newer)
        log.manual(target.id, IncidentMerged(other_id=other.id), recorded=t(10))
        survivor = log.engine.incident(older.id)
        absorbed = log.engine.incident(newer.id)
        assert survivor is not None
        assert absorbed is not None
        assert survivor.merged_into is None
        assert absorbed.merged_into == older.id
        assert survivor.subjects == ("Checkout API", "ledger-db")
        assert survivor.started_at == t(0)
        assert any(e.text == f"Incidents {target.id} and {other.id} merged"
                   for e in survivor.timeline)


def test_after_a_merge_events_and_signals_of_the_absorbed_incident_reach_the_survivor() -> None:
    log = Log()
    log.deliver(sig("Checkout API", at=t(0)))
    log.manual(None, declared(service="payments"), recorded=t(5))
    older = log.incidents("checkout")[0].id
    log.manual("checkout-outage", IncidentMerged(other_id=older), recorded=t(6))
    log.engine.take_changes()
    log.manual("checkout-outage", IncidentNote(at=t(7), text="Paging the payments team"), t(8))
    log.deliver(sig("card-gateway", service="payments", at=t(9)))
    changes = log.engine.take_changes()
    (survivor,) = changes.incidents
    (absorbed,) = changes.merged
    assert survivor.id == older
    assert (absorbed.id, absorbed.merged_into, absorbed.version) == (
        "checkout-outage", older, 3)
    assert [e.text for e in marked(survivor, "note")] == ["Paging the payments team"]
    assert survivor.subjects == ("Checkout API", "card-gateway")
    assert survivor.detected_by == "monitor"  # a monitor notified before the declaration
    assert changes.joins == {(log.position, 0): older}


def test_merging_an_unknown_or_the_same_incident_changes_only_the_version() -> None:
    log = Log()
    log.deliver(sig(at=t(0)))
    inc_id = log.only().id
    log.manual(inc_id, IncidentMerged(other_id="nope"), recorded=t(1))
    log.manual(inc_id, IncidentMerged(other_id=inc_id), recorded=t(2))
    incident = log.only()
    assert (incident.merged_into, incident.version) == (None, 2)


# --- Publicity, unknown incidents -----------------------------------------------------------


def test_publicity_set_by_an_engineer_wins() -> None:
    log = Log()
    log.deliver(sig(at=t(0), severity="P1"))
    inc_id = log.only().id
    assert log.only().public
    log.manual(inc_id, IncidentPublicitySet(public=False), recorded=t(1))
    assert not log.only().public


def test_an_event_for_an_incident_never_declared_changes_nothing() -> None:
    log = Log()
    log.manual("ghost", IncidentNote(at=t(0), text="hello"), recorded=t(0))
    assert log.engine.incidents() == []
    with pytest.raises(ValueError, match="incident_id is required"):
        log.engine.apply_manual(99, t(0), IncidentNote(at=t(0), text="x"))


def test_manual_events_do_not_move_retention() -> None:
    """Retention is measured in the data time of signals: an engineer writes today
    about incidents of any age, and that must not age the service's history."""
    log = Log(retention=timedelta(hours=1))
    log.manual(None, declared(), recorded=t(0))
    log.manual("checkout-outage", IncidentResolved(resolved_at=t(10)), recorded=t(11))
    log.manual(None, declared(incident_id="later"), recorded=t(71))
    assert sorted(i.id for i in log.incidents()) == ["checkout-outage", "later"]
    log.deliver(sig("Search API", "ok", at=t(80)))  # the service's data time moves
    assert [i.id for i in log.incidents()] == ["later"]


def test_a_note_on_an_incident_resolved_long_before_the_note_is_kept_and_emitted() -> None:
    """History imported from last year, annotated today: the note is recorded a year
    after the incident resolved, yet the incident stays and its change is reported."""
    log = Log()
    log.deliver(sig(at=t(0)))
    log.deliver(sig(state="ok", at=t(20)))
    inc_id = log.only().id
    log.engine.take_changes()
    log.manual(inc_id, IncidentNote(at=t(7), text="Rolled back"),
               recorded=t(0) + timedelta(days=365))
    (changed,) = log.engine.take_changes().incidents
    assert (changed.id, changed.version) == (inc_id, 1)
    assert [e.text for e in marked(changed, "note")] == ["Rolled back"]
    assert log.only() == changed


def test_an_incident_resolved_by_hand_past_retention_reaches_the_read_model() -> None:
    """A manual resolution dated before the retention cutoff: the resolved value reaches
    the read model (TIMELINE.md rule 11: memory never changes an answer). Its subject
    still fails, so its recovery, whenever it comes, must find it: it stays held."""
    log = Log(retention=timedelta(days=1))
    log.deliver(sig(at=t(0)))
    log.deliver(sig("Search API", "ok", at=t(0) + timedelta(days=3)))
    inc_id = log.only().id
    log.engine.take_changes()
    log.manual(inc_id, IncidentResolved(resolved_at=t(30)), recorded=t(0) + timedelta(days=3))
    (changed,) = log.engine.take_changes().incidents
    assert (changed.id, changed.status, changed.resolved_at, changed.version) == (
        inc_id, "resolved", t(30), 1)
    assert [i.id for i in log.engine.incidents()] == [inc_id]
