"""Parse once (ARCHITECTURE.md, "Deliveries are the events"): ingest stores what the
adapter made of a delivery, with the adapter's version; the projector and rebuild fold
those stored signals and re-run an adapter only on deliveries an older version parsed,
"so fixing an adapter and rebuilding still corrects history".

TIMELINE.md rule 11 (a duplicate changes nothing, except that detection takes the
earliest receipt among the copies) is checked for copies folded from stored signals
against copies folded by re-parsing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from hindsight.app import engine_config_from
from hindsight.database import connect
from ingest.delivery import Delivery, stored_delivery
from ingest.signals import Signal
from ingest.sources import SOURCES, adapter_for, adapter_version, signal_json, understand
from ingest.sources import alertmanager as alertmanager_adapter
from ingest.store import EventStore, RecordedEvent
from ingest.webhooks import delivery_data
from projections.engine.facts import signal_from_json
from projections.runtime.projection import Pending, Projection
from projections.runtime.projector import Projector
from projections.runtime.rebuild import rebuild
from tests.fixtures import FIXTURES, Fixture, load_fixture
from tests.helpers import run_projector_until, settings_for_tests, signed_headers

COPY = "delivery.copy"


def all_fixtures() -> Iterator[Fixture]:
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        if folder.name not in SOURCES:
            continue
        for path in sorted(folder.glob("*.json")):
            yield load_fixture(folder.name, path.stem)


FIXTURE_LIST = list(all_fixtures())


def ids(fixture: Fixture) -> str:
    return f"{fixture.source}/{fixture.name}"


class Counting:
    """Wraps a source's ``parse`` and counts its calls (an adapter run is a re-parse)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, source: str,
                 change: Callable[[Signal], Signal] | None = None) -> None:
        self.calls = 0
        self.original = adapter_for(source)
        self.change = change
        module = __import__(self.original.__module__, fromlist=["parse"])
        monkeypatch.setattr(module, "parse", self)

    def __call__(self, delivery: Delivery) -> list[Signal]:
        self.calls += 1
        signals = self.original(delivery)
        return signals if self.change is None else [self.change(s) for s in signals]


# --- the stored form -------------------------------------------------------------------

@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=ids)
def test_stored_signals_read_back_as_the_adapter_made_them(fixture: Fixture) -> None:
    """What ingest stores (``delivery_data``) turns back into the adapter's own signals,
    outcome and error, without the adapter, tagged with the adapter's version."""
    delivery = fixture.delivery()
    understood = understand(delivery)
    parsed = delivery_data(delivery, understood)["parsed"]
    assert parsed["version"] == adapter_version(fixture.source) is not None
    assert parsed["outcome"] == understood.outcome
    assert parsed.get("error") == understood.error
    assert tuple(signal_from_json(s) for s in parsed["signals"]) == understood.signals
    # API.md: ingest answers each signal as Signal.to_json; it builds them from the stored.
    assert [signal_json(s) for s in parsed["signals"]] == [s.to_json() for s in understood.signals]


@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=ids)
def test_what_a_copy_counts_does_not_depend_on_its_receipt(fixture: Fixture) -> None:
    """The seam's rule a later copy relies on (ingest/sources/__init__.py): outcome,
    error, the number of signals and each one's source, subject and service hint come
    from the body and headers only, whatever the receipt time."""
    delivery = fixture.delivery()
    later = dataclasses.replace(delivery, received_at=delivery.received_at + timedelta(hours=5))
    a, b = understand(delivery), understand(later)
    assert (a.outcome, a.error) == (b.outcome, b.error)
    assert ([(s.source, s.subject, s.service) for s in a.signals]
            == [(s.source, s.subject, s.service) for s in b.signals])


# --- the fold, in process: stored signals against re-parsing ---------------------------

def recorded(position: int, type_: str, data: dict[str, Any], received_at: datetime,
             body: bytes | None = None) -> RecordedEvent:
    return RecordedEvent(
        position=position, transaction_id=position, stream=f"s-{position}", stream_version=1,
        type=type_, data=data, metadata={}, body=body, idempotency_key=None,
        occurred_at=None, received_at=received_at, recorded_at=received_at)


def log_with_copies(fixture: Fixture) -> list[RecordedEvent]:
    """A delivery as ingest stores it, then copies: one received later with the same
    headers, one later with other headers, one received earlier (an import out of order)
    with the same headers, as ingest/webhooks.py ``copy_event`` records them."""
    delivery = fixture.delivery()
    first = recorded(1, "delivery.received", delivery_data(delivery, understand(delivery)),
                     delivery.received_at, delivery.body)
    other_headers = {**delivery.headers, "x-request-id": "another-attempt"}
    copies = [(delivery.received_at + timedelta(seconds=30), delivery.headers),
              (delivery.received_at + timedelta(seconds=60), other_headers),
              (delivery.received_at - timedelta(minutes=7), delivery.headers)]
    return [first] + [
        recorded(2 + n, COPY, {"source": fixture.source, "first": 1, "headers": headers},
                 at) for n, (at, headers) in enumerate(copies)]


def without_stored_signals(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """The same log as stored before parse-once: no ``parsed`` in the delivery's data."""
    return [dataclasses.replace(e, data={k: v for k, v in e.data.items() if k != "parsed"})
            for e in events]


def fold(events: list[RecordedEvent]) -> tuple[list[tuple[Any, ...]], list[Any]]:
    projection = Projection(engine_config_from(settings_for_tests()))
    pending = Pending()
    projection.apply(events, pending, {1: events[0]})
    changes = projection.engine.take_changes()
    return pending.deliveries, sorted(changes.incidents, key=lambda i: i.id)


@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=ids)
def test_stored_signals_fold_as_re_parsing_does_copies_included(fixture: Fixture) -> None:
    """TIMELINE.md rule 11 and parse once: a delivery and its copies (later, later with
    other headers, earlier) fold to the same incidents and delivery-log rows from the
    stored signals as by re-running the adapter on every event."""
    events = log_with_copies(fixture)
    assert fold(events) == fold(without_stored_signals(events))


def test_a_stored_delivery_and_its_later_copy_are_not_re_parsed_an_earlier_copy_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse once: the adapter runs for neither the stored delivery nor a later copy with
    its headers (only times differ, and a later copy folds none); a copy received earlier
    folds signals timed by its own receipt, so the adapter runs for it (once)."""
    fixture = load_fixture("alertmanager", "firing")
    events = log_with_copies(fixture)
    counting = Counting(monkeypatch, "alertmanager")
    fold([events[0], events[1]])
    assert counting.calls == 0
    fold([events[0], events[3]])
    assert counting.calls == 1
    fold(without_stored_signals(events[:1]))
    assert counting.calls == 2  # stored before parse-once: parsed again


# --- through PostgreSQL: ingest, then rebuild ------------------------------------------

async def ingest(make_client: Any, names: list[str]) -> list[int]:
    """Post recorded Alertmanager deliveries to a server (no projector); their positions."""
    client = await make_client(projector=False)
    positions = []
    for name in names:
        fixture = load_fixture("alertmanager", name)
        response = await client.post(
            "/v1/webhooks/alertmanager", data=fixture.body,
            headers=signed_headers("alertmanager", fixture.body, fixture.headers))
        assert response.status == 202, await response.text()
        positions.append((await response.json())["delivery"])
    return positions


async def rebuilt(database_url: str, pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(database_url)
    try:
        await rebuild(conn, EventStore(pool, notify=False),
                      engine_config_from(settings_for_tests()), batch_size=2)
        rows = await conn.fetch("SELECT id, service, title, status FROM incidents ORDER BY id")
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


def renamed(signal: Signal) -> Signal:
    """The "fixed" adapter: the same states under another service."""
    return dataclasses.replace(signal, service="payments-fixed")


async def test_ingest_stores_the_adapters_signals_and_version_with_the_delivery(
        make_client: Any, pool: asyncpg.Pool) -> None:
    """ARCHITECTURE.md: ingest appends the raw delivery "together with what the adapter
    made of it (its signals, or its error) and the adapter's version, in one append"."""
    (position,) = await ingest(make_client, ["firing"])
    event = await EventStore(pool, notify=False).get(position)
    assert event is not None
    parsed = event.data["parsed"]
    assert parsed["version"] == alertmanager_adapter.ADAPTER_VERSION
    assert (tuple(signal_from_json(s) for s in parsed["signals"])
            == understand(stored_delivery(event)).signals != ())


async def test_a_fixed_adapter_with_a_new_version_corrects_history_on_rebuild(
        make_client: Any, database_url: str, pool: asyncpg.Pool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """"Fixing an adapter and rebuilding still corrects history": deliveries stored by
    version N, the adapter's output changed and its version moved to N + 1, a rebuild
    folds what the new adapter makes of every stored delivery."""
    await ingest(make_client, ["firing", "resolved"])
    before = await rebuilt(database_url, pool)
    assert before
    assert all(service != "payments-fixed" for _, service, _, _ in before)

    counting = Counting(monkeypatch, "alertmanager", change=renamed)
    monkeypatch.setattr(alertmanager_adapter, "ADAPTER_VERSION",
                        alertmanager_adapter.ADAPTER_VERSION + 1)
    after = await rebuilt(database_url, pool)
    assert counting.calls == 2
    assert [service for _, service, _, _ in after] == ["payments-fixed"] * len(before)
    assert [status for _, _, _, status in after] == [status for _, _, _, status in before]
    assert all(title.startswith("payments-fixed: ") for _, _, title, _ in after)


async def test_an_unchanged_version_is_not_re_parsed_on_rebuild(
        make_client: Any, database_url: str, pool: asyncpg.Pool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse once: with the version unchanged, a rebuild folds the stored signals and
    never runs the adapter (an output change without a bump is not seen: the reason a
    change to an adapter's output must bump its version)."""
    await ingest(make_client, ["firing", "resolved"])
    before = await rebuilt(database_url, pool)
    counting = Counting(monkeypatch, "alertmanager", change=renamed)
    after = await rebuilt(database_url, pool)
    assert counting.calls == 0
    assert after == before


async def live_projected(database_url: str, pool: asyncpg.Pool, total: int
                         ) -> list[tuple[Any, ...]]:
    """The live projector (``serve``'s) run until it has folded ``total`` events."""
    projector = Projector(EventStore(pool), database_url,
                          engine_config_from(settings_for_tests()),
                          connect=lambda: connect(database_url), poll_interval=0.05)
    await run_projector_until(projector, total)
    rows = await pool.fetch("SELECT id, service, title, status FROM incidents ORDER BY id")
    return [tuple(r) for r in rows]


async def test_the_live_projector_re_parses_only_what_an_older_adapter_read(
        make_client: Any, database_url: str, pool: asyncpg.Pool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse once, live: a delivery an older adapter version parsed is folded by the
    live projector as the current adapter reads its stored body (ARCHITECTURE.md,
    "Deliveries are the events": "re-parse only deliveries whose adapter version
    changed"), as a rebuild folds it."""
    await ingest(make_client, ["firing", "resolved"])
    counting = Counting(monkeypatch, "alertmanager", change=renamed)
    monkeypatch.setattr(alertmanager_adapter, "ADAPTER_VERSION",
                        alertmanager_adapter.ADAPTER_VERSION + 1)
    after = await live_projected(database_url, pool, 2)
    assert counting.calls == 2
    assert after
    assert [service for _, service, _, _ in after] == ["payments-fixed"] * len(after)


async def test_the_live_projector_folds_current_deliveries_without_the_adapter(
        make_client: Any, database_url: str, pool: asyncpg.Pool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse once, live: with the adapter's version unchanged the projector folds the
    stored signals (the adapter never runs) and ends where a rebuild, which re-reads
    the same log, ends."""
    await ingest(make_client, ["firing", "resolved"])
    counting = Counting(monkeypatch, "alertmanager", change=renamed)
    live = await live_projected(database_url, pool, 2)
    assert counting.calls == 0
    assert live
    assert live == await rebuilt(database_url, pool)
