"""Alertmanager webhook (version 4) -> signals, from documented payloads only."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import alertmanager
from ingest.sources.alertmanager import label_fingerprint
from tests.fixtures import fixture_names, load_fixture
from tests.sources.folding import fold

SOURCE = "alertmanager"
RECEIVED = datetime(2025, 3, 14, 12, 0, 0, 250000, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return alertmanager.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED)


def alert(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "status": "firing",
        "labels": {"alertname": "Up", "instance": "web-1:9100"},
        "annotations": {},
        "startsAt": "2025-03-14T11:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "0123456789abcdef",
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_alertmanager_fixture_is_one_signal_per_alert_named_by_its_fingerprint(
        name: str) -> None:
    """template/template.go ``Data.Alerts``: one signal per alert, in order, each the
    alert's own status and fingerprint (TIMELINE.md: the subject is the fingerprint)."""
    if name.startswith("invalid_"):
        with pytest.raises((BodyError, MappingError)):
            parse(name)
        return
    alerts = orjson.loads(load_fixture(SOURCE, name).body)["alerts"]
    signals = parse(name)

    assert [s.subject for s in signals] == [a["fingerprint"] for a in alerts]
    assert [s.state for s in signals] == [
        "failing" if a["status"] == "firing" else "ok" for a in alerts]
    assert [s.label_map["alertname"] for s in signals] == [
        a["labels"]["alertname"] for a in alerts]


@pytest.mark.parametrize("name", [n for n in fixture_names(SOURCE) if n != "invalid_not_json"])
def test_every_fixture_fingerprint_is_the_hash_of_its_labels(name: str) -> None:
    """Fixtures are faithful: Alertmanager's fingerprint is ``model.LabelSet.Fingerprint``
    of the alert's labels, so a fixture cannot carry a made-up one."""
    for alert in orjson.loads(load_fixture(SOURCE, name).body)["alerts"]:
        assert alert["fingerprint"] == label_fingerprint(alert["labels"])


def test_the_computed_fingerprint_is_prometheus_own() -> None:
    """prometheus/common ``model/signature_test.go`` ``TestMetricToFingerprint``: the
    empty set and {name="garland, briggs", fear="love is not enough"}."""
    assert label_fingerprint({}) == f"{14695981039346656037:016x}"
    assert label_fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == (
        f"{5799056148416392346:016x}")


def test_a_firing_group_yields_one_failing_signal_per_alert_at_its_start() -> None:
    first, second = parse("firing")

    assert (first.subject, second.subject) == ("edc7efd6ab2dbe0f", "a2bd7146b43d80d8")
    assert first.label_map == {"alertname": "HighErrorRate", "instance": "10.42.3.17:8080",
                               "job": "checkout-api", "namespace": "shop",
                               "service": "checkout", "severity": "critical"}
    assert (first.state, second.state) == ("failing", "failing")
    assert first.kind == "alert"
    # Nanoseconds are cut to microseconds; the zero endsAt of a firing alert is ignored.
    assert first.occurred_at == datetime(2025, 3, 14, 9, 58, 12, 345678, tzinfo=UTC)
    assert second.occurred_at == datetime(2025, 3, 14, 9, 58, 42, 345678, tzinfo=UTC)
    assert first.started_at is None
    assert first.notified_at == datetime(2025, 3, 14, 9, 59, 13, 21000, tzinfo=UTC)
    assert first.time_source == "source"
    assert (first.service, first.severity) == ("checkout", "P1")
    assert first.summary == "5xx ratio above 5% on 10.42.3.17:8080"
    assert first.attribute_map["fingerprint"] == "edc7efd6ab2dbe0f"
    assert "truncated_alerts" not in first.attribute_map


def test_links_carry_the_generator_url_and_the_runbook() -> None:
    first = parse("firing")[0]

    assert [link.title for link in first.links] == ["source", "runbook"]
    assert first.links[1] == Link(
        url="https://runbooks.example.com/checkout/high-error-rate", title="runbook"
    )


def test_a_resolved_alert_is_ok_at_its_end_and_carries_its_start() -> None:
    first, second = parse("resolved")

    assert (first.state, second.state) == ("ok", "ok")
    assert first.occurred_at == datetime(2025, 3, 14, 10, 21, 12, 345678, tzinfo=UTC)
    assert first.started_at == datetime(2025, 3, 14, 9, 58, 12, 345678, tzinfo=UTC)
    assert second.occurred_at == datetime(2025, 3, 14, 10, 20, 42, 345678, tzinfo=UTC)
    assert first.subject == parse("firing")[0].subject


def test_a_resolved_alert_first_seen_resolved_carries_its_start() -> None:
    firing, first_seen_resolved = parse("mixed_group")

    assert firing.state == "failing"
    assert firing.occurred_at == datetime(2025, 3, 14, 2, 3, 31, 118000, tzinfo=UTC)
    assert first_seen_resolved.state == "ok"
    assert first_seen_resolved.occurred_at == datetime(2025, 3, 14, 2, 6, 1, 118000, tzinfo=UTC)
    assert first_seen_resolved.started_at == datetime(2025, 3, 14, 2, 1, 1, 118000, tzinfo=UTC)
    assert first_seen_resolved.subject == "f2519929bf212414"
    assert first_seen_resolved.label_map["pod"] == "reconciler-7d9f8b6c4-m8zrt"
    # The app label names the service; warning maps to P3.
    assert (first_seen_resolved.service, first_seen_resolved.severity) == (
        "payment-reconciliation",
        "P3",
    )


def test_a_truncated_group_notes_how_many_alerts_were_cut() -> None:
    signals = parse("truncated")

    assert len(signals) == 2
    assert {s.attribute_map["truncated_alerts"] for s in signals} == {"3"}


def test_without_a_service_label_the_group_labels_name_the_service() -> None:
    (signal,) = parse("non_utc_offset")

    assert signal.service == "alertname=ProbeFailure,job=blackbox-http"
    assert parse("truncated")[0].service == "alertname=NodeFilesystemAlmostOutOfSpace"


def test_a_time_with_another_offset_is_read_as_that_instant_in_utc() -> None:
    (signal,) = parse("non_utc_offset")

    assert signal.occurred_at == datetime(2025, 3, 14, 10, 2, 3, 500000, tzinfo=UTC)
    assert signal.to_json()["occurred_at"] == "2025-03-14T10:02:03.5Z"


def test_unicode_labels_are_kept_and_a_long_annotation_is_clipped() -> None:
    (signal,) = parse("unicode_long_annotation")

    assert signal.label_map["site"] == "Zürich-Oerlikon"
    assert signal.label_map["team"] == "équipe-paiements"
    assert signal.summary == "Latence p99 > 2 s – Zürich-Oerlikon 🇨🇭"
    assert signal.severity == "P2"  # "high"


def test_a_label_naming_a_person_reaches_neither_subject_nor_labels() -> None:
    (signal,) = parse("unicode_long_annotation")

    assert "owner" not in signal.label_map
    assert "example.com" not in signal.subject
    assert signal.subject == "d506724afd6de4ad"  # the fingerprint: a hash, no label value


def test_a_long_description_becomes_a_clipped_summary_without_addresses() -> None:
    body = {"alerts": [alert(annotations={"description": "call ops@example.com " + "x" * 900})]}

    (signal,) = alertmanager.parse(inline(body))

    assert len(signal.summary) == 500
    assert signal.summary.endswith("…")
    assert signal.summary.startswith("call [email] xxx")


def test_a_repeated_identical_notification_yields_identical_signals_but_its_receipt() -> None:
    first, repeat = parse("firing"), parse("firing_repeat")

    assert [s.occurred_at for s in first] == [s.occurred_at for s in repeat]
    assert [s.subject for s in first] == [s.subject for s in repeat]
    assert repeat[0].notified_at == datetime(2025, 3, 14, 13, 59, 13, 102000, tzinfo=UTC)


def test_a_resolved_alert_with_a_zero_end_falls_back_to_the_receipt_and_says_so() -> None:
    body = {"alerts": [alert(status="resolved")]}

    (signal,) = alertmanager.parse(inline(body))

    assert signal.state == "ok"
    assert signal.occurred_at == RECEIVED
    assert signal.time_source == "receipt"
    assert signal.started_at == datetime(2025, 3, 14, 11, 0, tzinfo=UTC)


def test_a_firing_alert_with_a_zero_start_is_dated_by_its_receipt() -> None:
    body = {"alerts": [alert(startsAt="0001-01-01T00:00:00Z")]}

    (signal,) = alertmanager.parse(inline(body))

    assert (signal.occurred_at, signal.time_source) == (RECEIVED, "receipt")


def test_an_alert_without_service_or_group_labels_has_no_service() -> None:
    (signal,) = alertmanager.parse(inline({"alerts": [alert()]}))

    assert signal.service is None
    assert signal.severity is None
    assert signal.subject == "0123456789abcdef"
    assert signal.summary == "Up"


def test_without_a_fingerprint_the_subject_is_the_fingerprint_of_all_labels() -> None:
    """TIMELINE.md: the fingerprint, or alertname + sorted labels: every label, even one
    never shown (``owner``), as Alertmanager's own fingerprint would hash them."""
    labels = {"alertname": "Up", "instance": "web-1:9100", "owner": "dana@example.com"}
    body = {"alerts": [alert(labels=labels, fingerprint=None)]}

    (signal,) = alertmanager.parse(inline(body))

    assert signal.subject == label_fingerprint(labels)
    assert signal.subject != label_fingerprint({k: v for k, v in labels.items()
                                                if k != "owner"})
    assert "owner" not in signal.label_map


def owners_alerts(*, first: str, second: str, fingerprints: bool) -> Delivery:
    """One group of two HighErrorRate alerts whose labels differ only in ``owner``, a
    label the timeline never shows: two alerts for Alertmanager (two fingerprints)."""
    alerts = []
    for owner, status in (("ana@example.com", first), ("ben@example.com", second)):
        labels = {"alertname": "HighErrorRate", "service": "checkout", "owner": owner}
        ends = "2025-03-14T11:20:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
        alerts.append(alert(labels=labels, status=status, endsAt=ends, fingerprint=(
            label_fingerprint(labels) if fingerprints else None)))
    return inline({"alerts": alerts, "groupLabels": {"alertname": "HighErrorRate"}})


@pytest.mark.parametrize("fingerprints", [True, False])
def test_one_alerts_resolution_does_not_close_another_that_differs_in_a_hidden_label(
        fingerprints: bool) -> None:
    """Issue 10 (5): two alerts whose labels differ only in a dropped label shared a
    subject, and one's resolution closed the incident the other still fails in
    (TIMELINE.md rule 3: it resolves when every subject that failed in it is ok)."""
    firing = owners_alerts(first="firing", second="firing", fingerprints=fingerprints)
    one_resolved = owners_alerts(first="resolved", second="firing", fingerprints=fingerprints)

    signals = alertmanager.parse(firing)
    assert signals[0].subject != signals[1].subject
    (incident,) = fold(firing, one_resolved).incidents()
    assert incident.resolved_at is None


def test_an_empty_group_yields_no_signals() -> None:
    assert alertmanager.parse(inline({"alerts": [], "truncatedAlerts": 4})) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"receiver": "x"}, "alerts: missing"),
        ({"alerts": {}}, "alerts: expected a list"),
        ({"alerts": ["x"]}, "alerts[0]: expected an object"),
        ({"alerts": [alert(status="pending")]}, "alerts[0].status: expected firing or resolved"),
        ({"alerts": [alert(labels=None)]}, "alerts[0].labels: expected an object"),
        ({"alerts": [alert(labels={"alertname": 3})]}, "alerts[0].labels.alertname: expected"),
        ({"alerts": [alert(startsAt="yesterday")]}, "not a time: 'yesterday'"),
        ([], "body: expected an object"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(body: object, message: str) -> None:
    with pytest.raises(MappingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        alertmanager.parse(inline(body))


def test_a_body_that_is_not_json_is_a_body_error() -> None:
    with pytest.raises(BodyError):
        parse("invalid_not_json")
