"""The engine's state, per service, and its JSON form (``Engine.dump`` / ``Engine.load``).

Everything a later event can depend on lives here and nowhere else: rendered incidents
are a pure function of this state (``projections.timeline``), so a restored engine fed
the rest of the log folds exactly like one fed the whole log.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.manual import ManualEvent, manual_event_from_json, manual_event_to_json
from ingest.signals import format_time
from projections.facts import Fact, FactId, SubjectKey, fact_from_json, fact_to_json, parse_time

FORMAT = 1  # bump when the dump's shape changes; load refuses other formats


@dataclass(frozen=True, slots=True)
class ManualRecord:
    """A manual event as the log placed it, and the incident id it was posted to."""

    position: int
    recorded_at: datetime
    incident_id: str
    event: ManualEvent


@dataclass(slots=True)
class IncidentState:
    """What an incident is made of: its member facts and manual events.

    ``home`` is the service it belongs to (dumped with it); ``services`` are the services
    whose signals join it (its home plus those of incidents merged into it).
    ``version`` counts the manual events posted to this id (its stream's length).
    """

    id: str
    home: str
    title: str
    opened_position: int
    services: set[str]
    facts: dict[FactId, Fact] = field(default_factory=dict)
    manual: list[ManualRecord] = field(default_factory=list)
    version: int = 0
    merged_into: str | None = None
    merged_at: datetime | None = None

    def add_manual(self, record: ManualRecord) -> None:
        insort(self.manual, record, key=lambda r: r.position)


@dataclass(slots=True)
class ServiceState:
    """Per service: subject states, the kept non-failing history, deploys, watermark.

    - ``subjects``: each subject's latest signal by (occurred_at, position, index).
    - ``history``: per subject, non-failing facts (kept: a late failing signal may need
      the recovery that already arrived).
    - ``deploys``: every deploy fact, by (occurred_at, position, index).
    - ``outcomes``: per deploy subject, its latest succeeded/failed/pipeline_failed.
    - ``watermark``: the latest receipt time seen for the service (data time, not a
      clock): retention is measured from it.
    """

    name: str
    watermark: datetime | None = None
    subjects: dict[SubjectKey, Fact] = field(default_factory=dict)
    history: dict[SubjectKey, list[Fact]] = field(default_factory=dict)
    deploys: list[Fact] = field(default_factory=list)
    outcomes: dict[SubjectKey, Fact] = field(default_factory=dict)
    incidents: set[str] = field(default_factory=set)

    def see(self, at: datetime) -> None:
        if self.watermark is None or at > self.watermark:
            self.watermark = at


def _facts(facts: list[Fact]) -> list[dict[str, Any]]:
    return [fact_to_json(f) for f in sorted(facts, key=lambda f: f.key)]


def _record_to_json(record: ManualRecord) -> dict[str, Any]:
    return {
        "position": record.position,
        "recorded_at": format_time(record.recorded_at),
        "incident_id": record.incident_id,
        "type": record.event.type,
        "data": manual_event_to_json(record.event),
    }


def _record_from_json(data: dict[str, Any]) -> ManualRecord:
    return ManualRecord(
        position=int(data["position"]),
        recorded_at=parse_time(data["recorded_at"]),
        incident_id=str(data["incident_id"]),
        event=manual_event_from_json(str(data["type"]), dict(data["data"])),
    )


def incident_to_json(inc: IncidentState) -> dict[str, Any]:
    return {
        "id": inc.id,
        "home": inc.home,
        "title": inc.title,
        "opened_position": inc.opened_position,
        "services": sorted(inc.services),
        "facts": _facts(list(inc.facts.values())),
        "manual": [_record_to_json(r) for r in inc.manual],
        "version": inc.version,
        "merged_into": inc.merged_into,
        "merged_at": None if inc.merged_at is None else format_time(inc.merged_at),
    }


def incident_from_json(data: dict[str, Any]) -> IncidentState:
    facts = [fact_from_json(f) for f in data["facts"]]
    return IncidentState(
        id=str(data["id"]),
        home=str(data["home"]),
        title=str(data["title"]),
        opened_position=int(data["opened_position"]),
        services={str(s) for s in data["services"]},
        facts={f.id: f for f in facts},
        manual=[_record_from_json(r) for r in data["manual"]],
        version=int(data["version"]),
        merged_into=data["merged_into"],
        merged_at=None if data["merged_at"] is None else parse_time(data["merged_at"]),
    )


def service_to_json(svc: ServiceState, incidents: list[IncidentState]) -> dict[str, Any]:
    """JSON values only (str/int/list/dict/None), every list in a fixed order."""
    return {
        "format": FORMAT,
        "service": svc.name,
        "watermark": None if svc.watermark is None else format_time(svc.watermark),
        "subjects": _facts(list(svc.subjects.values())),
        "history": _facts([f for key in sorted(svc.history) for f in svc.history[key]]),
        "deploys": _facts(svc.deploys),
        "outcomes": _facts(list(svc.outcomes.values())),
        "incidents": [incident_to_json(i) for i in sorted(incidents, key=lambda i: i.id)],
    }


def service_from_json(
    name: str, data: dict[str, Any]
) -> tuple[ServiceState, list[IncidentState]]:
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported engine state format: {data.get('format')!r}")
    if data.get("service") != name:
        raise ValueError(f"state of service {data.get('service')!r} loaded as {name!r}")
    svc = ServiceState(name=name)
    if data["watermark"] is not None:
        svc.watermark = parse_time(data["watermark"])
    for fact in map(fact_from_json, data["subjects"]):
        svc.subjects[fact.subject_key] = fact
    for fact in map(fact_from_json, data["history"]):
        svc.history.setdefault(fact.subject_key, []).append(fact)  # dumped in key order
    svc.deploys = [fact_from_json(f) for f in data["deploys"]]
    for fact in map(fact_from_json, data["outcomes"]):
        svc.outcomes[fact.subject_key] = fact
    incidents = [incident_from_json(i) for i in data["incidents"]]
    svc.incidents = {i.id for i in incidents}
    return svc, incidents
