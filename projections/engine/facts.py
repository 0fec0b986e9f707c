"""A fact: one signal as the log placed it (position, index in its delivery, receipt).

The engine stores facts, never bare signals: the log position breaks ties between equal
times (TIMELINE.md rule 3), and ``received_at`` is when a recovery seen after the fact
counts as notified (rule 4). ``signal_to_json`` / ``signal_from_json`` let the projector
store derived signals and feed them back for "as of" queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ingest.signals import Kind, Link, Severity, Signal, State, TimeSource, format_time

SubjectKey = tuple[str, str]  # (source, subject): two tools may name a monitor alike
SortKey = tuple[datetime, int, int]  # (occurred_at, position, index)
FactId = tuple[int, int]  # (position, index)

# ``pipeline_succeeded`` (a CI run that went green) is an outcome only: it clears the risk
# a failed run of the same subject left, and is no deploy event on timelines (rule 7).
DEPLOY_OUTCOMES = frozenset({"succeeded", "failed", "pipeline_failed", "pipeline_succeeded"})
NOT_LISTED = frozenset({"pipeline_succeeded"})
# What Prometheus said of a firing alert's pending period (ingest/prometheus_pending.py).
PENDING_EVENT = "alert.pending_period"
DEPLOY_FAILURES = frozenset({"failed", "pipeline_failed"})


@dataclass(frozen=True, slots=True)
class Fact:
    position: int
    index: int
    received_at: datetime
    signal: Signal

    @property
    def id(self) -> FactId:
        return (self.position, self.index)

    @property
    def key(self) -> SortKey:
        """Order of states of one subject: by the tool's time, then by the log."""
        return (self.signal.occurred_at, self.position, self.index)

    @property
    def subject_key(self) -> SubjectKey:
        return (self.signal.source, self.signal.subject)

    @property
    def is_ack(self) -> bool:
        return self.signal.kind != "deploy" and self.signal.action == "acknowledged"

    @property
    def is_period(self) -> bool:
        """A recovery carrying its own start: a failing period seen after the fact."""
        s = self.signal
        return s.kind != "deploy" and s.state == "ok" and s.started_at is not None

    @property
    def is_failing(self) -> bool:
        """Failing as far as incidents go: deploys and acknowledgements never are."""
        s = self.signal
        return s.kind != "deploy" and not self.is_ack and (s.state == "failing" or self.is_period)

    @property
    def failing_since(self) -> datetime:
        """When the reported failure began: a period's start, or a failure's own start
        when it carries one (an alert's pending period, ``pending_signal``), else
        ``occurred_at``."""
        s = self.signal
        if s.started_at is not None and (s.state == "failing" or self.is_period):
            return min(s.started_at, s.occurred_at)
        return s.occurred_at

    @property
    def notified(self) -> datetime:
        """When this fact told someone: a failing period seen after the fact was notified
        when we received it (TIMELINE.md rule 4); anything else at its ``notified_at``."""
        return self.received_at if self.is_period else self.signal.notified_at


def parse_time(text: str) -> datetime:
    """Our own RFC 3339 output (``format_time``) back into an aware datetime."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return value


def signal_to_json(signal: Signal) -> dict[str, Any]:
    return signal.to_json()


def signal_from_json(data: dict[str, Any]) -> Signal:
    """The inverse of ``Signal.to_json``: ``signal_from_json(s.to_json()) == s``; and of
    the compact form stored with a delivery (``ingest.sources.signal_data``), which
    leaves out keys holding their default (``notified_at`` equal to ``occurred_at``).

    Written for speed (a rebuild decodes every stored signal): no ``cast`` calls, list
    comprehensions, the time parsed by ``datetime.fromisoformat`` with ``parse_time``'s
    check."""
    get = data.get
    occurred_at = _parse(data["occurred_at"])
    if occurred_at.tzinfo is None:
        raise ValueError(f"time without a zone: {data['occurred_at']!r}")
    notified = get("notified_at")
    started = get("started_at")
    links = get("links")
    labels = get("labels")
    attributes = get("attributes")
    kind: Kind = data["kind"]
    state: State = data["state"]
    severity: Severity | None = get("severity")
    time_source: TimeSource = get("time_source", "source")
    return Signal(
        str(data["source"]), kind, str(data["subject"]), state, occurred_at,
        occurred_at if notified is None else parse_time(notified),
        get("service"), severity, str(get("summary", "")), time_source,
        None if started is None else parse_time(started),
        get("action"),
        tuple([Link(url=str(link["url"]), title=str(link.get("title", "")))
               for link in links]) if links else (),
        tuple([(str(k), str(v)) for k, v in dict(labels).items()]) if labels else (),
        tuple([(str(k), str(v)) for k, v in dict(attributes).items()]) if attributes else (),
    )


_parse = datetime.fromisoformat


def is_pending(signal: Signal) -> bool:
    """A firing alert completed with its pending period (``pending_signal``)."""
    return signal.state == "failing" and signal.started_at is not None


def pending_signal(data: Mapping[str, Any]) -> Signal:
    """An ``alert.pending_period`` event as the fact it adds (TIMELINE.md rule 8): the
    alert's signal as its delivery stated it (same subject, time and notification, so
    the same incident and id whichever of the two is folded first), failing since the
    learned start: the alert's ``activeAt``, or ``startsAt − for``. Its notification is
    the delivery's: detection does not move; the pending period becomes latency."""
    signal = signal_from_json(dict(data["signal"]))
    since = min(parse_time(str(data["pending_since"])), signal.occurred_at)
    attributes = [*signal.attributes, ("pending_since", format_time(since)),
                  ("pending_learned_from", str(data.get("learned_from", "")))]
    for_seconds = data.get("for_seconds")
    if isinstance(for_seconds, int | float) and for_seconds > 0:
        attributes.append(("pending_for", prometheus_duration(float(for_seconds))))
    return replace(signal, started_at=since, attributes=tuple(attributes))


def prometheus_duration(seconds: float) -> str:
    """A rule's ``for`` as Prometheus writes it: ``5m``, ``1h30m``, ``3s``, ``1.5s``."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def fact_to_json(fact: Fact) -> dict[str, Any]:
    return {
        "position": fact.position,
        "index": fact.index,
        "received_at": format_time(fact.received_at),
        "signal": signal_to_json(fact.signal),
    }


def fact_from_json(data: dict[str, Any]) -> Fact:
    return Fact(
        position=int(data["position"]),
        index=int(data["index"]),
        received_at=parse_time(data["received_at"]),
        signal=signal_from_json(data["signal"]),
    )
