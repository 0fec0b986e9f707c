"""Test helpers: settings with known credentials, and each source's authentication
computed the way the real tool computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from hindsight.settings import Settings, load_settings
from ingest.auth import standard_webhooks_signature
from tests.fixtures.sns import CERTIFICATE_DIR, TEST_TOPIC, restamped

API_TOKEN = "test-api-token-0123456789"
TOKENS = {s: f"token-for-{s}-0123" for s in (
    "alertmanager", "grafana", "uptime-kuma", "uptimerobot", "betterstack", "healthchecks",
    "cronitor", "argocd", "pingdom", "gatus", "cloudwatch", "datadog", "opsgenie",
    "azure-monitor", "google-cloud-monitoring")}
SECRETS = {
    "github": "github-webhook-secret",
    "gitlab": "gitlab-webhook-secret",
    "pagerduty": "pagerduty-secret",
    "native": "whsec_" + base64.b64encode(b"native-secret-key-bytes-0123").decode(),
    "grafana": "grafana-hmac-secret",
    "checkly": "checkly-webhook-secret",
    "sentry": "sentry-client-secret-0123456789abcdef",
    "vercel": "vercel-webhook-secret-0123456789",
}


def settings_for_tests(**overrides: Any) -> Settings:
    sources: dict[str, Any] = {s: {"token": t} for s, t in TOKENS.items()}
    for source, secret in SECRETS.items():
        sources.setdefault(source, {})["secret"] = secret
    # Amazon SNS: the test topic, and the test signing certificate where the cache finds
    # it, so verification runs for real with nothing fetched (tests/fixtures/sns.py).
    sources["cloudwatch"] |= {"topic_arns": [TEST_TOPIC], "certificate_dir": str(CERTIFICATE_DIR)}
    settings = load_settings(environ={}, config=None)
    values = {
        "api": {"tokens": [API_TOKEN]},
        "sources": sources,
        **overrides,
    }
    return settings.model_validate({**settings.model_dump(), **values})


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


def signed_headers(source: str, body: bytes, headers: dict[str, str] | None = None,
                   at: datetime | None = None) -> dict[str, str]:
    """The tool's own headers plus the credential it would send for ``body``."""
    out = dict(headers or {})
    lower = {k.lower(): v for k, v in out.items()}
    if source == "github":
        digest = hmac.new(SECRETS["github"].encode(), body, hashlib.sha256).hexdigest()
        out["X-Hub-Signature-256"] = f"sha256={digest}"
    elif source == "gitlab":
        out["X-Gitlab-Token"] = SECRETS["gitlab"]
    elif source == "pagerduty":
        digest = hmac.new(SECRETS["pagerduty"].encode(), body, hashlib.sha256).hexdigest()
        out["X-PagerDuty-Signature"] = f"v1={digest}"
    elif source == "native":
        msg_id = lower.get("webhook-id") or "msg_" + hashlib.sha256(body).hexdigest()[:20]
        timestamp = str(int((at or datetime.now().astimezone()).timestamp()))
        out["webhook-id"] = msg_id
        out["webhook-timestamp"] = timestamp
        out["webhook-signature"] = standard_webhooks_signature(SECRETS["native"], msg_id,
                                                               timestamp, body)
        for stale in ("Webhook-Id", "Webhook-Timestamp"):
            out.pop(stale, None)
    elif source == "checkly":
        # checklyhq.com/docs/integrations/alerts/webhooks: hex HMAC-SHA256 of the body;
        # every webhook carries its send time in x-checkly-timestamp.
        digest = hmac.new(SECRETS["checkly"].encode(), body, hashlib.sha256).hexdigest()
        out["x-checkly-signature"] = digest
        out["x-checkly-timestamp"] = str(int((at or datetime.now().astimezone()).timestamp()
                                             * 1000))
    elif source == "sentry":
        # docs.sentry.io integration-platform/webhooks: hex HMAC-SHA256 of the body with
        # the client secret; Sentry-Hook-Timestamp is the send time in Unix seconds.
        # A recorded delivery (``at`` given) keeps the send time it was recorded with;
        # a live one is sent now.
        digest = hmac.new(SECRETS["sentry"].encode(), body, hashlib.sha256).hexdigest()
        recorded = lower.get("sentry-hook-timestamp") if at is not None else None
        for stale in [k for k in out if k.lower() == "sentry-hook-timestamp"]:
            out.pop(stale)
        out["Sentry-Hook-Signature"] = digest
        out["Sentry-Hook-Timestamp"] = recorded or str(int((at or datetime.now().astimezone())
                                                           .timestamp()))
    elif source == "vercel":
        # vercel.com/docs/webhooks/webhooks-api "Securing webhooks": hex HMAC-SHA1 of the
        # raw body with the webhook's secret.
        digest = hmac.new(SECRETS["vercel"].encode(), body, hashlib.sha1).hexdigest()
        out["x-vercel-signature"] = digest
    else:
        out["Authorization"] = f"Bearer {TOKENS[source]}"
    return out


def live_body(source: str, body: bytes, at: datetime) -> bytes:
    """``body`` as the tool would send it at ``at``: unchanged, except an Amazon SNS
    message, whose signed Timestamp must be recent (it is published again and re-signed
    with the test key: tests/fixtures/sns.py)."""
    return restamped(body, at) if source == "cloudwatch" else body


async def run_projector_until(projector: Any, events: int, seconds: float = 30) -> None:
    """Run a ``Projector`` (its leader loop, as ``serve``'s projector process does) until
    it has folded ``events`` events, then stop it."""
    import asyncio

    task = asyncio.create_task(projector.run())
    try:
        async with projector.projected:
            await asyncio.wait_for(projector.projected.wait_for(
                lambda: projector.status.events >= events), seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
