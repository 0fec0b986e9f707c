"""Incidents to JSON and back: what the read model stores and the API answers.

The JSON is the API's shape (API.md): times RFC 3339 UTC with ``Z``, durations in
seconds. ``incident_from_json`` inverts it exactly, so a draft built from a stored
incident is the draft built from the engine's value.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from ingest.signals import format_time
from projections.model import Incident, Risk, TimelineEntry

_ENTRY_TIMES = {"at", "received_at", "last_repeat_at"}
_INCIDENT_TIMES = {"started_at", "detected_at", "acknowledged_at", "resolved_at"}


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def entry_to_json(entry: TimelineEntry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(TimelineEntry):
        value = getattr(entry, f.name)
        if f.name in _ENTRY_TIMES:
            out[f.name] = _time(value)
        elif f.name == "links":
            out[f.name] = [{"url": url, "title": title} for url, title in value]
        elif f.name == "attributes":
            out[f.name] = dict(value)
        else:
            out[f.name] = value
    return out


def entry_from_json(data: dict[str, Any]) -> TimelineEntry:
    values: dict[str, Any] = {}
    for f in fields(TimelineEntry):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _ENTRY_TIMES:
            value = _parse(value)
        elif f.name == "links":
            value = tuple((link["url"], link.get("title", "")) for link in value)
        elif f.name == "attributes":
            value = tuple(sorted(value.items()))
        values[f.name] = value
    return TimelineEntry(**values)


def incident_summary(incident: Incident) -> dict[str, Any]:
    """The summary fields of API.md, plus the supporting facts, without the timeline."""
    out: dict[str, Any] = {}
    for f in fields(Incident):
        if f.name == "timeline":
            continue
        value = getattr(incident, f.name)
        if f.name in _INCIDENT_TIMES:
            value = _time(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def incident_to_json(incident: Incident) -> dict[str, Any]:
    out = incident_summary(incident)
    out["timeline"] = [entry_to_json(e) for e in incident.timeline]
    return out


def incident_from_json(data: dict[str, Any]) -> Incident:
    values: dict[str, Any] = {}
    for f in fields(Incident):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _INCIDENT_TIMES:
            value = _parse(value)
        elif f.name == "timeline":
            value = tuple(entry_from_json(e) for e in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return Incident(**values)


def risk_to_json(risk: Risk) -> dict[str, Any]:
    return {"service": risk.service, "subject": risk.subject, "kind": risk.kind,
            "reason": risk.reason, "since": _time(risk.since), "position": risk.position}
