"""Incidents to JSON and back: what the read model stores and the API answers.

The JSON is the API's shape (API.md): times RFC 3339 UTC with ``Z``, durations in
seconds. ``incident_from_json`` inverts it exactly, so a draft built from a stored
incident is the draft built from the engine's value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from datetime import datetime
from typing import Any

import orjson

from ingest.signals import format_time
from projections.engine.model import Incident, Risk, TimelineEntry

_ENTRY_TIMES = {"at", "received_at", "last_repeat_at"}
_INCIDENT_TIMES = {"started_at", "detected_at", "acknowledged_at", "resolved_at"}

# The codec runs per stored incident and per request: the dataclasses' fields are looked
# up once here (``dataclasses.fields()`` per call was a third of its time), and each
# field gets its converter, in the field order that is the API's key order.
_Convert = Callable[[Any], Any] | None


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _parse(value: str | None) -> datetime | None:
    # Python 3.11 reads the ``Z`` (UTC, the same tzinfo as ``+00:00``).
    return None if value is None else datetime.fromisoformat(value)


def _links_out(value: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"url": url, "title": title} for url, title in value]


def _links_in(value: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((link["url"], link.get("title", "")) for link in value)


def _attributes_in(value: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(value.items()))


_ENTRY_OUT: dict[str, _Convert] = {"links": _links_out, "attributes": dict}
_ENTRY_IN: dict[str, _Convert] = {"links": _links_in, "attributes": _attributes_in}


def _entry_out(name: str) -> _Convert:
    return _time if name in _ENTRY_TIMES else _ENTRY_OUT.get(name)


def _entry_in(name: str) -> _Convert:
    return _parse if name in _ENTRY_TIMES else _ENTRY_IN.get(name)


_ENTRY_ENCODE = tuple((f.name, _entry_out(f.name)) for f in fields(TimelineEntry))
_ENTRY_DECODE = tuple((f.name, _entry_in(f.name)) for f in fields(TimelineEntry))
_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))


def entry_to_json(entry: TimelineEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) if convert is None else convert(getattr(entry, name))
            for name, convert in _ENTRY_ENCODE}


def entry_from_json(data: dict[str, Any]) -> TimelineEntry:
    values = {name: data[name] if convert is None else convert(data[name])
              for name, convert in _ENTRY_DECODE if name in data}
    return TimelineEntry(**values)


def incident_summary(incident: Incident) -> dict[str, Any]:
    """The summary fields of API.md, plus the supporting facts, without the timeline."""
    out: dict[str, Any] = {}
    for name in _INCIDENT_FIELDS:
        if name == "timeline":
            continue
        value = getattr(incident, name)
        if name in _INCIDENT_TIMES:
            value = _time(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def incident_to_json(incident: Incident) -> dict[str, Any]:
    out = incident_summary(incident)
    out["timeline"] = [entry_to_json(e) for e in incident.timeline]
    return out


def incident_from_json(data: dict[str, Any]) -> Incident:
    values: dict[str, Any] = {}
    for name in _INCIDENT_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name in _INCIDENT_TIMES:
            value = _parse(value)
        elif name == "timeline":
            value = tuple([entry_from_json(e) for e in value])
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return Incident(**values)


def _defaults(cls: type[Any]) -> dict[str, Any]:
    return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
            for f in fields(cls) if f.default is not MISSING}


_ENTRY_DEFAULTS = _defaults(TimelineEntry)
_INCIDENT_DEFAULTS = _defaults(Incident)
_ENTRY_NAMES = tuple(name for name, _ in _ENTRY_ENCODE)


def _stored_entry(data: dict[str, Any]) -> dict[str, Any]:
    out = {name: data[name] if name in data else _ENTRY_DEFAULTS[name]
           for name in _ENTRY_NAMES}
    out["links"] = [{"url": link["url"], "title": link.get("title", "")}
                    for link in out["links"]]
    out["attributes"] = dict(sorted(out["attributes"].items()))
    return out


# An incident with its timeline, as stored (schema/0007_timeline_rows.sql): the row's
# document, which has no timeline, and the timeline's rows aggregated in order.
READ_DOCUMENT = ("SELECT doc::text AS doc, timeline::text AS timeline "
                 "FROM incident_documents WHERE id = $1")


def stored_document(doc: str, timeline: str) -> dict[str, Any]:
    """The API's JSON of a stored incident (``READ_DOCUMENT``'s two columns)."""
    data = orjson.loads(doc)
    data["timeline"] = orjson.loads(timeline)
    return stored_to_json(data)


def stored_to_json(data: dict[str, Any]) -> dict[str, Any]:
    """A stored document (``incidents.doc``: jsonb keeps its own key order) as the API
    answers it, without building the dataclasses: ``incident_to_json(incident_from_json(
    data))`` with the same keys in the same order and the same values, for any document
    ``incident_to_json`` wrote (its times are already in ``format_time``'s form, which
    reading and writing again would reproduce). Fields a document lacks (written before
    they existed) get their defaults; a missing required one is a ``KeyError``."""
    out: dict[str, Any] = {}
    for name in _INCIDENT_FIELDS:
        if name == "timeline":
            out[name] = [_stored_entry(e) for e in data.get(name, ())]
        elif name in data:
            out[name] = data[name]
        else:
            out[name] = _INCIDENT_DEFAULTS[name]
    return out


def risk_to_json(risk: Risk) -> dict[str, Any]:
    return {"service": risk.service, "subject": risk.subject, "kind": risk.kind,
            "reason": risk.reason, "since": _time(risk.since), "position": risk.position}
