"""Who may post a delivery: one check per source, every comparison in constant time.

A check sees the raw body, the request headers and query, and the delivery's
``received_at`` (the recorded time for imports), against which signature time windows
are measured. It returns None when authentic, else a short reason for the log (never a
secret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ingest import sns

# Source -> how it authenticates. Token sources accept ``Authorization: Bearer``, Basic
# auth with the token as password, or ``?token=`` for tools that cannot set headers.
TOKEN_SOURCES = frozenset(
    {"alertmanager", "uptime-kuma", "uptimerobot", "betterstack", "healthchecks", "cronitor",
     "argocd"}
)
# Pingdom's webhook integration is a URL only (``?token=``); Gatus' custom provider
# sends the headers it is configured with (Authorization: Bearer).
TOKEN_SOURCES |= {"pingdom", "gatus"}
# Azure Monitor action groups and Google Cloud Monitoring webhook channels send no
# signature: a token in the URL (``?token=``), or Basic auth with the token as password
# (credentials in the URL's userinfo, or the GCP channel's basic-auth fields).
TOKEN_SOURCES |= {"azure-monitor", "google-cloud-monitoring"}
# Datadog webhooks and Opsgenie's Webhook integration send custom headers the user sets
# (Authorization: Bearer), and Datadog also Basic auth from the URL's userinfo.
TOKEN_SOURCES |= {"datadog", "opsgenie"}
# Grafana lets the user name the timestamp header; these are the names its docs use.
GRAFANA_TIMESTAMP_HEADERS = (
    "x-grafana-alerting-timestamp",
    "x-grafana-alerting-signature-timestamp",
)


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    secrets: tuple[str, ...] = field(default=())  # current first, then previous ones
    # Amazon SNS sources (cloudwatch): the topics accepted (empty: any) and the signing
    # certificates and subscription confirmations (ingest/sns.py).
    topic_arns: tuple[str, ...] = field(default=())
    sns: sns.SnsEndpoint | None = None


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: Mapping[str, str]  # names lower-cased
    query: Mapping[str, str]
    received_at: datetime


def _equal(a: str | bytes, b: str | bytes) -> bool:
    # Constant time: how much of a guess matched must not show in the answer's timing.
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token offered as ``Bearer``, as a Basic password, or as ``?token=``."""
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return query.get("token") or None


def check_token(request: Request, creds: Credentials) -> str | None:
    if not creds.token:
        return "no token is configured for this source"
    token = presented_token(request.headers, request.query)
    if token is None:
        return "missing token"
    return None if _equal(token, creds.token) else "wrong token"


def check_github(request: Request, creds: Credentials) -> str | None:
    signature = request.headers.get("x-hub-signature-256", "")
    if not signature.startswith("sha256="):
        return "missing X-Hub-Signature-256"
    for secret in creds.secrets:
        if _equal(signature, "sha256=" + _hmac_hex(secret, request.body)):
            return None
    return "X-Hub-Signature-256 does not match"


def check_gitlab(request: Request, creds: Credentials) -> str | None:
    token = request.headers.get("x-gitlab-token")
    if not token:
        return "missing X-Gitlab-Token"
    if any(_equal(token, secret) for secret in creds.secrets):
        return None
    return "X-Gitlab-Token does not match"


def check_grafana(request: Request, creds: Credentials, tolerance: int) -> str | None:
    """Grafana signs ``timestamp:body`` (hex HMAC-SHA256) when a timestamp header is
    configured, else the body alone; a token works as for the other sources."""
    signature = request.headers.get("x-grafana-alerting-signature")
    if signature is None or not creds.secrets:
        return check_token(request, creds)
    timestamp = next((request.headers[h] for h in GRAFANA_TIMESTAMP_HEADERS
                      if h in request.headers), None)
    if timestamp is not None:
        problem = _within(timestamp, request.received_at, tolerance)
        if problem:
            return problem
        signed = timestamp.encode() + b":" + request.body
    else:
        signed = request.body
    for secret in creds.secrets:
        if _equal(signature.strip().lower(), _hmac_hex(secret, signed)):
            return None
    return "X-Grafana-Alerting-Signature does not match"


def check_pagerduty(request: Request, creds: Credentials) -> str | None:
    """``X-PagerDuty-Signature: v1=<hex>,v1=<hex>``: several while a secret rotates."""
    header = request.headers.get("x-pagerduty-signature", "")
    offered = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    if not offered:
        return "missing X-PagerDuty-Signature"
    for secret in creds.secrets:
        expected = _hmac_hex(secret, request.body)
        if any(_equal(sig, expected) for sig in offered):
            return None
    return "X-PagerDuty-Signature does not match"


def standard_webhooks_key(secret: str) -> bytes:
    """A Standard Webhooks secret is ``whsec_`` + base64 of the key bytes."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        return raw.encode()


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_standard_webhooks(request: Request, creds: Credentials, tolerance: int) -> str | None:
    """Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` within the tolerance of
    receipt, ``webhook-signature`` a space-separated list (several during rotation)."""
    msg_id = request.headers.get("webhook-id")
    timestamp = request.headers.get("webhook-timestamp")
    header = request.headers.get("webhook-signature")
    if not (msg_id and timestamp and header):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    problem = _within(timestamp, request.received_at, tolerance)
    if problem:
        return problem
    offered = [s for s in header.split() if s.startswith("v1,")]
    for secret in creds.secrets:
        expected = standard_webhooks_signature(secret, msg_id, timestamp, request.body)
        if any(_equal(sig, expected) for sig in offered):
            return None
    return "webhook-signature does not match"


def _body_hmac_sent_at(request: Request, creds: Credentials, headers: tuple[str, str],
                       too_old: Callable[[str], str | None]) -> str | None:
    """A hex HMAC-SHA256 of the body in one header and the send time in another, which
    ``too_old`` checks against the window (the signature does not cover it)."""
    signature_header, time_header = headers
    signature = request.headers.get(signature_header.lower(), "").strip().lower()
    if not signature:
        return f"missing {signature_header}"
    sent = request.headers.get(time_header.lower())
    if not sent:
        return f"missing {time_header}"
    problem = too_old(sent)
    if problem:
        return problem
    for secret in creds.secrets:
        if _equal(signature, _hmac_hex(secret, request.body)):
            return None
    return f"{signature_header} does not match"


def check_checkly(request: Request, creds: Credentials, tolerance: int) -> str | None:
    """Checkly's webhook secret: ``x-checkly-signature`` is the hex HMAC-SHA256 of the
    body (checklyhq.com/docs/integrations/alerts/webhooks, "Webhook Secrets"), and every
    webhook carries its send time in ``x-checkly-timestamp`` ("Webhook Retries"). The
    signature does not cover the timestamp, so the window refuses a captured delivery
    replayed as it was sent, not one replayed with a new timestamp."""
    return _body_hmac_sent_at(request, creds, ("x-checkly-signature", "x-checkly-timestamp"),
                              lambda sent: _within_instant(sent, request.received_at, tolerance))


def _within_instant(value: str, received_at: datetime, tolerance: int) -> str | None:
    """A send time as Unix seconds, Unix milliseconds or ISO 8601 (Checkly documents the
    header, not its form), within ``tolerance`` seconds of receipt."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return "signature timestamp is not a time"
        if parsed.tzinfo is None:
            return "signature timestamp has no time zone"
        number = parsed.timestamp()
    else:
        if number > 1e11:  # milliseconds
            number /= 1000.0
    if abs(received_at.timestamp() - number) > tolerance:
        return "signature timestamp outside the tolerance (replayed or clock skew)"
    return None


def check_sns(request: Request, creds: Credentials, tolerance: int) -> str | None:
    """An Amazon SNS message (ingest/sns.py): its signature by the certificate at its
    ``SigningCertURL``, which must be an SNS URL (checked before anything was fetched);
    its ``Timestamp`` at most an hour old; its topic one of ``topic_arns`` when set; and
    the token too when one is configured. A signature alone proves only that *some* AWS
    account's topic sent it, and any account can subscribe this URL to its topic: so a
    token or a topic list is required."""
    if creds.token:
        problem = check_token(request, creds)
        if problem:
            return problem
    elif not creds.topic_arns:
        return "set topic_arns or a token: any AWS account can sign an SNS message"
    message = sns.message_of(request.body)
    if message is None:
        return "not an Amazon SNS message"
    url = message.get("SigningCertURL")
    problem = sns.sns_url_problem(url, certificate=True)
    if problem is not None:
        return f"SigningCertURL is {problem}"
    if creds.topic_arns and message.get("TopicArn") not in creds.topic_arns:
        return "TopicArn is not one of topic_arns"
    problem = sns.timestamp_problem(message, request.received_at, tolerance)
    if problem is not None:
        return problem
    certificate = None if creds.sns is None else creds.sns.certificate(str(url))
    if certificate is None:
        return "the SNS signing certificate is not available"
    return sns.verify_signature(message, certificate)


def check_vercel(request: Request, creds: Credentials) -> str | None:
    """``x-vercel-signature``: the hex HMAC-SHA1 of the raw body with the webhook's
    secret (or the integration's client secret), vercel.com/docs/webhooks/webhooks-api
    "Securing webhooks". Vercel sends no timestamp, so nothing here bounds a replay: the
    event's ``id``, kept by Vercel's retries, makes a replayed delivery a duplicate
    (ingest.webhooks.delivery_id)."""
    signature = request.headers.get("x-vercel-signature", "").strip().lower()
    if not signature:
        return "missing x-vercel-signature"
    for secret in creds.secrets:
        expected = hmac.new(secret.encode(), request.body, hashlib.sha1).hexdigest()
        if _equal(signature, expected):
            return None
    return "x-vercel-signature does not match"


def check_sentry(request: Request, creds: Credentials, tolerance: int) -> str | None:
    """Sentry's integration-platform webhooks: ``Sentry-Hook-Signature`` is the hex
    HMAC-SHA256 of the body with the integration's client secret, and
    ``Sentry-Hook-Timestamp`` the send time in Unix seconds (docs.sentry.io
    integration-platform/webhooks; sentry ``app_platform_event.py``). The signature does
    not cover the timestamp: the window refuses a captured delivery replayed as it was
    sent, not one replayed with a rewritten timestamp."""
    return _body_hmac_sent_at(request, creds, ("Sentry-Hook-Signature", "Sentry-Hook-Timestamp"),
                              lambda sent: _within(sent, request.received_at, tolerance))


def _within(timestamp: str, received_at: datetime, tolerance: int) -> str | None:
    try:
        sent = int(timestamp.strip())
    except ValueError:
        return "signature timestamp is not a Unix time"
    if abs(received_at.timestamp() - sent) > tolerance:
        return "signature timestamp outside the tolerance (replayed or clock skew)"
    return None


def authenticate(source: str, request: Request, creds: Credentials, tolerance: int) -> str | None:
    """None when the request is authentic for ``source``, else the reason it is not."""
    if source == "cloudwatch":
        return check_sns(request, creds, tolerance)
    if source in TOKEN_SOURCES:
        return check_token(request, creds)
    if not creds.secrets and source != "grafana":
        return "no secret is configured for this source"
    match source:
        case "github":
            return check_github(request, creds)
        case "gitlab":
            return check_gitlab(request, creds)
        case "grafana":
            return check_grafana(request, creds, tolerance)
        case "pagerduty":
            return check_pagerduty(request, creds)
        case "native":
            return check_standard_webhooks(request, creds, tolerance)
        case "sentry":
            return check_sentry(request, creds, tolerance)
        case "vercel":
            return check_vercel(request, creds)
        case "checkly":
            return check_checkly(request, creds, tolerance)
    return f"unknown source {source!r}"
