"""Gatus: the custom alerting provider (``alerting.custom``).

Gatus sends the ``body`` the user configures after replacing its placeholders as plain
text (TwiN/gatus ``alerting/provider/custom/custom.go`` ``buildHTTPRequest``; README
"Configuring custom alerts"): ``[ALERT_DESCRIPTION]``, ``[ENDPOINT_NAME]``,
``[ENDPOINT_GROUP]``, ``[ENDPOINT_URL]``, ``[RESULT_ERRORS]`` (the errors joined with
``,``, double quotes escaped), ``[RESULT_CONDITIONS]`` and
``[ALERT_TRIGGERED_OR_RESOLVED]`` (``TRIGGERED`` or ``RESOLVED``, or the values the
user set under ``placeholders: ALERT_TRIGGERED_OR_RESOLVED``). It sets no header of its
own (not even ``Content-Type``) beyond the configured ``headers``.

Accepted body: a JSON object with the keys docs/sources/gatus.md gives, ``status``
(``[ALERT_TRIGGERED_OR_RESOLVED]``), ``endpoint_name``, ``endpoint_group``,
``endpoint_url``, ``alert_description``, ``result_errors``. ``status`` is
``TRIGGERED``/``RESOLVED``, or one of the override words in ``STATUS_WORDS``.

**No time.** None of the placeholders is a time, and Gatus sends nothing else: every
signal is dated by its receipt (``time_source: receipt``). A trigger is sent after
``failure-threshold`` failed evaluations in a row (default 3) and a resolution after
``success-threshold`` successes (default 2), so the failure starts when the alert was
sent, thresholds × ``interval`` after the endpoint really broke.

A body whose ``endpoint_name`` is still ``[ENDPOINT_NAME]`` (nothing substituted: the
template posted by hand) maps to no signals. The subject is ``group/name`` (Gatus keys an
endpoint by both), or the name when the endpoint has no group.
"""

from __future__ import annotations

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, State
from ingest.sources._common import clip, http_url, no_people, scalar_text

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "gatus"
# [ALERT_TRIGGERED_OR_RESOLVED]: Gatus' own words, and the overrides its README shows
# ("partial_outage"/"operational") or a team would choose, lower-cased.
STATUS_WORDS: dict[str, State] = {
    "triggered": "failing", "resolved": "ok",
    "partial_outage": "failing", "major_outage": "failing", "down": "failing",
    "firing": "failing", "operational": "ok", "up": "ok",
}


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    name = scalar_text(body, "endpoint_name")
    if name in ("", "[ENDPOINT_NAME]"):
        return []
    status = scalar_text(body, "status")
    if not status:
        raise MappingError("status: missing")
    state = STATUS_WORDS.get(status.lower())
    if state is None:
        raise MappingError(f"status: expected TRIGGERED or RESOLVED, got {status[:30]!r}")
    group = scalar_text(body, "endpoint_group")
    subject = f"{group}/{name}" if group and group != "[ENDPOINT_GROUP]" else name
    url = http_url(scalar_text(body, "endpoint_url"))
    attributes = [("endpoint", name), ("status", status)]
    if group and group != "[ENDPOINT_GROUP]":
        attributes.append(("endpoint_group", group))
    description = scalar_text(body, "alert_description")
    errors = scalar_text(body, "result_errors")
    if state == "failing":
        summary = errors or description or f"{name} is failing"
    else:
        summary = (description and f"resolved: {description}") or f"{name} is healthy again"
    return [
        Signal(
            source=SOURCE,
            kind="uptime",
            subject=subject,
            state=state,
            # Gatus sends no time at all (no placeholder holds one): the receipt.
            occurred_at=delivery.received_at,
            notified_at=delivery.received_at,
            summary=clip(no_people(summary)),
            time_source="receipt",
            links=(Link(url=url, title="endpoint"),) if url else (),
            attributes=tuple(attributes),
        )
    ]

