"""Timelines written as row deltas (issue 11, item 4; schema/0007_timeline_rows.sql).

What is written equals a full rewrite (tests/projections/test_rebuild_pipeline.py,
``test_set_wise_writes_equal_per_row_writes``, and the live-against-rebuild tables of
test_projector_determinism.py); these tests state the other half of the contract: a
batch that changes a few entries of a large incident writes those entries, not the
incident's whole timeline, and the rows' keys order the timeline as TIMELINE.md does
(by time, then position in the log)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.signals import Signal
from projections.engine.fold import Engine
from projections.engine.model import Incident, TimelineEntry
from projections.runtime.projection import engine_config
from projections.runtime.timeline_rows import WrittenTimelines, full, keyed

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SUBJECTS = 300


def alert(n: int, at: datetime, state: str = "failing") -> Signal:
    return Signal(source="alertmanager", kind="alert", subject=f"HighLatency instance={n}",
                  state=state, occurred_at=at, notified_at=at + timedelta(seconds=30),  # type: ignore[arg-type]
                  service="checkout", severity="P2", summary="p99 latency over 2 s")


def storm() -> tuple[Engine, Incident, WrittenTimelines]:
    """One incident of SUBJECTS failing alerts (an alert storm), its rows committed."""
    engine = Engine(engine_config())
    for n in range(SUBJECTS):
        at = T0 + timedelta(seconds=10 * n)
        engine.apply_delivery(n + 1, at + timedelta(seconds=30), [alert(n, at)])
    (incident,) = engine.take_changes().incidents
    written = WrittenTimelines()
    written.committed(written.delta([incident]))
    return engine, incident, written


def test_a_new_entry_writes_its_row_only() -> None:
    engine, before, written = storm()
    at = T0 + timedelta(seconds=10 * SUBJECTS)
    engine.apply_delivery(SUBJECTS + 1, at + timedelta(seconds=30), [alert(SUBJECTS, at)])
    (after,) = engine.take_changes().incidents
    delta = written.delta([after])
    assert len(after.timeline) == len(before.timeline) + 1
    assert delta.replaced == []
    assert delta.deleted == []
    assert [(r[1], r[2]) for r in delta.added] == [(at, SUBJECTS + 1)]


def test_an_earlier_entry_moves_no_other_row() -> None:
    """A late fact dated inside the timeline (TIMELINE.md: ordered by the tools' times,
    never by arrival) inserts one row; the rows after it keep their keys."""
    engine, _before, written = storm()
    at = T0 + timedelta(seconds=10 * (SUBJECTS // 2) + 5)
    engine.apply_delivery(SUBJECTS + 1, T0 + timedelta(hours=2), [alert(10_000, at)])
    (after,) = engine.take_changes().incidents
    delta = written.delta([after])
    assert delta.deleted == []
    assert [(r[1], r[2]) for r in delta.added] == [(at, SUBJECTS + 1)]


def test_a_repeat_rewrites_the_entry_it_counts() -> None:
    """A repeat changes the count on its run's entry (TIMELINE.md rule 4): that row is
    deleted and written again, the others stay."""
    engine, _before, written = storm()
    at = T0 + timedelta(seconds=10 * 7)
    engine.apply_delivery(SUBJECTS + 1, T0 + timedelta(hours=1), [alert(7, at)])
    (after,) = engine.take_changes().incidents
    delta = written.delta([after])
    assert [key[:2] for _, key in delta.deleted] == [(at, 8)]
    assert [(r[1], r[2], r[11]) for r in delta.added] == [(at, 8, 1)]  # repeats: 1


def test_an_incident_not_remembered_is_written_whole() -> None:
    """A restarted projector (or one that forgot the incident to bound memory) replaces
    every row of the incident, as a rebuild does."""
    _, incident, _ = storm()
    delta = WrittenTimelines().delta([incident])
    assert delta.replaced == [incident.id]
    assert delta.added == full([incident]).added
    assert len(delta.added) == len(incident.timeline)


def test_memory_is_bounded_by_forgetting_the_least_recently_written() -> None:
    _, incident, _ = storm()
    written = WrittenTimelines(most=len(incident.timeline))
    written.committed(written.delta([incident]))
    assert written.delta([incident]).added == []  # remembered: nothing to write
    other = replace(incident, id="inc_other")
    written.committed(written.delta([other]))
    assert written.delta([other]).added == []
    assert written.delta([incident]).replaced == [incident.id]  # forgotten


def test_row_keys_order_the_timeline() -> None:
    """Sorting rows by (at, position, rank), as ``incident_documents`` reads them, gives
    the timeline in its order, entries sharing an instant and a position included (a
    failure and its detection at the same time)."""
    engine = Engine(engine_config())
    at = T0
    same = Signal(source="alertmanager", kind="alert", subject="DiskFull", state="failing",
                  occurred_at=at, notified_at=at, service="checkout", severity="P1")
    engine.apply_delivery(1, at, [same, alert(1, at)])
    (incident,) = engine.take_changes().incidents
    rows = keyed(incident.timeline)
    assert len(rows) == len(incident.timeline)
    assert [rows[k] for k in sorted(rows)] == list(incident.timeline)
    assert any(k[2] > 0 for k in rows)  # this timeline has entries sharing a key


def _entry(at: int, position: int, text: str) -> TimelineEntry:
    return TimelineEntry(at=T0 + timedelta(seconds=at), received_at=T0, position=position,
                         marker=None, source="alertmanager", kind="alert", subject="s",
                         state="failing", text=text)


_ENTRIES = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4), st.sampled_from("abc")),
                    max_size=14)


@settings(max_examples=400, deadline=None)
@given(old=_ENTRIES, edits=_ENTRIES, drop=st.sets(st.integers(0, 13)), keep=st.booleans())
def test_a_delta_applied_to_the_rows_gives_the_new_timeline(
    old: list[tuple[int, int, str]], edits: list[tuple[int, int, str]], drop: set[int],
    keep: bool,
) -> None:
    """Whatever changed between two timelines (entries added anywhere, removed, or
    changed in place, many at one (at, position)), the old rows minus the deleted plus
    the added are exactly the new timeline's rows."""
    before = tuple(sorted((_entry(*e) for e in old), key=lambda e: (e.at, e.position)))
    kept = [e for i, e in enumerate(before) if i not in drop]
    # Entries kept as the same objects (what the engine's render cache gives) or as
    # equal copies (a fresh render).
    kept = kept if keep else [replace(e) for e in kept]
    after = tuple(sorted([*kept, *(_entry(*e) for e in edits)],
                         key=lambda e: (e.at, e.position)))
    inc = Incident(id="inc_a", title="t", service="checkout", severity="P2", status="open",
                   started_at=T0, detected_at=None, acknowledged_at=None, resolved_at=None,
                   detection_latency_seconds=None, duration_seconds=None,
                   detected_by="monitor", detection_verdict="ok", version=0, timeline=before)
    written = WrittenTimelines()
    written.committed(written.delta([inc]))
    delta = written.delta([replace(inc, timeline=after)])
    rows = {(r[1], r[2], r[3]): r for r in full([inc]).added}
    for _, key in delta.deleted:
        del rows[key]
    for r in delta.added:
        assert (r[1], r[2], r[3]) not in rows  # deleted first, or new
        rows[(r[1], r[2], r[3])] = r
    assert rows == {(r[1], r[2], r[3]): r for r in full([replace(inc, timeline=after)]).added}


def test_the_incidents_a_batch_wrote_are_never_the_ones_forgotten() -> None:
    """Over the memory bound, forgetting an incident the committed batch wrote would
    have the next batch rewrite all its rows (and, with every storm incident changing
    each batch, every batch rewrite all of them)."""
    _, incident, _ = storm()
    others = [replace(incident, id=f"inc_{n}") for n in range(3)]
    written = WrittenTimelines(most=len(incident.timeline))  # room for one
    written.committed(written.delta(others))
    assert all(written.delta([o]).added == [] for o in others)
