"""Grafana Alerting: the webhook contact point (payload ``version`` "1").

Documented at grafana.com/docs/grafana/latest/alerting/configure-notifications/
manage-contact-points/integrations/webhook-notifier/ and built by grafana/alerting
``receivers/webhook/v1/webhook.go`` (``webhookMessage``): Alertmanager's ``template.Data``
extended per alert with ``fingerprint``, ``silenceURL``, ``dashboardURL``, ``panelURL``,
``imageURL``, ``values``/``valueString``, plus ``orgId``, ``title``, ``state`` and
``message`` on the notification. So this adapter is Alertmanager's with what differs:

- the contact point's "Test" button sends a made-up alert (grafana/alerting
  ``notify/testreceivers.go`` ``newTestAlert``: ``alertname="TestAlert"``,
  ``instance="Grafana"``, summary "Notification test"); such a delivery maps to no
  signals. The legacy (pre-8) test message, ``ruleName: "Test notification"``, too.
- notified_at: when the contact point signs its requests with a timestamp header
  (webhook-notifier docs, "HMAC signature": "Grafana will set a Unix timestamp in this
  header"; grafana/alerting ``http/hmac.go`` sets it to ``clk.Now().Unix()`` as it signs
  each request), that header is the send time; else ``received_at``. The header's name is
  the user's choice: we read the names ``ingest.auth`` accepts,
  ``X-Grafana-Alerting-Timestamp`` then ``X-Grafana-Alerting-Signature-Timestamp``, and
  the delivery keeps both (``KEPT_HEADERS``).
- ``valueString`` (what the rule evaluated) goes into ``attributes`` as ``value``.

Legacy dashboard-alerting payloads (``ruleName``/``evalMatches``, Grafana < 8) carry no
per-alert identity or times; they are refused with a plain message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.auth import GRAFANA_TIMESTAMP_HEADERS
from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources._common import clip, from_epoch
from ingest.sources.alertmanager import signals_from_group

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "grafana"
# "TestAlert" is what the Test button sends; "Test notification" is the legacy test's
# rule name, matched too in case a template copies it into alertname.
TEST_ALERTNAMES = frozenset({"TestAlert", "Test notification"})
LEGACY_TEST_RULE = "Test notification"


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if isinstance(body, dict) and "alerts" not in body and "ruleName" in body:
        if body.get("ruleName") == LEGACY_TEST_RULE:
            return []
        raise MappingError("legacy Grafana alert (ruleName/evalMatches) is not supported")
    if _is_test(body):
        return []
    return signals_from_group(
        body,
        delivery,
        source=SOURCE,
        notified_at=_sent_at(delivery) or delivery.received_at,
        extra_attributes=_extra_attributes,
    )


def _is_test(body: Any) -> bool:
    """Every alert of the delivery is Grafana's synthetic test alert."""
    alerts = body.get("alerts") if isinstance(body, dict) else None
    if not isinstance(alerts, list) or not alerts:
        return False
    for alert in alerts:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict) or labels.get("alertname") not in TEST_ALERTNAMES:
            return False
    return True


def _sent_at(delivery: Delivery) -> datetime | None:
    raw = next((value for name in GRAFANA_TIMESTAMP_HEADERS
                if (value := delivery.header(name))), None)
    if not raw:
        return None
    try:
        return from_epoch(raw.strip())
    except MappingError:
        # A malformed optional header must not lose the alert; the receipt time stands.
        return None


def _extra_attributes(alert: dict[str, Any]) -> list[tuple[str, str]]:
    value = alert.get("valueString")
    if isinstance(value, str) and value.strip():
        return [("value", clip(value, 300))]
    return []
