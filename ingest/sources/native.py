"""Hindsight's own webhook format, for scripts and tools with no adapter of their own.

``POST /v1/webhooks/native`` with a JSON body that is one signal, a list of signals, or
``{"signals": [...]}``, signed with Standard Webhooks headers (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``). One signal::

    {
      "kind": "uptime",                     # required: uptime | cron | ssl | deploy | alert
      "subject": "Checkout API",            # required: the thing checked, stable over time
      "state": "failing",                   # required: failing | ok | warning | info
      "service": "checkout",                # optional: what users experience; else the
                                            #   label "service" (or "app"), else the subject
      "severity": "P1",                     # optional: P1-P4, or critical | high | error |
                                            #   warning | info; else the source's default
      "occurred_at": "2025-03-14T10:02:31.250Z",  # optional, RFC 3339 with a zone: when
                                            #   the state changed; else the receipt time
      "summary": "HTTP 503 from /health",   # optional, up to 2000 characters
      "links": [{"url": "https://grafana.example.com/d/abc", "title": "Dashboard"},
                "https://runbooks.example.com/checkout"],   # objects or plain URLs
      "labels": {"region": "eu-west-1"},    # optional: string (or number/bool) values
      "action": "succeeded",                # optional; for deploys: started | succeeded |
                                            #   failed | pipeline_failed
      "attributes": {"ref": "4f2c9e1", "environment": "production"}   # optional
    }

Unknown fields are refused, so that a misspelt field is reported rather than ignored.
An error names the first problem, e.g. ``signals[1].state: expected one of failing, ok,
warning, info``. ``notified_at`` is the ``webhook-timestamp`` header (the send time the
signature covers), else the receipt time. Up to 1000 signals per delivery.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from ingest.delivery import Delivery, MappingError
from ingest.signals import KINDS, SEVERITIES, STATES, Kind, Link, Severity, Signal, State
from ingest.sources._common import from_epoch, parse_time, severity_from

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

MAX_SIGNALS = 1000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _scalar_text(value: Any) -> Any:
    """Label values may be numbers or booleans in hand-written JSON; we keep strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Scalar = Annotated[str, BeforeValidator(_scalar_text)]


def _severity(value: Any) -> Any:
    if value is None:
        return None
    found = severity_from(value)
    if found is None:
        raise ValueError("severity")
    return found


_HAS_ZONE = re.compile(r"(?:[zZ]|[+-]\d{2}:?\d{2})$")


def _time(value: Any) -> Any:
    # Our own contract: a time without a zone is ambiguous, and a bug worth reporting.
    if not isinstance(value, str) or not _HAS_ZONE.search(value.strip()):
        raise ValueError("time")
    try:
        return parse_time(value)
    except MappingError:
        raise ValueError("time") from None


class _LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Text
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class _SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    subject: Text
    state: State
    service: Text | None = None
    severity: Annotated[Severity | None, BeforeValidator(_severity)] = None
    occurred_at: Annotated[datetime | None, BeforeValidator(_time)] = None
    summary: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    links: list[_LinkIn | Text] = Field(default_factory=list, max_length=50)
    labels: dict[str, Scalar] = Field(default_factory=dict)
    action: Literal["started", "succeeded", "failed", "pipeline_failed"] | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signals: list[_SignalIn] = Field(max_length=MAX_SIGNALS)


_MANY = TypeAdapter(list[_SignalIn])

# Our words for pydantic's error types: the message is part of our contract, so it must
# not change when pydantic rewords its own.
_EXPECTED = {
    "kind": "one of " + ", ".join(KINDS),
    "state": "one of " + ", ".join(STATES),
    "severity": "one of " + ", ".join(SEVERITIES) + " or critical, high, warning, info",
    "occurred_at": "an RFC 3339 time with a zone",
    "action": "one of started, succeeded, failed, pipeline_failed",
}
_MESSAGES = {
    "missing": "missing",
    "extra_forbidden": "unknown field",
    "string_type": "expected a string",
    "string_too_short": "empty",
    "string_too_long": "too long",
    "too_long": "too many items",
    "dict_type": "expected an object",
    "list_type": "expected a list",
    "model_type": "expected an object",
}


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    try:
        if isinstance(body, list):
            if len(body) > MAX_SIGNALS:
                raise MappingError(f"body: more than {MAX_SIGNALS} signals")
            items = _MANY.validate_python(body)
        elif isinstance(body, dict) and "signals" in body:
            items = _Envelope.model_validate(body).signals
        elif isinstance(body, dict):
            items = [_SignalIn.model_validate(body)]
        else:
            raise MappingError("body: expected an object or a list of objects")
    except ValidationError as exc:
        raise MappingError(_first_error(exc)) from None
    notified = _notified_at(delivery)
    return [_signal(delivery, item, notified) for item in items]


# Names pydantic puts in an error's location for union members and validators.
_NOT_FIELDS = frozenset({"_LinkIn", "constrained-str", "str"})


def _first_error(exc: ValidationError) -> str:
    """``signals[1].links[0].url: empty``: the first problem, in our words."""
    error = exc.errors(include_url=False)[0]
    path = ""
    fields: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]" if path else f"signals[{part}]"  # a bare list of signals
        elif part not in _NOT_FIELDS and not part.startswith("function-"):
            path += f".{part}" if path else part
            fields.append(part)
    kind = error["type"]
    field = fields[-1] if fields else ""
    if kind in ("missing", "extra_forbidden"):
        message = _MESSAGES[kind]
    elif field in _EXPECTED:
        message = f"expected {_EXPECTED[field]}"
    elif field == "links" and kind in ("model_type", "string_type"):
        message = 'expected a URL or {"url", "title"}'
    else:
        message = _MESSAGES.get(kind, "invalid value")
    return f"{path or 'body'}: {message}"


def _notified_at(delivery: Delivery) -> datetime:
    stamp = delivery.header("webhook-timestamp")
    if stamp:
        try:
            sent = from_epoch(stamp)
        except MappingError:
            sent = None
        if sent is not None:
            return sent
    return delivery.received_at


def _signal(delivery: Delivery, item: _SignalIn, notified: datetime) -> Signal:
    links = tuple(
        Link(url=link) if isinstance(link, str) else Link(url=link.url, title=link.title)
        for link in item.links
    )
    service = item.service or item.labels.get("service") or item.labels.get("app")
    return Signal(
        source=delivery.source,
        kind=item.kind,
        subject=item.subject,
        state=item.state,
        service=service or None,
        severity=item.severity,
        occurred_at=item.occurred_at or delivery.received_at,
        notified_at=notified,
        time_source="source" if item.occurred_at else "receipt",
        summary=item.summary,
        action=item.action,
        links=links,
        labels=tuple(sorted(item.labels.items())),
        attributes=tuple(sorted(item.attributes.items())),
    )
