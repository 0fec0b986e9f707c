"""Deliveries in each tool's documented format, built from the recorded fixtures in
``tests/fixtures`` (which cite the documentation) with names and times substituted.

Each builder returns a ``Recorded``: what a tool sent and when it reached us, ready to be
imported (``POST /v1/deliveries/import``) with its real credential or posted live.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.sources.alertmanager import label_fingerprint
from tests.fixtures import FIXTURES
from tests.helpers import signed_headers


def at(text: str) -> datetime:
    """An RFC 3339 time (``Z`` allowed) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Recorded:
    """One delivery as a tool sent it. ``retry_of`` names (by ``key``) the delivery this
    one retries: a retry can never arrive before the attempt it repeats."""

    source: str
    received_at: datetime
    headers: dict[str, str]
    body: bytes
    key: str = ""
    retry_of: str | None = None

    def line(self) -> bytes:
        """The JSON Lines record of API.md, with the credential the tool would send."""
        return orjson.dumps({
            "source": self.source,
            "received_at": rfc3339(self.received_at),
            "headers": signed_headers(self.source, self.body, self.headers, at=self.received_at),
            "body": self.body.decode(),
        })

    def retried(self, received_at: datetime) -> Recorded:
        """The same request sent again (the tool did not hear our answer)."""
        return Recorded(self.source, received_at, self.headers, self.body,
                        key=f"{self.key}:retry", retry_of=self.key)


def _fixture(source: str, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / source / f"{name}.json").read_bytes())
    return dict(raw["headers"]), copy.deepcopy(raw["body"])


def _recorded(source: str, received_at: datetime, headers: dict[str, str],
              body: dict[str, Any]) -> Recorded:
    return Recorded(source, received_at, headers, orjson.dumps(body), key=uuid.uuid4().hex)


# --- Uptime Kuma (louislam/uptime-kuma server/notification-providers/webhook.js) --------

def kuma(
    up: bool,
    time: datetime,
    received_at: datetime,
    *,
    monitor: str = "Checkout API",
    monitor_id: int = 12,
    service: str = "checkout",
    severity: str = "critical",
    url: str = "https://shop.example.com/api/health",
) -> Recorded:
    """An important heartbeat (a state change). ``heartbeat.time`` is UTC without a zone,
    with milliseconds (server/model/heartbeat.js); ``localDateTime`` the server's zone."""
    headers, body = _fixture("uptime-kuma", "up" if up else "down")
    beat = body["heartbeat"]
    beat["monitorID"] = monitor_id
    beat["time"] = time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    beat["localDateTime"] = (time + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    mon = body["monitor"]
    mon.update(id=monitor_id, name=monitor, pathName=f"Shop / {monitor}", url=url)
    for tag in mon["tags"]:
        tag["monitor_id"] = monitor_id
        if tag["name"] == "service":
            tag["value"] = service
        elif tag["name"] == "severity":
            tag["value"] = severity
    state = "✅ Up" if up else "🔴 Down"
    body["msg"] = f"[{monitor}] [{state}] {beat['msg']}"
    return _recorded("uptime-kuma", received_at, headers, body)


# --- Alertmanager (prometheus.io/docs/alerting/latest/configuration/#webhook_config) ---

@dataclass(frozen=True)
class Alert:
    """One alert of a group: firing while ``ends_at`` is None (Go's zero time is sent)."""

    instance: str
    starts_at: datetime
    ends_at: datetime | None = None
    alertname: str = "HighErrorRate"
    service: str = "checkout"
    severity: str = "critical"

    def to_json(self, template: dict[str, Any]) -> dict[str, Any]:
        alert = copy.deepcopy(template)
        alert["status"] = "firing" if self.ends_at is None else "resolved"
        alert["labels"].update(alertname=self.alertname, instance=self.instance,
                               service=self.service, severity=self.severity,
                               job=f"{self.service}-api")
        alert["annotations"]["summary"] = f"5xx ratio above 5% on {self.instance}"
        alert["startsAt"] = rfc3339(self.starts_at)
        alert["endsAt"] = "0001-01-01T00:00:00Z" if self.ends_at is None else rfc3339(self.ends_at)
        # Alertmanager's own fingerprint of the labels (prometheus/common LabelSet).
        alert["fingerprint"] = label_fingerprint(alert["labels"])
        return alert


def alertmanager(alerts: list[Alert], received_at: datetime) -> Recorded:
    """One notification of a group: every alert of the group, each with its own status;
    the group's status is firing while any alert fires (template/template.go Data)."""
    headers, body = _fixture("alertmanager", "firing")
    template = body["alerts"][0]
    body["alerts"] = [a.to_json(template) for a in alerts]
    body["status"] = "firing" if any(a.ends_at is None for a in alerts) else "resolved"
    first = alerts[0]
    body["groupLabels"] = {"alertname": first.alertname, "namespace": "shop"}
    body["commonLabels"] = {"alertname": first.alertname, "namespace": "shop",
                            "service": first.service, "severity": first.severity,
                            "job": f"{first.service}-api"}
    return _recorded("alertmanager", received_at, headers, body)


# --- Healthchecks (healthchecks.io/docs/webhooks/, the recommended template) ----------

def healthchecks(
    up: bool,
    now: datetime,
    received_at: datetime,
    *,
    last_ping: datetime,
    name: str = "payment-reconciliation",
    schedule: str = "0 2 * * *",
    tz: str = "Europe/Riga",
    tags: str = "prod service:payments severity:critical",
) -> Recorded:
    """A flip to ``up`` or ``down`` at ``$NOW`` with the check (``$JSON``): its cron
    ``schedule`` in ``tz`` and ``last_ping``."""
    headers, body = _fixture("healthchecks", "up" if up else "down_cron_missed_run")
    body.update(name=name, now=now.astimezone(UTC).isoformat(timespec="seconds"), tags=tags)
    check = body["check"]
    check.update(name=name, slug=name, tags=tags, schedule=schedule, tz=tz,
                 last_ping=last_ping.astimezone(UTC).isoformat(timespec="seconds"))
    return _recorded("healthchecks", received_at, headers, body)


# --- UptimeRobot (help.uptimerobot.com "Webhook Integration", Send as JSON) -----------

def uptimerobot_ssl(
    alert_time: datetime,
    received_at: datetime,
    *,
    expires: datetime,
    name: str = "Storefront",
    url: str = "https://www.example-shop.com/",
) -> Recorded:
    """An SSL expiry alert (alertType 3) with the days left on the certificate."""
    headers, body = _fixture("uptimerobot", "ssl_expiry")
    days = (expires - alert_time).days
    body.update(
        monitorURL=url, monitorFriendlyName=name,
        alertDetails=(f"SSL certificate expires in {days} days" if days > 0
                      else "SSL certificate has expired"),
        alertDateTime=str(int(alert_time.timestamp())),
        sslExpiryDate=rfc3339(expires), sslExpiryDaysLeft=str(max(days, 0)),
    )
    return _recorded("uptimerobot", received_at, headers, body)


# --- GitHub (docs.github.com/en/webhooks/webhook-events-and-payloads#deployment_status) -

def github_deploy(
    state: str,
    sha: str,
    updated_at: datetime,
    received_at: datetime,
    *,
    repo: str = "acme/checkout-service",
) -> Recorded:
    """A ``deployment_status`` event (``success``, ``failure``, ``in_progress``...)."""
    headers, body = _fixture("github", "deployment_status_success")
    headers["X-GitHub-Delivery"] = str(uuid.uuid4())
    status = body["deployment_status"]
    status.update(state=state, created_at=rfc3339(updated_at), updated_at=rfc3339(updated_at),
                  description="Deployment finished successfully." if state == "success"
                  else "Deploy failed: readiness probe timed out")
    body["deployment"].update(sha=sha, updated_at=rfc3339(updated_at))
    body["repository"]["full_name"] = repo
    return _recorded("github", received_at, headers, body)
