"""Cronitor webhook alerts: a monitor failed, or recovered.

Documented at https://cronitor.io/docs/using-webhooks ("Webhook Fields"): a JSON object
with ``id`` (the monitor's key), ``monitor`` (its name), ``description``, ``type``
(``ALERT`` or ``RECOVERY``), ``rule`` (the assertion or rule that was violated),
``environment``, ``group`` (or null), ``issue_url`` and ``monitor_url``.

- Subject: the monitor's name (TIMELINE.md), its key when the name is empty.
- ``ALERT`` → ``failing``; ``RECOVERY`` → ``ok`` (case-insensitive). Anything else is
  an error: alert and recovery are the whole documented vocabulary.
- Kind: Cronitor monitors jobs and heartbeats (``cron``) and HTTP checks (``uptime``), but
  the webhook does not say which. A rule about a request or its response (``request…``,
  ``response…``, ``ssl…``, an ``assertion``) is an uptime check's; any other rule
  (a missed or failed run, a run too long) is a job's, and jobs are Cronitor's default.
- Time: the documented payload carries no event time, so ``occurred_at`` is the
  delivery's ``received_at`` (``time_source: receipt``). For the same reason a job's
  failure cannot start at the missed run (TIMELINE.md rule 8): there is no schedule or
  last ping to compute it from.
- ``environment`` and ``group`` are kept as labels and attributes; ``group`` is not used
  as the service (a Cronitor group is a folder of monitors, not necessarily what users
  experience). Severity is left to the source's configured default.
"""

from __future__ import annotations

from ingest.delivery import Delivery, MappingError
from ingest.signals import Kind, Link, Signal, State
from ingest.sources._common import clip, optional, require

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

_TYPES: dict[str, State] = {"alert": "failing", "recovery": "ok"}
_CHECK_RULE_PREFIXES = ("request", "response", "ssl", "assertion")


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    kind_word = require(body, "type", str)
    state = _TYPES.get(kind_word.strip().lower())
    if state is None:
        raise MappingError(f"type: expected ALERT or RECOVERY, got {kind_word[:40]!r}")
    key = optional(body, "id", str) or ""
    subject = optional(body, "monitor", str) or key
    if not subject:
        raise MappingError("monitor: missing (and no id)")
    rule = optional(body, "rule", str) or ""
    environment = optional(body, "environment", str)
    group = optional(body, "group", str)
    description = optional(body, "description", str) or ""
    links = []
    issue_url = optional(body, "issue_url", str)
    if issue_url:
        links.append(Link(url=issue_url, title="Cronitor issue"))
    monitor_url = optional(body, "monitor_url", str)
    if monitor_url:
        links.append(Link(url=monitor_url, title=f"Cronitor monitor {subject}"))
    what = "recovered" if state == "ok" else "failing"
    summary = clip(description) or f"{subject} {what}" + (f" ({rule})" if rule else "")
    labels = {"environment": environment, "group": group}
    attributes = {"monitor_key": key, "rule": rule, "environment": environment, "group": group}
    return [
        Signal(
            source=delivery.source,
            kind=_kind(rule),
            subject=subject,
            state=state,
            # No event time in the documented payload: the receipt is the best we have.
            occurred_at=delivery.received_at,
            notified_at=delivery.received_at,
            time_source="receipt",
            summary=summary,
            links=tuple(links),
            labels=tuple(sorted((k, v) for k, v in labels.items() if v)),
            attributes=tuple(sorted((k, v) for k, v in attributes.items() if v)),
        )
    ]


def _kind(rule: str) -> Kind:
    return "uptime" if rule.strip().lower().startswith(_CHECK_RULE_PREFIXES) else "cron"
