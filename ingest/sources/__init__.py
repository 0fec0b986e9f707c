"""One adapter per monitoring tool, behind one seam: ``parse(delivery) -> list[Signal]``.

An adapter is pure (no I/O, no clock). It raises ``BodyError`` when the body is not
JSON/form data and ``MappingError`` when it parsed but cannot be mapped; a tool's
set-up or test message maps to no signals.

Parse once. Ingest runs the adapter to answer, and stores what it made of the delivery
with the delivery (``stored_understanding``: outcome, error, signals in a compact JSON
form, and the adapter's version). The projector and ``hindsight rebuild`` fold those
stored signals and re-run the adapter only for a delivery whose stored version differs
from the module's ``ADAPTER_VERSION`` (or that has none: stored before parse-once).

Every adapter module declares ``ADAPTER_VERSION``. **Bump it in the same commit as any
change to what ``parse`` returns** for some delivery (a signal added, dropped or read
differently, a new error): that is what makes the next rebuild re-parse the old
deliveries of that source, so a fixed adapter still corrects history. A change that
leaves every output equal (a refactor, a faster parse) needs no bump. Forgetting the
bump leaves history as the old adapter read it.

A copy (another receipt of a stored delivery, folded with its own receipt time) relies
on one more rule of the seam: an adapter's outcome, error, number of signals and each
signal's source, subject and service hint depend on the body and headers only, never on
``received_at`` (times, summaries and attributes may).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import import_module
from types import ModuleType
from typing import Any, Literal, TypeGuard

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Link, Signal, format_time

Adapter = Callable[[Delivery], list[Signal]]

# Source name in the URL -> module in this package.
SOURCE_MODULES: dict[str, str] = {
    "alertmanager": "alertmanager",
    "grafana": "grafana",
    "uptime-kuma": "uptime_kuma",
    "uptimerobot": "uptimerobot",
    "betterstack": "betterstack",
    "healthchecks": "healthchecks",
    "cronitor": "cronitor",
    "github": "github",
    "gitlab": "gitlab",
    "argocd": "argocd",
    "pagerduty": "pagerduty",
    "native": "native",
    "vercel": "vercel",
    "azure-monitor": "azure_monitor",
    "google-cloud-monitoring": "google_cloud_monitoring",
    "cloudwatch": "cloudwatch",
    "checkly": "checkly",
    "pingdom": "pingdom",
    "gatus": "gatus",
    "datadog": "datadog",
    "sentry": "sentry",
    "opsgenie": "opsgenie",
}
SOURCES: tuple[str, ...] = tuple(SOURCE_MODULES)


_MODULES: dict[str, ModuleType] = {}


def _module(source: str) -> ModuleType:
    module = _MODULES.get(source)
    if module is None:
        module = _MODULES[source] = import_module(f"ingest.sources.{SOURCE_MODULES[source]}")
    return module


def adapter_for(source: str) -> Adapter:
    """The ``parse`` function of a known source; KeyError for an unknown one."""
    parse: Adapter = _module(source).parse
    return parse


def adapter_version(source: str) -> int | None:
    """The current ``ADAPTER_VERSION`` of a source's adapter; None for an unknown one."""
    if source not in SOURCE_MODULES:
        return None
    version: int = _module(source).ADAPTER_VERSION
    return version


def parse(delivery: Delivery) -> list[Signal]:
    return adapter_for(delivery.source)(delivery)


Outcome = Literal["understood", "invalid", "unmapped", "unsupported"]

# Content types a monitoring tool may send; anything else is "unsupported" (HTTP 415).
ACCEPTED_TYPES = frozenset(
    {"", "application/json", "text/json", "application/x-www-form-urlencoded", "text/plain",
     "multipart/form-data"}
)
HTTP_STATUS: dict[Outcome, int] = {"understood": 202, "invalid": 400, "unmapped": 422,
                                   "unsupported": 415}


@dataclass(frozen=True, slots=True)
class Understanding:
    outcome: Outcome
    error: str | None
    signals: tuple[Signal, ...]

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.outcome]


def understand(delivery: Delivery) -> Understanding:
    """What a delivery says, as ingest answers it and the projector folds it. Never
    raises: an adapter bug makes the delivery "unmapped" (kept, and fixed by a rebuild
    once the adapter is), never an error for the sender."""
    ctype = delivery.content_type
    if ctype not in ACCEPTED_TYPES and not ctype.endswith("+json"):
        return Understanding("unsupported", f"unsupported content type {ctype!r}", ())
    try:
        signals = tuple(parse(delivery))
    except BodyError as exc:
        return Understanding("invalid", _storable(str(exc)), ())
    except MappingError as exc:
        return Understanding("unmapped", _storable(str(exc)), ())
    except Exception as exc:
        logging.getLogger("hindsight.ingest").exception("adapter failed: %s", delivery.source)
        return Understanding(
            "unmapped",
            f"the {delivery.source} adapter could not read this payload ({type(exc).__name__})",
            (),
        )
    if _may_hold_nul(delivery.body):
        signals = tuple(_without_nul(s) for s in signals)
    return Understanding("understood", None, signals)


# U+0000 cannot be stored in PostgreSQL's text or jsonb. A payload may carry it (JSON's
# ``\u0000``, form encoding's ``%00``, a raw NUL byte); the raw body keeps it (bytea), and
# what we read of it gets U+FFFD instead, so the delivery is stored, answered and folded
# like any other. The check is on the body, so the common case costs three scans.
_REPLACEMENT = "\ufffd"


def _may_hold_nul(body: bytes) -> bool:
    return b"\x00" in body or b"%00" in body or b"\\u0000" in body.lower()


def _storable(text: str) -> str:
    return text.replace("\x00", _REPLACEMENT) if "\x00" in text else text


def _storable_pairs(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((_storable(key), _storable(value)) for key, value in items)


def _without_nul(signal: Signal) -> Signal:
    return replace(
        signal, subject=_storable(signal.subject), summary=_storable(signal.summary),
        service=None if signal.service is None else _storable(signal.service),
        action=None if signal.action is None else _storable(signal.action),
        links=tuple(Link(_storable(link.url), _storable(link.title)) for link in signal.links),
        labels=_storable_pairs(signal.labels),
        attributes=_storable_pairs(signal.attributes))


def signal_data(signal: Signal, times: dict[datetime, str] | None = None) -> dict[str, Any]:
    """A signal as stored with its delivery: ``Signal.to_json`` without the keys that
    hold their default, labels and attributes as ``[key, value]`` pairs
    (``projections.engine.facts.signal_from_json`` reads both forms). ``times`` memoizes
    ``format_time`` across the signals of one delivery (they share their receipt)."""
    memo = {} if times is None else times
    occurred = memo.get(signal.occurred_at)
    if occurred is None:
        occurred = memo[signal.occurred_at] = format_time(signal.occurred_at)
    data: dict[str, Any] = {"source": signal.source, "kind": signal.kind,
                            "subject": signal.subject, "state": signal.state,
                            "occurred_at": occurred}
    if signal.notified_at != signal.occurred_at:
        notified = memo.get(signal.notified_at)
        if notified is None:
            notified = memo[signal.notified_at] = format_time(signal.notified_at)
        data["notified_at"] = notified
    if signal.service is not None:
        data["service"] = signal.service
    if signal.severity is not None:
        data["severity"] = signal.severity
    if signal.summary:
        data["summary"] = signal.summary
    if signal.time_source != "source":
        data["time_source"] = signal.time_source
    if signal.started_at is not None:
        data["started_at"] = format_time(signal.started_at)
    if signal.action is not None:
        data["action"] = signal.action
    if signal.links:
        data["links"] = [{"url": link.url, "title": link.title} for link in signal.links]
    # Pairs, not objects: the event log's jsonb reorders an object's keys, and the
    # order of labels and attributes is the adapter's (signal_from_json reads both).
    if signal.labels:
        data["labels"] = signal.labels
    if signal.attributes:
        data["attributes"] = signal.attributes
    return data


def signal_json(data: dict[str, Any]) -> dict[str, Any]:
    """``Signal.to_json`` of a stored signal (``signal_data``), without reading its
    times again: what ingest answers, built from what it stores."""
    occurred = data["occurred_at"]
    return {
        "source": data["source"], "kind": data["kind"], "subject": data["subject"],
        "state": data["state"], "occurred_at": occurred,
        "notified_at": data.get("notified_at", occurred), "service": data.get("service"),
        "severity": data.get("severity"), "summary": data.get("summary", ""),
        "time_source": data.get("time_source", "source"),
        "started_at": data.get("started_at"), "action": data.get("action"),
        "links": data.get("links", []), "labels": dict(data.get("labels", ())),
        "attributes": dict(data.get("attributes", ())),
    }


def stored_understanding(source: str, understood: Understanding) -> dict[str, Any]:
    """What ingest stores with a delivery (the ``parsed`` key of its event data):
    ``{"version": ADAPTER_VERSION, "outcome": ..., "error": ... (only when one),
    "signals": [signal_data...]}``."""
    times: dict[datetime, str] = {}
    stored: dict[str, Any] = {"version": adapter_version(source), "outcome": understood.outcome,
                              "signals": [signal_data(s, times) for s in understood.signals]}
    if understood.error is not None:
        stored["error"] = understood.error
    return stored


def is_current(stored: Any, source: str) -> TypeGuard[dict[str, Any]]:
    """Whether ``stored`` (a delivery's ``parsed`` data, or None) is what the source's
    current adapter would make of it: written by the same ``ADAPTER_VERSION``."""
    return (isinstance(stored, dict) and stored.get("version") is not None
            and stored.get("version") == adapter_version(source))
