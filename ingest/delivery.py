"""A delivery: one HTTP request a monitoring tool sent us, as it arrived."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

if TYPE_CHECKING:
    from ingest.store import RecordedEvent

# Headers worth keeping verbatim: what identifies the event, the delivery, the sender.
# Credentials (Authorization, tokens, signatures) are never stored.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "x-gitlab-webhook-uuid",
        "x-gitlab-instance",
        # GitLab's delivery id across a "Resend request" (ingest.webhooks.delivery_id).
        "idempotency-key",
        # Grafana's HMAC timestamp header (the user names it; auth.GRAFANA_TIMESTAMP_HEADERS
        # lists the names we accept): the send time, so it is kept as notified_at.
        "x-grafana-alerting-timestamp",
        "x-grafana-alerting-signature-timestamp",
        "x-pagerduty-event-id",
        # Sentry: the resource an event is about (the adapter reads it), the send time
        # (notified_at) and the request's id.
        "sentry-hook-resource",
        "sentry-hook-timestamp",
        "request-id",
        # Amazon SNS (cloudwatch): the message's type, id, topic and subscription.
        "x-amz-sns-message-type",
        "x-amz-sns-message-id",
        "x-amz-sns-topic-arn",
        "x-amz-sns-subscription-arn",
        "webhook-id",
        "webhook-timestamp",
        "x-request-id",
        "x-hindsight-test",
    }
)


class BodyError(ValueError):
    """The body is not valid JSON or form data (answered 400, stored raw)."""


class MappingError(ValueError):
    """The body parsed, but the adapter cannot map it to signals (answered 422, stored raw).

    The message is the first problem in plain words, shown to whoever set up the webhook.
    """


@dataclass(frozen=True, slots=True)
class Delivery:
    source: str
    body: bytes
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, KEPT_HEADERS only

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON; raises BodyError with a short reason when it is not."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"body is not valid JSON: {exc.args[0]}") from None

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body, last value wins per key."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyError("form body is not UTF-8") from None
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def json_or_form(self) -> Any:
        """JSON, or form data when the sender says so (UptimeRobot and a few others)."""
        if self.content_type == "application/x-www-form-urlencoded":
            return self.form()
        return self.json()


def keep_headers(headers: Any) -> dict[str, str]:
    """The subset of request headers stored with a delivery, names lower-cased."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in KEPT_HEADERS:
            kept[low] = value
    return kept


def stored_delivery(event: RecordedEvent) -> Delivery:
    """A stored ``delivery.received`` event as the delivery it was."""
    return Delivery(source=event.data["source"], body=event.body or b"",
                    received_at=event.received_at, headers=event.data.get("headers", {}))
