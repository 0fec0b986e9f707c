"""The event vocabulary: what one delivery says about one checked thing (TIMELINE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["uptime", "cron", "ssl", "deploy", "alert"]
State = Literal["failing", "ok", "warning", "info"]
Severity = Literal["P1", "P2", "P3", "P4"]
TimeSource = Literal["source", "receipt"]

KINDS: tuple[Kind, ...] = ("uptime", "cron", "ssl", "deploy", "alert")
STATES: tuple[State, ...] = ("failing", "ok", "warning", "info")
SEVERITIES: tuple[Severity, ...] = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Signal:
    """One state of one subject, as one delivery reported it.

    - ``occurred_at``: the tool's own time of the state change; for a recovery, the
      recovery time. Falls back to the delivery's ``received_at`` only when the payload
      has no event time at all, and then ``time_source`` is ``"receipt"``.
    - ``started_at``: set on an ``ok`` signal that carries its own failing start (an
      Alertmanager alert first seen already resolved): a failing period seen after the fact.
    - ``notified_at``: when the tool told someone (its send time, else ``received_at``).
    - ``service``: the payload's own service hint (label, tag, group label); the projector
      applies the configured ``[services]`` mapping over it and falls back to ``subject``.
    - ``severity``: from the payload, or None for the source's configured default.
    - ``action``: what happened, for kinds where state alone does not say it:
      deploys (``started``, ``succeeded``, ``failed``, ``pipeline_failed``), on-call
      tools (``triggered``, ``acknowledged``, ``resolved``), test messages never get here.
    - ``attributes``: kind-specific facts (``ref``, ``environment``, ``expires_at``,
      ``schedule``, ``last_ping``, ``down_at``, ``fingerprint``...), strings only.
    """

    source: str
    kind: Kind
    subject: str
    state: State
    occurred_at: datetime
    notified_at: datetime
    service: str | None = None
    severity: Severity | None = None
    summary: str = ""
    time_source: TimeSource = "source"
    started_at: datetime | None = None
    action: str | None = None
    links: tuple[Link, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form: RFC 3339 UTC times with Z, lists and objects. Written out by
        hand: it runs for every signal of every delivery, and ``asdict`` deep-copies."""
        return {
            "source": self.source,
            "kind": self.kind,
            "subject": self.subject,
            "state": self.state,
            "occurred_at": format_time(self.occurred_at),
            "notified_at": format_time(self.notified_at),
            "service": self.service,
            "severity": self.severity,
            "summary": self.summary,
            "time_source": self.time_source,
            "started_at": None if self.started_at is None else format_time(self.started_at),
            "action": self.action,
            "links": [{"url": link.url, "title": link.title} for link in self.links],
            "labels": dict(self.labels),
            "attributes": dict(self.attributes),
        }

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def attribute_map(self) -> dict[str, str]:
        return dict(self.attributes)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, with the fewest fractional digits that state the
    value exactly: whole seconds have no fraction, and the fraction's trailing zeros are
    dropped (``.5``, not ``.500000``; ``.123456`` stays as it is).

    TIMELINE.md: timestamps keep the precision the source gave. A ``datetime`` does not
    remember how many digits its source wrote, so the shortest exact form is the rule:
    it never adds digits the source did not send (a ``.5`` s stays ``.5``), and it never
    loses one that carries information. RFC 3339 (section 5.6, ``time-secfrac``) allows
    any number of digits; Python's ``datetime.fromisoformat`` and PostgreSQL read them
    all back to the same instant. A source that wrote ``.500`` reads back as ``.5``: the
    same instant, the zeros carried no information. Microseconds are the most a
    ``datetime`` holds (sources sending nanoseconds are truncated on parsing).
    """
    utc = value.astimezone(UTC)
    text = utc.replace(microsecond=0, tzinfo=None).isoformat()
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"
