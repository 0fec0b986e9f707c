"""native: Hindsight's own documented shape, validated at the edge."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import native
from tests.fixtures import load_fixture

RECEIVED = datetime(2025, 3, 14, 12, 0, 1, 250000, tzinfo=UTC)
MINIMAL = {"kind": "uptime", "subject": "Checkout API", "state": "failing"}


def parse(name: str) -> list[Signal]:
    return native.parse(load_fixture("native", name).delivery())


def parse_body(body: object, headers: dict[str, str] | None = None) -> list[Signal]:
    return native.parse(
        Delivery(
            source="native", body=orjson.dumps(body), received_at=RECEIVED, headers=headers or {}
        )
    )


def error_for(body: object) -> str:
    with pytest.raises(MappingError) as caught:
        parse_body(body)
    return str(caught.value)


def test_a_failing_signal_is_taken_as_posted() -> None:
    [signal] = parse("failing")
    assert signal.source == "native"
    assert (signal.kind, signal.subject, signal.state) == (
        "uptime",
        "Card authorisation probe",
        "failing",
    )
    assert signal.service == "checkout"
    assert signal.severity == "P1"  # "critical"
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 3, 5, 250000, tzinfo=UTC)
    assert signal.time_source == "source"
    # the signed webhook-timestamp header is the send time
    assert signal.notified_at == datetime(2025, 3, 14, 10, 3, 12, tzinfo=UTC)
    assert signal.summary == "3 of 3 probe regions saw HTTP 503 from POST /v1/authorise"
    assert signal.links == (
        Link("https://grafana.acme.example/d/probe/card-auth", "Probe dashboard"),
        Link("https://runbooks.acme.example/checkout/card-authorisation", ""),
    )
    assert signal.labels == (("probe", "card-auth"), ("region", "eu-west-1"))


def test_its_recovery_is_ok_for_the_same_subject() -> None:
    [signal] = parse("ok")
    assert (signal.subject, signal.state, signal.severity) == (
        "Card authorisation probe",
        "ok",
        None,
    )
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 35, 58, tzinfo=UTC)


def test_an_envelope_of_signals_yields_each_in_order() -> None:
    deploy, cert = parse("batch")
    assert (deploy.kind, deploy.state, deploy.action) == ("deploy", "info", "succeeded")
    assert deploy.service == "ledger"  # from the "service" label
    assert deploy.occurred_at == datetime(2025, 3, 14, 9, 58, 21, 500000, tzinfo=UTC)
    assert deploy.attribute_map == {"ref": "77c01ad", "environment": "production"}
    assert (cert.kind, cert.state, cert.severity) == ("ssl", "warning", "P3")


def test_a_bare_list_is_accepted_and_an_empty_one_is_no_signal() -> None:
    assert [s.subject for s in parse_body([MINIMAL, MINIMAL | {"subject": "B"}])] == [
        "Checkout API",
        "B",
    ]
    assert parse_body([]) == []
    assert parse_body({"signals": []}) == []


def test_without_a_time_the_receipt_is_used_and_said() -> None:
    [signal] = parse_body(MINIMAL)
    assert signal.occurred_at == RECEIVED
    assert signal.notified_at == RECEIVED
    assert signal.time_source == "receipt"


def test_numbers_and_booleans_in_labels_are_kept_as_text() -> None:
    [signal] = parse_body(MINIMAL | {"labels": {"port": 443, "canary": True}})
    assert signal.label_map == {"port": "443", "canary": "true"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"subject": "x", "state": "ok"}, "kind: missing"),
        (MINIMAL | {"state": "down"}, "state: expected one of failing, ok, warning, info"),
        (MINIMAL | {"kind": "cpu"}, "kind: expected one of uptime, cron, ssl, deploy, alert"),
        (MINIMAL | {"subject": "  "}, "subject: empty"),
        (
            MINIMAL | {"severity": "sev-0"},
            "severity: expected one of P1, P2, P3, P4 or critical, high, warning, info",
        ),
        (
            MINIMAL | {"occurred_at": "2025-03-14 10:00:00"},
            "occurred_at: expected an RFC 3339 time with a zone",
        ),
        (MINIMAL | {"occured_at": "2025-03-14T10:00:00Z"}, "occured_at: unknown field"),
        (MINIMAL | {"links": [{"title": "x"}]}, "links[0].url: missing"),
        (MINIMAL | {"links": [42]}, 'links[0]: expected a URL or {"url", "title"}'),
        (MINIMAL | {"labels": {"team": ["a"]}}, "labels.team: expected a string"),
        (
            {"signals": [MINIMAL, MINIMAL | {"state": "up"}]},
            "signals[1].state: expected one of failing, ok, warning, info",
        ),
        ([MINIMAL, {"kind": "uptime"}], "signals[1].subject: missing"),
        ({"signals": {"kind": "uptime"}}, "signals: expected a list"),
        ("failing", "body: expected an object or a list of objects"),
    ],
)
def test_the_first_problem_is_reported_in_a_short_stable_message(
    body: object, message: str
) -> None:
    assert error_for(body) == message


def test_a_body_that_is_not_json_is_a_body_error() -> None:
    with pytest.raises(BodyError):
        native.parse(Delivery(source="native", body=b"{kind: uptime", received_at=RECEIVED))
