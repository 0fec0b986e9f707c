"""Author ``week.jsonl``: the demo's recorded week (2025-03-10 to 2025-03-16).

Run ``python hindsight/demo_data/build.py`` to write the file again after editing the
story below; ``hindsight demo`` reads only the JSON Lines it wrote. Each delivery is the
shape its tool documents (the same sources the adapters in ``ingest/sources/`` cite):

- Alertmanager: the webhook receiver's JSON, version 4
  (prometheus.io/docs/alerting/latest/configuration/#webhook_config);
- Grafana Alerting: the webhook contact point (grafana/alerting receivers/webhook);
- Uptime Kuma: ``{heartbeat, monitor, msg}`` (server/notification-providers/webhook.js),
  heartbeat times in UTC without a zone;
- Healthchecks.io: the recommended webhook template with ``$JSON`` (healthchecks.io/docs/webhooks);
- Better Stack Uptime: the incident webhook (betterstack.com/docs/uptime/webhooks);
- Cronitor: webhook alerts (cronitor.io/docs/using-webhooks);
- Hindsight's native format, signed with Standard Webhooks headers;
- GitHub ``deployment_status``, GitLab Deployment Hook and Argo CD notifications for the
  deploys that went out shortly before some of the incidents. Argo CD applications are
  named after their service, so their deploys join the incident timelines with no
  configuration; the GitHub and GitLab deploys (subjects ``acme/checkout-service/production``,
  ``web/storefront/production``) join them with a ``[services]`` mapping such as
  ``checkout = ["acme/checkout-service*"]``.

The story, one line per incident (latency = first notification − impact start):

 1. Mon checkout P1: deploy (GitHub), 5xx alert notified by Alertmanager after 31 s.
 2. Mon search P3: Grafana latency alert, notified after 70 s.
 3. Tue payments P2: nightly reconciliation missed its 02:00 run; Healthchecks' 1 h grace
    means it was notified at 03:00:41 (1 h 0 min 41 s).
 4. Tue "Marketing site": Better Stack, 4 s.
 5. Wed orders-db P3: Grafana disk saturation, notified 12 min 32 s after it began.
 6. Wed checkout P1: Argo CD deploy, then a p99 latency alert notified after 6 min 30 s
    (a P1 over 5 minutes: a monitoring gap).
 7. Thu "Email digest sender": Cronitor job not run (no event time: notified at once).
 8. Thu payments P1: the card-authorisation probe (native), 7 s.
 9. Fri orders P2: Uptime Kuma, 1 s.
10. Sat storefront P2: GitLab deploys, Argo CD syncs, then an error-budget burn alert
    notified after 18 min 30 s.
11. Sun search P2: a node down at 05:12, seen only when Alertmanager came back from its
    own maintenance at 06:40 and sent the alert already resolved (1 h 28 min).
12. (declared by ``hindsight demo`` on the day it runs: a sign-in outage users reported.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "week.jsonl"
ZERO = "0001-01-01T00:00:00Z"

deliveries: list[dict[str, Any]] = []


def add(source: str, received_at: str, headers: dict[str, str], body: dict[str, Any]) -> None:
    deliveries.append({"source": source, "received_at": received_at, "headers": headers,
                       "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False)})


# --- Alertmanager ----------------------------------------------------------------------

AM_HEADERS = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.27.0"}


def am_alert(name: str, service: str, severity: str, instance: str, summary: str,
             starts: str, ends: str, fingerprint: str, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "instance": instance, "job": f"{service}-api",
                   "namespace": "shop", "service": service, "severity": severity},
        "annotations": {"summary": summary,
                        "runbook_url": f"https://runbooks.example.com/{service}/{name.lower()}"},
        "startsAt": starts, "endsAt": ends,
        "generatorURL": "http://prometheus-k8s-0.prometheus-operated.monitoring.svc:9090/graph"
                        f"?g0.expr={name}&g0.tab=1",
        "fingerprint": fingerprint,
    }


def am_group(alerts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    first = alerts[0]["labels"]
    common = {k: v for k, v in first.items()
              if all(a["labels"].get(k) == v for a in alerts)}
    return {
        "version": "4", "receiver": "shop-oncall", "status": status,
        "groupKey": f'{{}}/{{namespace="shop"}}:{{alertname="{first["alertname"]}"}}',
        "truncatedAlerts": 0, "alerts": alerts,
        "groupLabels": {"alertname": first["alertname"], "namespace": "shop"},
        "commonLabels": common, "commonAnnotations": {},
        "externalURL": "http://alertmanager.monitoring.svc:9093",
    }


# --- Grafana ---------------------------------------------------------------------------

GRAFANA_HEADERS = {"Content-Type": "application/json", "User-Agent": "Grafana"}


def grafana(status: str, name: str, service: str, severity: str, instance: str, summary: str,
            starts: str, ends: str, fingerprint: str, folder: str) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {"alertname": name, "grafana_folder": folder, "instance": instance,
                   "service": service, "severity": severity},
        "annotations": {"summary": summary},
        "startsAt": starts, "endsAt": ends,
        "generatorURL": f"https://grafana.example.com/alerting/grafana/{fingerprint}/view?orgId=1",
        "fingerprint": fingerprint,
        "silenceURL": "https://grafana.example.com/alerting/silence/new?alertmanager=grafana",
        "dashboardURL": f"https://grafana.example.com/d/{service}?orgId=1",
        "panelURL": f"https://grafana.example.com/d/{service}?orgId=1&viewPanel=2",
        "values": {"B": 1},
        "valueString": f"[ var='B' labels={{instance={instance}}} value=1 ]",
    }
    title = f"[{status.upper()}:1] {name} ({folder} {instance} {service} {severity})"
    return {
        "receiver": "hindsight", "status": status, "orgId": 1, "alerts": [alert],
        "groupLabels": {"alertname": name, "grafana_folder": folder},
        "commonLabels": alert["labels"], "commonAnnotations": alert["annotations"],
        "externalURL": "https://grafana.example.com/", "version": "1",
        "groupKey": f'{{}}:{{alertname="{name}", grafana_folder="{folder}"}}',
        "truncatedAlerts": 0, "title": title, "state": "alerting" if status == "firing" else "ok",
        "message": f"**{status.capitalize()}**\n\nValue: B=1\nLabels:\n - alertname = {name}\n",
    }


# --- Uptime Kuma -----------------------------------------------------------------------

def kuma(status: int, time: str, local: str, msg: str, name: str, service: str,
         url: str, monitor_id: int) -> dict[str, Any]:
    word = "Up" if status == 1 else "Down"
    return {
        "heartbeat": {"monitorID": monitor_id, "status": status, "time": time, "msg": msg,
                      "important": True, "duration": 60, "timezone": "Europe/Berlin",
                      "timezoneOffset": "+01:00", "localDateTime": local},
        "monitor": {"id": monitor_id, "name": name, "description": None,
                    "pathName": f"Shop / {name}", "parent": 3, "childrenIDs": [], "url": url,
                    "method": "GET", "hostname": None, "port": None, "maxretries": 2,
                    "weight": 2000, "active": True, "forceInactive": False, "type": "http",
                    "timeout": 48, "interval": 60, "retryInterval": 60, "resendInterval": 0,
                    "keyword": None, "invertKeyword": False, "expiryNotification": True,
                    "ignoreTls": False, "upsideDown": False, "maxredirects": 10,
                    "accepted_statuscodes": ["200-299"], "notificationIDList": {"2": True},
                    "tags": [{"id": 7, "monitor_id": monitor_id, "tag_id": 2, "value": service,
                              "name": "service", "color": "#059669"},
                             {"id": 8, "monitor_id": monitor_id, "tag_id": 5, "value": "high",
                              "name": "severity", "color": "#DC2626"}],
                    "maintenance": False},
        "msg": f"[{name}] [{'✅' if status == 1 else '🔴'} {word}] {msg}",
    }


# --- Healthchecks ----------------------------------------------------------------------

def healthchecks(status: str, now: str, last_ping: str, next_ping: str,
                 n_pings: int) -> dict[str, Any]:
    tags = "prod service:payments severity:high"
    check = {"name": "payment-reconciliation", "slug": "payment-reconciliation", "tags": tags,
             "desc": "Nightly reconciliation of card settlements (cron on batch-1)",
             "grace": 3600, "n_pings": n_pings, "status": status, "started": False,
             "last_ping": last_ping, "next_ping": next_ping, "manual_resume": False,
             "methods": "", "subject": "", "subject_fail": "", "start_kw": "",
             "success_kw": "", "failure_kw": "", "filter_subject": False,
             "filter_body": False, "last_duration": 1843, "schedule": "0 2 * * *",
             "tz": "UTC"}
    return {"name": "payment-reconciliation", "status": status, "now": now,
            "code": "3f1d2c4b-7a8e-4b6f-9c0d-1e2f3a4b5c6d", "tags": tags, "check": check}


# --- Better Stack ----------------------------------------------------------------------

def betterstack(status: str, started: str, resolved: str | None) -> dict[str, Any]:
    return {"data": {"id": "733218604", "type": "incident", "attributes": {
        "name": "Marketing site", "url": "https://www.example.com/", "http_method": "get",
        "cause": "Status 503", "incident_group_id": None, "started_at": started,
        "acknowledged_at": None, "acknowledged_by": None, "resolved_at": resolved,
        "resolved_by": "Automatically" if resolved else None, "status": status,
        "team_name": "Web", "response_content": "<html><body>503 Service Unavailable</body></html>",
        "response_url": None, "response_options": None, "regions": ["us", "eu"],
        "screenshot_url": None, "origin_url": None, "escalation_policy_id": None,
        "call": False, "sms": False, "email": True, "push": True, "critical_alert": False,
        "metadata": {}},
        "relationships": {"monitor": {"data": {"id": "2419035", "type": "monitor"}}}}}


def story() -> None:
    # 1. Mon: checkout deploy, then 5xx.
    add("github", "2025-03-10T10:06:21.114Z", {
        "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/a1b2c3d",
        "X-GitHub-Event": "deployment_status",
        "X-GitHub-Delivery": "5d0c1a90-fd8b-11ef-8a3c-1c4f2e6a9b01",
        "X-GitHub-Hook-ID": "512347891",
        "X-GitHub-Hook-Installation-Target-ID": "186853002",
        "X-GitHub-Hook-Installation-Target-Type": "repository"}, {
        "action": "created",
        "deployment_status": {
            "url": "https://api.github.com/repos/acme/checkout-service/deployments/1502231877/statuses/2201398815",
            "id": 2201398815, "state": "success",
            "description": "Deployment finished successfully.", "environment": "production",
            "target_url": "https://github.com/acme/checkout-service/actions/runs/301552907",
            "log_url": "https://github.com/acme/checkout-service/actions/runs/301552907",
            "environment_url": "https://checkout.example.com",
            "created_at": "2025-03-10T10:06:20Z", "updated_at": "2025-03-10T10:06:20Z",
            "deployment_url": "https://api.github.com/repos/acme/checkout-service/deployments/1502231877",
            "repository_url": "https://api.github.com/repos/acme/checkout-service"},
        "deployment": {
            "url": "https://api.github.com/repos/acme/checkout-service/deployments/1502231877",
            "id": 1502231877, "sha": "4f2c9e1a7b3d5c8e0f1a2b3c4d5e6f708192a3b4", "ref": "main",
            "task": "deploy", "payload": {}, "original_environment": "production",
            "environment": "production", "description": "Checkout: new payment retry policy",
            "created_at": "2025-03-10T10:02:11Z", "updated_at": "2025-03-10T10:06:20Z",
            "statuses_url": "https://api.github.com/repos/acme/checkout-service/deployments/1502231877/statuses",
            "repository_url": "https://api.github.com/repos/acme/checkout-service",
            "transient_environment": False, "production_environment": True},
        "repository": {"id": 186853002, "name": "checkout-service",
                       "full_name": "acme/checkout-service", "private": True,
                       "html_url": "https://github.com/acme/checkout-service",
                       "default_branch": "main"},
        "organization": {"login": "acme", "id": 9919},
    })
    am1 = [am_alert("HighErrorRate", "checkout", "critical", "10.42.3.17:8080",
                    "5xx ratio above 5% on checkout-api", "2025-03-10T10:08:12.402Z", ZERO,
                    "7c1f0a3b9d2e4f61", "firing")]
    add("alertmanager", "2025-03-10T10:08:43.017Z", AM_HEADERS, am_group(am1, "firing"))
    am1r = [am_alert("HighErrorRate", "checkout", "critical", "10.42.3.17:8080",
                     "5xx ratio above 5% on checkout-api", "2025-03-10T10:08:12.402Z",
                     "2025-03-10T10:31:12.402Z", "7c1f0a3b9d2e4f61", "resolved")]
    add("alertmanager", "2025-03-10T10:31:44.530Z", AM_HEADERS, am_group(am1r, "resolved"))

    # 2. Mon: search latency (Grafana), 70 s.
    add("grafana", "2025-03-10T15:03:10.220Z", GRAFANA_HEADERS, grafana(
        "firing", "SearchLatencyHigh", "search", "warning", "search-api-2.search.svc",
        "p95 search latency above 800 ms", "2025-03-10T16:02:00+01:00", ZERO,
        "c81d2e3f4a5b6c7d", "Search"))
    add("grafana", "2025-03-10T15:41:10.480Z", GRAFANA_HEADERS, grafana(
        "resolved", "SearchLatencyHigh", "search", "warning", "search-api-2.search.svc",
        "p95 search latency above 800 ms", "2025-03-10T16:02:00+01:00",
        "2025-03-10T16:40:00+01:00", "c81d2e3f4a5b6c7d", "Search"))

    # 3. Tue: the 02:00 reconciliation does not run; down after the 1 h grace.
    hc = {"Content-Type": "application/json", "User-Agent": "healthchecks.io"}
    add("healthchecks", "2025-03-11T03:00:44.812Z", hc, healthchecks(
        "down", "2025-03-11T03:00:41+00:00", "2025-03-10T02:00:07+00:00",
        "2025-03-11T02:00:00+00:00", 418))
    add("healthchecks", "2025-03-11T03:41:57.090Z", hc, healthchecks(
        "up", "2025-03-11T03:41:55+00:00", "2025-03-11T03:41:55+00:00",
        "2025-03-12T02:00:00+00:00", 419))

    # 4. Tue: the marketing site answers 503 (Better Stack), 4 s.
    bs = {"Content-Type": "application/json"}
    add("betterstack", "2025-03-11T11:20:09.400Z", bs,
        betterstack("Started", "2025-03-11T11:20:05.000Z", None))
    add("betterstack", "2025-03-11T11:26:47.100Z", bs,
        betterstack("Resolved", "2025-03-11T11:20:05.000Z", "2025-03-11T11:26:44.000Z"))

    # 5. Wed: orders database disk saturation (Grafana, pending period 12 min).
    add("grafana", "2025-03-12T09:58:02.600Z", GRAFANA_HEADERS, grafana(
        "firing", "DiskIOSaturation", "orders-db", "warning", "pg-orders-1.db.example.com",
        "Disk I/O utilisation above 90% on pg-orders-1", "2025-03-12T10:45:30+01:00", ZERO,
        "a3f9c2e1d4b56789", "Databases"))
    add("grafana", "2025-03-12T10:31:02.950Z", GRAFANA_HEADERS, grafana(
        "resolved", "DiskIOSaturation", "orders-db", "warning", "pg-orders-1.db.example.com",
        "Disk I/O utilisation above 90% on pg-orders-1", "2025-03-12T10:45:30+01:00",
        "2025-03-12T11:30:30+01:00", "a3f9c2e1d4b56789", "Databases"))

    # 6. Wed: Argo CD deploys checkout; p99 latency alert notified after 6 min 30 s.
    argo = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
    add("argocd", "2025-03-12T14:02:47.615Z", argo, {
        "trigger": "on-deployed", "app": "checkout", "environment": "production",
        "namespace": "checkout", "repo": "https://github.com/acme/checkout-deploy.git",
        "revision": "b1e7c3d9f5a20486e1c3b5d7f9a0c2e4b6d8f0a1", "sync_status": "Synced",
        "health_status": "Healthy", "operation_phase": "Succeeded",
        "started_at": "2025-03-12T14:01:58Z", "finished_at": "2025-03-12T14:02:40Z",
        "reconciled_at": "2025-03-12T14:02:45Z",
        "url": "https://argocd.acme.example/applications/checkout"})
    am6 = [am_alert("CheckoutLatencyP99", "checkout", "critical", "10.42.3.17:8080",
                    "p99 checkout latency above 2 s", "2025-03-12T14:04:50.118Z", ZERO,
                    "e5a7c9b1d3f50246", "firing")]
    add("alertmanager", "2025-03-12T14:11:20.044Z", AM_HEADERS, am_group(am6, "firing"))
    am6r = [am_alert("CheckoutLatencyP99", "checkout", "critical", "10.42.3.17:8080",
                     "p99 checkout latency above 2 s", "2025-03-12T14:04:50.118Z",
                     "2025-03-12T14:39:50.118Z", "e5a7c9b1d3f50246", "resolved")]
    add("alertmanager", "2025-03-12T14:40:20.310Z", AM_HEADERS, am_group(am6r, "resolved"))

    # 7. Thu: Cronitor, the digest job did not run.
    cr = {"Content-Type": "application/json", "User-Agent": "Cronitor"}
    add("cronitor", "2025-03-13T03:15:04.512Z", cr, {
        "id": "email-digest-sender", "monitor": "Email digest sender",
        "description": "Email digest sender has not run in 15 minutes. Expected at 03:00 UTC.",
        "type": "ALERT", "rule": "not_run_in", "environment": "production",
        "group": "notifications", "issue_url": "https://cronitor.io/app/issues/Q7mZ4c",
        "monitor_url": "https://cronitor.io/app/monitors/email-digest-sender"})
    add("cronitor", "2025-03-13T03:38:09.020Z", cr, {
        "id": "email-digest-sender", "monitor": "Email digest sender",
        "description": "Email digest sender is passing. Incident duration: 23 minutes 5 seconds",
        "type": "RECOVERY", "rule": "not_run_in", "environment": "production",
        "group": "notifications", "issue_url": "https://cronitor.io/app/issues/Q7mZ4c",
        "monitor_url": "https://cronitor.io/app/monitors/email-digest-sender"})

    # 8. Thu: the card-authorisation probe (native, Standard Webhooks), 7 s.
    probe = {"Content-Type": "application/json",
             "User-Agent": "payments-probe/1.4 (python-httpx/0.27)"}
    add("native", "2025-03-13T16:30:12.480Z", {**probe, "webhook-id": "msg_2e8Lr1qW4yX0zAcO5dS2"}, {
        "kind": "uptime", "subject": "Card authorisation probe", "service": "payments",
        "state": "failing", "severity": "critical", "occurred_at": "2025-03-13T16:30:05.250Z",
        "summary": "3 of 3 probe regions saw HTTP 503 from POST /v1/authorise",
        "links": [{"url": "https://grafana.example.com/d/probe/card-auth",
                   "title": "Probe dashboard"}],
        "labels": {"region": "eu-west-1", "probe": "card-auth"}})
    add("native", "2025-03-13T16:44:03.910Z", {**probe, "webhook-id": "msg_2e8Lt9uZ2bC4dE6fG8hJ"}, {
        "kind": "uptime", "subject": "Card authorisation probe", "service": "payments",
        "state": "ok", "occurred_at": "2025-03-13T16:43:58Z",
        "summary": "All probe regions healthy", "labels": {"region": "eu-west-1",
                                                        "probe": "card-auth"}})

    # 9. Fri: Uptime Kuma, the orders API is down, 1 s.
    kh = {"Content-Type": "application/json", "User-Agent": "Uptime-Kuma/1.23.16"}
    add("uptime-kuma", "2025-03-14T10:00:32.004Z", kh, kuma(
        0, "2025-03-14 10:00:31.512", "2025-03-14 11:00:31", "Request failed with status code 502",
        "Orders API", "orders", "https://api.example.com/orders/health", 14))
    add("uptime-kuma", "2025-03-14T10:12:31.960Z", kh, kuma(
        1, "2025-03-14 10:12:31.498", "2025-03-14 11:12:31", "200 - OK",
        "Orders API", "orders", "https://api.example.com/orders/health", 14))

    # 10. Sat: GitLab deploys the storefront; the error budget burns, notified after 18 min.
    add("gitlab", "2025-03-15T20:55:31.200Z", {
        "Content-Type": "application/json", "User-Agent": "GitLab/17.9.2-ee",
        "X-Gitlab-Event": "Deployment Hook",
        "X-Gitlab-Event-UUID": "7c2e9d41-5b3a-4e8f-9a1c-2d3e4f5a6b7c",
        "X-Gitlab-Webhook-UUID": "9b62d7ef-fddd-4cac-8b89-65c29acdf561",
        "X-Gitlab-Instance": "https://gitlab.acme.example"}, {
        "object_kind": "deployment", "status": "success",
        "status_changed_at": "2025-03-15 21:55:29 +0100", "deployment_id": 231,
        "deployable_id": 9120,
        "deployable_url": "https://gitlab.acme.example/web/storefront/-/jobs/9120",
        "environment": "production", "environment_tier": "production",
        "environment_slug": "production",
        "environment_external_url": "https://www.example-shop.com",
        "project": {"id": 41, "name": "storefront", "description": "Storefront",
                    "web_url": "https://gitlab.acme.example/web/storefront",
                    "avatar_url": None, "namespace": "web",
                    "path_with_namespace": "web/storefront", "default_branch": "main"},
        "short_sha": "c0ffee42",
        "commit_url": "https://gitlab.acme.example/web/storefront/-/commit/c0ffee42d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
        "commit_title": "Serve product images from the new CDN origin"})
    add("argocd", "2025-03-15T20:58:12.310Z", argo, {
        "trigger": "on-deployed", "app": "storefront", "environment": "production",
        "namespace": "web", "repo": "https://gitlab.acme.example/web/storefront-deploy.git",
        "revision": "c0ffee42d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6", "sync_status": "Synced",
        "health_status": "Healthy", "operation_phase": "Succeeded",
        "started_at": "2025-03-15T20:57:31Z", "finished_at": "2025-03-15T20:58:05Z",
        "reconciled_at": "2025-03-15T20:58:10Z",
        "url": "https://argocd.acme.example/applications/storefront"})
    add("grafana", "2025-03-15T21:19:30.100Z", GRAFANA_HEADERS, grafana(
        "firing", "StorefrontErrorBudgetBurn", "storefront", "high", "www.example-shop.com",
        "Error budget burning 14x faster than allowed", "2025-03-15T22:01:00+01:00", ZERO,
        "f0e1d2c3b4a59687", "Storefront"))
    add("grafana", "2025-03-15T22:02:30.700Z", GRAFANA_HEADERS, grafana(
        "resolved", "StorefrontErrorBudgetBurn", "storefront", "high", "www.example-shop.com",
        "Error budget burning 14x faster than allowed", "2025-03-15T22:01:00+01:00",
        "2025-03-15T23:01:00+01:00", "f0e1d2c3b4a59687", "Storefront"))

    # 11. Sun: a search node was down 05:12-05:31, reported only at 06:40.
    am11 = [am_alert("SearchNodeDown", "search", "high", "10.42.7.3:9200",
                     "search node 10.42.7.3 unreachable", "2025-03-16T05:12:00.000Z",
                     "2025-03-16T05:31:00.000Z", "9d8c7b6a5f4e3d21", "resolved")]
    add("alertmanager", "2025-03-16T06:40:05.660Z", AM_HEADERS, am_group(am11, "resolved"))


def main() -> None:
    story()
    deliveries.sort(key=lambda d: d["received_at"])
    OUT.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in deliveries),
                   encoding="utf-8")
    print(f"wrote {len(deliveries)} deliveries to {OUT}")


if __name__ == "__main__":
    main()
