"""An incident's timeline written as row deltas (schema/0007_timeline_rows.sql).

A row's key is the entry's time, its event's position and its rank among the
incident's entries at that (time, position). The timeline is sorted by (time, position,
index in the delivery, phase), so ordering rows by their key gives it back, and an entry
inserted before others moves no row but its siblings at the same (time, position).

The live projector keeps the timeline it last committed per incident
(``WrittenTimelines``): a batch finds the span between the entries the old and new
timelines share at both ends, deletes the rows of that span whose entry left or changed
and copies the changed and new ones, nothing else. An incident it does not remember (a restart, one
evicted to bound memory, a rebuild) has all its rows replaced.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from projections.engine.codec import entry_to_json
from projections.engine.model import Incident, TimelineEntry

RowKey = tuple[datetime, int, int]  # (at, position, rank)
Rows = dict[RowKey, TimelineEntry]
Timeline = tuple[TimelineEntry, ...]

COLUMNS = ("incident_id", "at", "position", "rank", "received_at", "marker", "source",
           "kind", "subject", "state", "text", "repeats", "doc")

# Remembered entries at most, over all incidents (least recently written forgotten
# first, never one the batch being committed wrote: forgetting an incident that every
# batch changes would rewrite all its rows each time). The entries are the engine's own
# objects while it holds the incident (its render keeps them), so remembering one costs
# a pointer; an incident retention moved out of the engine keeps its entries alive here
# until it is forgotten.
MOST_REMEMBERED = 2_000_000


def keyed(timeline: Sequence[TimelineEntry]) -> Rows:
    rows: Rows = {}
    previous: tuple[datetime, int] | None = None
    rank = 0
    for entry in timeline:
        here = (entry.at, entry.position)
        rank = rank + 1 if here == previous else 0
        previous = here
        rows[(entry.at, entry.position, rank)] = entry
    return rows


def row(incident_id: str, key: RowKey, e: TimelineEntry) -> tuple[Any, ...]:
    return (incident_id, *key, e.received_at, e.marker, e.source, e.kind, e.subject, e.state,
            e.text, e.repeats, orjson.dumps(entry_to_json(e)).decode())


@dataclass
class Delta:
    """What one batch changes in ``timeline_entries``."""

    replaced: list[str] = field(default_factory=list)  # incidents whose rows all go
    deleted: list[tuple[str, RowKey]] = field(default_factory=list)
    added: list[tuple[Any, ...]] = field(default_factory=list)
    # The timelines written, to remember once the transaction commits.
    timelines: dict[str, Timeline] = field(default_factory=dict)


def full(incidents: Iterable[Incident]) -> Delta:
    """Every row of each incident, replacing what it had (a rebuild; an incident the
    projector does not remember)."""
    delta = Delta()
    for inc in incidents:
        _replace(delta, inc)
    return delta


def _replace(delta: Delta, inc: Incident) -> None:
    delta.replaced.append(inc.id)
    delta.added += [row(inc.id, key, e) for key, e in keyed(inc.timeline).items()]
    delta.timelines[inc.id] = inc.timeline


def _same_prefix(a: Timeline, b: Timeline, most: int) -> int:
    """The length of the longest common prefix of ``a`` and ``b``, at most ``most``.
    Tuple equality runs in C and takes an identical entry as equal without comparing
    fields; halving the range compares each entry about twice."""
    if a[:most] == b[:most]:
        return most
    lo, hi = 0, most  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _same_suffix(a: Timeline, b: Timeline, most: int) -> int:
    return _same_prefix(a[::-1], b[::-1], most)


def _group(e: TimelineEntry) -> tuple[datetime, int]:
    return (e.at, e.position)


def _changed_span(old: Timeline, new: Timeline) -> tuple[int, int]:
    """(p, s): ``old`` and ``new`` share their first ``p`` and last ``s`` entries, and
    both spans end on a boundary between (at, position) groups in both timelines, so the
    shared entries keep their rank and key."""
    p = _same_prefix(old, new, min(len(old), len(new)))
    while p > 0 and any(p < len(t) and _group(t[p]) == _group(t[p - 1]) for t in (old, new)):
        p -= 1
    s = _same_suffix(old, new, min(len(old), len(new)) - p)
    while s > 0 and any(len(t) - s - 1 >= p and _group(t[len(t) - s - 1]) == _group(t[len(t) - s])
                        for t in (old, new)):
        s -= 1
    return p, s


def _group_rows(timeline: Timeline, group: tuple[datetime, int]) -> Rows:
    """The rows of one (at, position) group of a timeline (or of a span of one that
    starts on a group boundary), by key."""
    lo = bisect_left(timeline, group, key=_group)
    hi = bisect_right(timeline, group, lo=lo, key=_group)
    return {(*group, rank): e for rank, e in enumerate(timeline[lo:hi])}


class WrittenTimelines:
    """The timelines last committed, per incident (the live projector's)."""

    def __init__(self, most: int = MOST_REMEMBERED) -> None:
        self.most = most
        self._timelines: OrderedDict[str, Timeline] = OrderedDict()
        self._count = 0

    def delta(self, incidents: Iterable[Incident]) -> Delta:
        delta = Delta()
        for inc in incidents:
            before = self._timelines.get(inc.id)
            if before is None:
                _replace(delta, inc)
                continue
            p, s = _changed_span(before, inc.timeline)
            old, now = before[p:len(before) - s], inc.timeline[p:len(inc.timeline) - s]
            # Between them, only the (at, position) groups holding an entry that is not
            # in the other timeline (as the same object) can have changed rows.
            old_ids, now_ids = set(map(id, old)), set(map(id, now))
            groups = {_group(e) for e in old if id(e) not in now_ids}
            groups.update(_group(e) for e in now if id(e) not in old_ids)
            for group in sorted(groups):
                was, is_ = _group_rows(old, group), _group_rows(now, group)
                for key, entry in was.items():
                    e = is_.get(key)
                    if e is None or (e is not entry and e != entry):
                        delta.deleted.append((inc.id, key))
                delta.added += [row(inc.id, key, e) for key, e in is_.items()
                                if (w := was.get(key)) is None or (e is not w and e != w)]
            delta.timelines[inc.id] = inc.timeline
        return delta

    def committed(self, delta: Delta) -> None:
        """Remember what ``delta`` wrote, once its transaction committed."""
        for incident_id, timeline in delta.timelines.items():
            old = self._timelines.pop(incident_id, None)
            self._count += len(timeline) - (0 if old is None else len(old))
            self._timelines[incident_id] = timeline
        while self._count > self.most and len(self._timelines) > len(delta.timelines):
            _, dropped = self._timelines.popitem(last=False)
            self._count -= len(dropped)


_DELETE_ROWS = """
DELETE FROM timeline_entries t
USING unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::int[]) AS d(id, at, pos, rank)
WHERE t.incident_id = d.id AND t.at = d.at AND t.position = d.pos AND t.rank = d.rank
"""


async def write(conn: asyncpg.Connection, delta: Delta) -> None:
    """Apply ``delta`` (the caller holds the transaction)."""
    if delta.replaced:
        await conn.execute("DELETE FROM timeline_entries WHERE incident_id = ANY($1::text[])",
                           delta.replaced)
    if delta.deleted:
        await conn.execute(_DELETE_ROWS, *(list(c) for c in zip(
            *[(i, *key) for i, key in delta.deleted], strict=True)))
    if delta.added:
        await conn.copy_records_to_table("timeline_entries", records=delta.added,
                                         columns=list(COLUMNS))
