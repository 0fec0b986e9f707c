"""Datadog: monitor notifications through the Webhooks integration.

Documented at https://docs.datadoghq.com/integrations/webhooks/ (DataDog/documentation,
the Webhooks integration page): a monitor whose message mentions ``@webhook-<NAME>``
POSTs the webhook's payload, a JSON template whose ``$VARIABLES`` Datadog fills in as
strings. The user writes the template, so two shapes are read:

- Datadog's default payload: ``body`` ($EVENT_MSG), ``last_updated`` ($LAST_UPDATED),
  ``event_type`` ($EVENT_TYPE), ``title`` ($EVENT_TITLE), ``date`` ($DATE), ``org``
  ($ORG_ID, $ORG_NAME) and ``id`` ($ID);
- Hindsight's template (docs/sources/datadog.md): the default payload plus
  ``alert_id`` ($ALERT_ID), ``alert_cycle_key`` ($ALERT_CYCLE_KEY), ``aggreg_key``
  ($AGGREG_KEY), ``alert_transition`` ($ALERT_TRANSITION), ``alert_type``
  ($ALERT_TYPE), ``alert_title`` ($ALERT_TITLE), ``alert_scope`` ($ALERT_SCOPE),
  ``alert_status`` ($ALERT_STATUS), ``alert_priority`` ($ALERT_PRIORITY), ``hostname``
  ($HOSTNAME), ``tags`` ($TAGS) and ``link`` ($LINK).

What happened is ``alert_transition`` ("Recovered, Triggered/Re-Triggered, No Data/Re-No
Data, Warn/Re-Warn, Renotify"), else the transition word that opens the title
(``[Triggered on {host:web-1}] CPU high``, ``[Recovered] ...``):

- Triggered, Re-Triggered, No Data, Re-No Data → ``failing`` (action ``triggered``): a
  monitor told to notify on missing data treats silence as the failure;
- Warn, Re-Warn → ``warning``: the monitor's warning threshold, a risk that opens no
  incident (TIMELINE.md rule 6) and leaves a failing subject failing (rule 3);
- Recovered → ``ok``;
- Renotify → the state the monitor is still in: ``warning`` when ``alert_type`` says
  ``warning``, else ``failing`` (a repeat, rule 4);
- anything else (no transition: a test, an event that is no monitor notification; a
  title that starts with ``[TEST]``; Datadog's ``Null``) → no signal.

Subject: the monitor's name (the title without its leading ``[...]`` words) and, for a
multi-alert monitor, its group (``alert_scope``, else the ``on {...}`` of the title's
transition), as ``CPU high {host:web-1}``: one subject per group, the same for its
trigger and its recovery. Service: a ``service:`` tag (``tags`` or the scope).
Severity: ``alert_priority`` (P1–P5, P5 → P4). ``occurred_at``: ``date`` ($DATE, "Date
(epoch) where the event happened", milliseconds), else ``last_updated``; a variable
Datadog left unfilled (``"$DATE"``) is no time. There is no send time: notified when
received. ``body`` ($EVENT_MSG) is never read: it holds the monitor's ``@`` mentions,
which name people.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, State, TimeSource
from ingest.sources._common import (
    clip,
    from_epoch,
    http_url,
    no_people,
    optional,
    severity_from,
    tag_pairs,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "datadog"

# $ALERT_TRANSITION values, lower-cased, as the Webhooks page lists them.
_TRANSITIONS: dict[str, tuple[State, str]] = {
    "triggered": ("failing", "triggered"),
    "re-triggered": ("failing", "triggered"),
    "no data": ("failing", "triggered"),
    "re-no data": ("failing", "triggered"),
    "warn": ("warning", "triggered"),
    "re-warn": ("warning", "triggered"),
    "recovered": ("ok", "resolved"),
    "renotify": ("failing", "triggered"),
}
# A title's leading bracket: "[P1] [Triggered on {host:web-1,env:prod}] Name".
_BRACKET = re.compile(r"^\s*\[([^\]]*)\]\s*")
_ON_SCOPE = re.compile(r"^(?P<word>.+?)\s+on\s+\{(?P<scope>.*)\}\s*$", re.IGNORECASE)


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json_or_form()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    title = _text(body, "alert_title") or _text(body, "title") or ""
    if title.upper().startswith("[TEST]"):
        return []
    words, name = _title_words(title)
    transition = (_text(body, "alert_transition") or "").lower()
    scope = _text(body, "alert_scope")
    for word in words:
        found = _ON_SCOPE.match(word)
        bare = (found.group("word") if found else word).strip().lower()
        if bare in _TRANSITIONS:
            transition = transition or bare
            if found and scope is None:
                scope = found.group("scope")
    if transition not in _TRANSITIONS:
        return []  # a test, an event, Datadog's "Null": no monitor changed state
    state, action = _TRANSITIONS[transition]
    alert_type = (_text(body, "alert_type") or "").lower()
    if transition == "renotify" and alert_type == "warning":
        state = "warning"
    monitor_id = _text(body, "alert_id")
    name = name or (f"Datadog monitor {monitor_id}" if monitor_id else "")
    if not name:
        raise MappingError("title: empty, and no alert_id")
    group = _scope(scope)
    subject = f"{name} {{{group}}}" if group else name

    occurred = _epoch(body, "date") or _epoch(body, "last_updated")
    time_source: TimeSource = "source"
    if occurred is None:
        occurred, time_source = delivery.received_at, "receipt"
    tags = tag_pairs([t.strip() for t in (_text(body, "tags") or "").split(",")]
                     + [t.strip() for t in group.split(",")])
    facts = {
        "monitor_id": monitor_id,
        "alert_transition": transition,
        "alert_cycle_key": _text(body, "alert_cycle_key"),
        "aggreg_key": _text(body, "aggreg_key"),
        "event_id": _text(body, "id"),
        "event_type": _text(body, "event_type"),
        "scope": group or None,
        "hostname": _text(body, "hostname"),
        "priority": _text(body, "alert_priority"),
    }
    status = _text(body, "alert_status")
    summary = f"{name}: {status}" if status else (f"{subject}: {transition}")
    link = http_url(_text(body, "link"))
    return [
        Signal(
            source=SOURCE,
            kind="alert",
            subject=subject,
            state=state,
            occurred_at=occurred,
            notified_at=delivery.received_at,
            service=tags.get("service"),
            severity=severity_from(_text(body, "alert_priority")),
            summary=clip(no_people(summary)),
            time_source=time_source,
            action=action,
            links=(Link(url=link, title="Datadog event"),) if link else (),
            attributes=tuple((k, v) for k, v in facts.items() if v),
        )
    ]


def _text(body: dict[str, Any], key: str) -> str | None:
    """A filled-in template variable: a non-empty string (or number) that is not the
    variable's own name left unfilled (``"$ALERT_SCOPE"`` when a monitor has none)."""
    value = body.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raw: str | None = optional(body, key, str)
    text = (raw or "").strip()
    if not text or text.startswith("$"):
        return None
    return text


def _epoch(body: dict[str, Any], key: str) -> datetime | None:
    text = _text(body, key)
    if text is None:
        return None
    if not text.isdigit():
        raise MappingError(f"{key}: not an epoch time: {text[:40]!r}")
    return from_epoch(text)


def _title_words(title: str) -> tuple[list[str], str]:
    """The leading ``[...]`` words of a title and the name after them."""
    words = []
    rest = title
    while True:
        found = _BRACKET.match(rest)
        if not found:
            break
        words.append(found.group(1))
        rest = rest[found.end():]
    return words, rest.strip()


def _scope(scope: str | None) -> str:
    """A multi-alert group, ``host:web-1,env:prod``: the tags sorted, so the scope
    variable and the title's ``on {...}`` name one group the same way."""
    if not scope:
        return ""
    parts = sorted({p.strip() for p in scope.split(",") if p.strip() and p.strip() != "*"})
    return ",".join(parts)
