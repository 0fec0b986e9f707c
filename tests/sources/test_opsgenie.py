"""Opsgenie's outgoing Webhook integration: Create, Acknowledge and Close
(docs.opsgenie.com/docs/webhook-integration, alert action data samples)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import opsgenie
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import signed_headers

PEOPLE = ("fili@ifountain.com", "fili", "daed1180")


def parse(name: str) -> list[Signal]:
    return opsgenie.parse(load_fixture("opsgenie", name).delivery())


def changed(name: str, **alert: Any) -> list[Signal]:
    fixture = load_fixture("opsgenie", name)
    body = orjson.loads(fixture.body)
    body["alert"] |= alert
    return opsgenie.parse(Delivery(source="opsgenie", body=orjson.dumps(body),
                                   received_at=fixture.received_at))


def test_a_created_alert_fails_at_its_creation_time_in_milliseconds() -> None:
    """TIMELINE.md: occurred_at is the tool's own time (``createdAt``, epoch ms)."""
    [signal] = parse("create")
    assert (signal.kind, signal.state, signal.action) == ("alert", "failing", "triggered")
    assert signal.subject == "aliastest"  # the alias every action on the alert repeats
    assert signal.occurred_at == datetime(2015, 1, 5, 10, 3, 11, 104000, tzinfo=UTC)
    assert signal.notified_at == load_fixture("opsgenie", "create").received_at


def test_the_acknowledgement_is_its_own_moment_read_from_nanoseconds() -> None:
    """TIMELINE.md acknowledged_at: the acknowledgement's own time, ``updatedAt`` of the
    Acknowledge action (documented in epoch nanoseconds)."""
    [signal] = parse("acknowledge")
    assert (signal.subject, signal.state, signal.action) == ("aliastest", "info", "acknowledged")
    assert signal.occurred_at == datetime(2015, 1, 5, 10, 3, 44, 764002, tzinfo=UTC)


def test_closing_recovers_the_subject_and_carries_its_start() -> None:
    """Rule 4: a recovery that carries its own start is a failing period seen after the
    fact when the creation was never heard."""
    [signal] = parse("close")
    assert (signal.subject, signal.state, signal.action) == ("aliastest", "ok", "resolved")
    assert signal.occurred_at == datetime(2015, 1, 5, 10, 5, 7, 514002, tzinfo=UTC)
    assert signal.started_at == datetime(2015, 1, 5, 10, 3, 11, 104000, tzinfo=UTC)


@pytest.mark.parametrize("unit", [1_420_452_191, 1_420_452_191_104, 1_420_452_191_104_000,
                                  1_420_452_191_104_000_000])
def test_any_epoch_unit_gives_the_same_instant(unit: int) -> None:
    [signal] = changed("create", createdAt=unit)
    assert signal.occurred_at.replace(microsecond=0) == datetime(2015, 1, 5, 10, 3, 11,
                                                                 tzinfo=UTC)


def test_a_note_maps_to_nothing() -> None:
    assert parse("add_note") == []


def test_priority_and_service_tag_are_read_when_present() -> None:
    [signal] = changed("create", priority="P1", tags=["service:payments", "db"])
    assert (signal.severity, signal.service) == ("P1", "payments")
    [low] = changed("create", priority="P5")
    assert low.severity == "P4"


def test_without_an_alias_the_alert_id_is_the_subject() -> None:
    [signal] = changed("create", alias="")
    assert signal.subject == "052652ac-5d1c-464a-812a-7dd18bbfba8c"
    with pytest.raises(MappingError, match=r"^alert\.alias: missing"):
        changed("create", alias="", alertId="")


def test_no_person_reaches_a_signal() -> None:
    for name in fixture_names("opsgenie"):
        text = orjson.dumps([s.to_json() for s in parse(name)]).decode()
        for person in PEOPLE:
            assert person not in text, (name, person)


async def test_a_forged_token_is_refused(client: Any) -> None:
    """The Webhook integration's custom header: ``Authorization: Bearer <token>``."""
    fixture = load_fixture("opsgenie", "create")
    forged = await client.post("/v1/webhooks/opsgenie", data=fixture.body, headers={
        **fixture.headers, "Authorization": "Bearer guess"})
    assert forged.status == 401
    ok = await client.post("/v1/webhooks/opsgenie", data=fixture.body,
                           headers=signed_headers("opsgenie", fixture.body, fixture.headers))
    assert ok.status == 202
