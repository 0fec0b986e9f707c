"""An incident's timeline written as row deltas (schema/0007_timeline_rows.sql).

A row's key is the entry's time, its event's position and its rank among the
incident's entries at that (time, position). The timeline is sorted by (time, position,
index in the delivery, phase), so ordering rows by their key gives it back, and an entry
inserted before others moves no row but its siblings at the same (time, position).

The live projector keeps the entries it last committed per incident
(``WrittenTimelines``): a batch deletes the rows whose entry left or changed and copies
the changed and new ones, nothing else. An incident it does not remember (a restart, one
evicted to bound memory, a rebuild) has all its rows replaced.
"""

from __future__ import annotations

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

COLUMNS = ("incident_id", "at", "position", "rank", "received_at", "marker", "source",
           "kind", "subject", "state", "text", "repeats", "doc")

# Remembered entries at most, over all incidents (least recently written forgotten
# first): an alert storm's incident of 20,000 entries is about 20 MB of them.
MOST_REMEMBERED = 200_000


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
    remembered: dict[str, Rows] = field(default_factory=dict)  # to remember once committed


def full(incidents: Iterable[Incident]) -> Delta:
    """Every row of each incident, replacing what it had (a rebuild; an incident the
    projector does not remember)."""
    delta = Delta()
    for inc in incidents:
        _replace(delta, inc.id, keyed(inc.timeline))
    return delta


def _replace(delta: Delta, incident_id: str, rows: Rows) -> None:
    delta.replaced.append(incident_id)
    delta.added += [row(incident_id, key, e) for key, e in rows.items()]
    delta.remembered[incident_id] = rows


class WrittenTimelines:
    """The timeline rows last committed, per incident (the live projector's)."""

    def __init__(self, most: int = MOST_REMEMBERED) -> None:
        self.most = most
        self._rows: OrderedDict[str, Rows] = OrderedDict()
        self._count = 0

    def delta(self, incidents: Iterable[Incident]) -> Delta:
        delta = Delta()
        for inc in incidents:
            now = keyed(inc.timeline)
            before = self._rows.get(inc.id)
            if before is None:
                _replace(delta, inc.id, now)
                continue
            for key, old in before.items():
                new = now.get(key)
                if new is None or (new is not old and new != old):
                    delta.deleted.append((inc.id, key))
            delta.added += [row(inc.id, key, e) for key, e in now.items()
                            if (was := before.get(key)) is None
                            or (e is not was and e != was)]
            delta.remembered[inc.id] = now
        return delta

    def committed(self, delta: Delta) -> None:
        """Remember what ``delta`` wrote, once its transaction committed."""
        for incident_id, rows in delta.remembered.items():
            old = self._rows.pop(incident_id, None)
            self._count += len(rows) - (0 if old is None else len(old))
            self._rows[incident_id] = rows
        while self._count > self.most and len(self._rows) > 1:
            _, dropped = self._rows.popitem(last=False)
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
