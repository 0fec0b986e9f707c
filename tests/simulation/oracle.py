"""The oracle: from the world's ground truth and what each monitor's payloads state, the
incidents Hindsight must show, and the check of an answer against them.

Per service, the reports' failing periods (``started`` to ``resolved``, open when not
resolved) grouped by TIMELINE.md rules 1 and 2: a period that starts while an incident is
open, or less than the reopen window after it resolved, joins it; otherwise it opens a
new one. Outages are ``OUTAGE_GAP`` apart, so each reported outage is one incident
unless one of its monitors tells of it only after the others have been recovered for
longer than the reopen window (a receipt-dated cron alert, say): then the rules make two
incidents, and so does the oracle. Each incident has:

- ``started_at``: the earliest ``started`` of its reports (the four moments, "started_at:
  the earliest occurred_at of the incident's failing signals");
- ``detected_at``: the earliest ``detected`` (the earliest ``notified_at``; rule 11: of
  duplicate copies, the earliest receipt);
- ``acknowledged_at``: the earliest acknowledgement any report carries, else None;
- ``resolved_at``: the latest ``resolved`` when every report recovered (rule 3: the
  incident resolves when every subject that failed in it is ``ok``), else None (open).

Nothing here reads Hindsight's code: it is the contract restated over the world.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingest.signals import format_time
from tests.scenarios.payloads import Recorded
from tests.simulation.world import Report

MOMENTS = ("started_at", "detected_at", "acknowledged_at", "resolved_at")
REOPEN_WINDOW = timedelta(minutes=15)  # the servers' and the in-process fold's default


@dataclass(frozen=True)
class Moments:
    """An incident's four moments (TIMELINE.md "The four moments")."""

    started_at: datetime | None
    detected_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, incident: Any) -> Moments:
        """From an ``Incident`` (in process) or an API answer (times as RFC 3339)."""
        def get(name: str) -> datetime | None:
            value = incident[name] if isinstance(incident, Mapping) else getattr(incident, name)
            if isinstance(value, str):
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            return value  # type: ignore[no-any-return]
        return cls(*(get(name) for name in MOMENTS))

    def __str__(self) -> str:
        return "  ".join(f"{name.removesuffix('_at')}={_show(getattr(self, name))}"
                         for name in MOMENTS)


def _show(value: datetime | None) -> str:
    return "-" if value is None else format_time(value)


def expected_incident(reports: Sequence[Report]) -> Moments:
    """The incident of one outage, from every report of it (at least one)."""
    acks = [r.acknowledged for r in reports if r.acknowledged is not None]
    resolutions = [r.resolved for r in reports]
    return Moments(
        started_at=min(r.started for r in reports),
        detected_at=min(r.detected for r in reports),
        acknowledged_at=min(acks) if acks else None,
        resolved_at=(max(t for t in resolutions if t is not None)
                     if all(t is not None for t in resolutions) else None),
    )


def expected(reports: Iterable[Report],
             reopen_window: timedelta = REOPEN_WINDOW) -> dict[str, list[Moments]]:
    """Per service, its incidents in ``started_at`` order."""
    by_service: dict[str, list[Report]] = {}
    for report in reports:
        by_service.setdefault(report.outage.service, []).append(report)
    return {service: [expected_incident(group)
                      for group in incidents_of(of_service, reopen_window)]
            for service, of_service in sorted(by_service.items())}


def incidents_of(reports: Sequence[Report], reopen_window: timedelta) -> list[list[Report]]:
    """Rules 1 and 2 over one service's failing periods: in start order, a period joins
    the current incident while that one is open or resolved less than ``reopen_window``
    before the period starts."""
    groups: list[list[Report]] = []
    until: datetime | None = None  # the current incident's resolution; None while open
    for report in sorted(reports, key=lambda r: (r.started, r.detected)):
        if groups and (until is None or report.started < until + reopen_window):
            groups[-1].append(report)
            until = None if until is None or report.resolved is None \
                else max(until, report.resolved)
        else:
            groups.append([report])
            until = report.resolved
    return groups


def in_order(incidents: Iterable[Moments]) -> list[Moments]:
    """By ``started_at`` (an incident always has one; None sorts last, to be shown)."""
    return sorted(incidents, key=lambda m: (m.started_at is None, m.started_at or datetime.min))


def mismatch(expect: Sequence[Moments], actual: Sequence[Moments]) -> bool:
    return in_order(expect) != in_order(actual)


def explain(seed: int, service: str, expect: Sequence[Moments], actual: Sequence[Moments],
            deliveries: Sequence[Recorded], variant: str = "",
            monitors: Sequence[str] = ()) -> str:
    """What a failure needs to be debugged and turned into a named regression example."""
    lines = [f"world seed={seed}{f' ({variant})' if variant else ''}: service {service} "
             f"has {len(actual)} incidents, the oracle expects {len(expect)}",
             f"monitors: {', '.join(monitors) or '?'}",
             "expected:", *(f"  {m}" for m in expect),
             "actual:", *(f"  {m}" for m in in_order(actual)),
             f"deliveries ({len(deliveries)}, by receipt):"]
    lines += [f"  {d.source:12} {format_time(d.received_at)}  {d.body[:200]!r}"
              for d in sorted(deliveries, key=lambda d: d.received_at)]
    return "\n".join(lines)


def check(seed: int, reports: Iterable[Report], actual: Mapping[str, Sequence[Moments]],
          deliveries: Mapping[str, Sequence[Recorded]], variant: str = "",
          monitors: Mapping[str, Sequence[str]] | None = None) -> None:
    """Every service of the world (the keys of ``deliveries``: each service's own) shows
    exactly the oracle's incidents, to the ms; else AssertionError saying how not."""
    want = expected(reports)
    for service in sorted(deliveries):
        got = actual.get(service, [])
        expect = want.get(service, [])
        if mismatch(expect, got):
            raise AssertionError(explain(seed, service, expect, got, deliveries[service],
                                         variant, (monitors or {}).get(service, ())))
