"""Amazon SNS HTTP/HTTPS deliveries: the message signature, its signing certificates, and
the subscription confirmation SNS asks of a new endpoint.

SNS signs every message it POSTs (Notification, SubscriptionConfirmation,
UnsubscribeConfirmation) with the private key of a certificate it publishes at the
message's ``SigningCertURL`` (Amazon SNS Developer Guide, "Verifying the signatures of
Amazon SNS messages", https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html,
and "Parsing message formats", sns-message-and-json-formats.html):

1. The string to sign is each signed key's name and value on lines of their own, in
   byte order of the names: ``Message``, ``MessageId``, ``Subject`` (Notification, when
   present), ``SubscribeURL`` and ``Token`` (the two confirmations), ``Timestamp``,
   ``TopicArn``, ``Type``; every line ends with a newline.
2. ``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA, both PKCS #1 v1.5, the
   signature base64 in ``Signature``.
3. The certificate is trusted because of where it comes from: an https URL on an SNS
   endpoint (``sns.<region>.amazonaws.com``, or ``.amazonaws.com.cn`` in China), path
   ending ``.pem``. A URL of any other shape is refused before anything is fetched, so a
   forged message can neither point us at a key of its own nor make us call anywhere
   else. This is the check AWS's own validators make (aws/aws-js-sns-message-validator
   ``defaultHostPattern = /^sns\\.[a-zA-Z0-9\\-]{3,}\\.amazonaws\\.com(\\.cn)?$/``).

Certificates are cached in memory and in a directory (``<data_dir>/sns-certificates``
unless ``[sources.cloudwatch] certificate_dir`` says otherwise), one PEM file per URL, so
a restart (and a test, on a machine with no network) needs no fetch. The only outbound
calls are that fetch, at the first message signed by a new certificate, and the GET of a
``SubscribeURL`` after a SubscriptionConfirmation was stored and answered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = structlog.get_logger("hindsight.ingest")

MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The keys each message type's signature covers, in the order the string to sign lists
# them (byte order of the names; a missing optional key is left out).
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                 "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                "Token", "TopicArn", "Type"),
}
OPTIONAL_KEYS = frozenset({"Subject"})
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1, "2": hashes.SHA256}
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?$")
_FILE_SAFE = re.compile(r"[^A-Za-z0-9._-]")
# SNS retries an HTTP/S delivery with its original Timestamp for at most an hour: a
# delivery policy's whole retry span is capped at 3,600 s (SNS Developer Guide, "Amazon
# SNS message delivery retries"). An older message is a replay.
MAX_AGE = timedelta(hours=1)
FETCH_TIMEOUT = 1.5  # seconds; the webhook's answer is due within 2 s (webhooks.py)
CONFIRM_TIMEOUT = 10.0
MAX_CERTIFICATE_BYTES = 64 * 1024


def sns_url_problem(url: Any, *, certificate: bool) -> str | None:
    """None when ``url`` is an https URL on an Amazon SNS endpoint (for a certificate,
    one whose path ends ``.pem``), else why not. Checked before any request is made."""
    if not isinstance(url, str):
        return "not a URL"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme != "https":
        return "not https"
    if parts.username is not None or parts.password is not None or port not in (None, 443):
        return "carries credentials or a port"
    if not _SNS_HOST.match(parts.hostname or ""):
        return "not an Amazon SNS host (sns.<region>.amazonaws.com)"
    if certificate and (not parts.path.endswith(".pem") or parts.query or parts.fragment):
        return "not a .pem certificate path"
    return None


def message_of(body: bytes) -> dict[str, Any] | None:
    """The SNS message a body holds (a JSON object with a known ``Type``), else None."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("Type") not in MESSAGE_TYPES:
        return None
    return message


def string_to_sign(message: Mapping[str, Any]) -> bytes | None:
    """The documented canonical form of ``message``; None when a signed key is missing
    or is not a string."""
    lines: list[str] = []
    for key in SIGNED_KEYS[str(message.get("Type"))]:
        value = message.get(key)
        if value is None and key in OPTIONAL_KEYS:
            continue
        if not isinstance(value, str):
            return None
        lines += [key, value]
    return ("\n".join(lines) + "\n").encode("utf-8")


def verify_signature(message: Mapping[str, Any], certificate: x509.Certificate) -> str | None:
    """None when ``message``'s Signature is the certificate's key's signature of its
    string to sign, else why not."""
    algorithm = _HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        return "SignatureVersion is neither 1 nor 2"
    signed = string_to_sign(message)
    if signed is None:
        return "a signed field is missing"
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        return "Signature is not base64"
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "the signing certificate's key is not RSA"
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        return "Signature does not match"
    return None


def timestamp_problem(message: Mapping[str, Any], received_at: datetime,
                      skew_seconds: int) -> str | None:
    """The message's ``Timestamp`` (its publish time, kept by retries) must be at most
    ``MAX_AGE`` before receipt and at most the clock skew after it."""
    text = message.get("Timestamp")
    try:
        sent = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return "Timestamp is not a time"
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if received_at - sent > MAX_AGE:
        return "Timestamp over an hour before receipt (replayed)"
    if sent - received_at > timedelta(seconds=skew_seconds):
        return "Timestamp after receipt beyond the tolerance (clock skew)"
    return None


def certificate_file_name(url: str) -> str:
    """The cache file of a certificate URL (already checked): host and path, readable."""
    parts = urlsplit(url)
    return _FILE_SAFE.sub("_", f"{parts.hostname}{parts.path}")


Fetch = Callable[[str, float], Awaitable[bytes]]


async def http_get(url: str, seconds: float) -> bytes:
    """GET ``url`` (already checked against the SNS pattern); the body, or an exception.
    No redirect is followed: the URL checked must be the URL answered."""
    import aiohttp

    client_timeout = aiohttp.ClientTimeout(total=seconds)
    async with aiohttp.ClientSession(timeout=client_timeout) as session, \
            session.get(url, allow_redirects=False) as response:
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        body = await response.content.read(MAX_CERTIFICATE_BYTES + 1)
        if len(body) > MAX_CERTIFICATE_BYTES:
            raise OSError("answer too large")
        return body


@dataclass
class PendingConfirmation:
    topic_arn: str
    subscribe_url: str
    since: str
    reason: str


@dataclass
class SnsEndpoint:
    """What an SNS-fed source needs beyond a token: the signing certificates (memory, then
    the directory, then a fetch) and the confirmations of new subscriptions. ``pending``
    holds, by topic, each confirmation this process could not make, with the URL the
    operator can open instead (also logged as ``sns_subscription_confirmation_failed``)."""

    directory: Path | None
    fetch: Fetch | None = None  # None: ``http_get``, looked up at each call
    _certificates: dict[str, x509.Certificate] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    pending: dict[str, PendingConfirmation] = field(default_factory=dict)

    def certificate(self, url: str) -> x509.Certificate | None:
        """A certificate already loaded; authentication never waits on I/O."""
        return self._certificates.get(url)

    def add(self, url: str, pem: bytes) -> x509.Certificate:
        certificate = x509.load_pem_x509_certificate(pem)
        self._certificates[url] = certificate
        return certificate

    async def prepare(self, body: bytes) -> bool:
        """Load the certificate ``body``'s message names, from the directory or else from
        SNS. False only when a fetch was needed and failed (the sender should retry);
        True too when the body is not an SNS message or its URL is not SNS's: the
        authentication that follows refuses those without any fetch."""
        message = message_of(body)
        if message is None:
            return True
        url = message.get("SigningCertURL")
        if sns_url_problem(url, certificate=True) is not None or url in self._certificates:
            return True
        assert isinstance(url, str)
        path = None if self.directory is None else self.directory / certificate_file_name(url)
        if path is not None and path.is_file():
            with contextlib.suppress(ValueError):
                self.add(url, path.read_bytes())
                return True
        try:
            pem = await (self.fetch or http_get)(url, FETCH_TIMEOUT)
            self.add(url, pem)
        except (OSError, ValueError, TimeoutError) as exc:
            log.warning("sns_certificate_unavailable", url=url, error=type(exc).__name__)
            return False
        except Exception as exc:  # aiohttp's ClientError and the like: retry later
            log.warning("sns_certificate_unavailable", url=url, error=type(exc).__name__)
            return False
        if path is not None:
            _write_atomically(path, pem)
        return True

    def after_stored(self, body: bytes) -> None:
        """After a delivery was stored: a SubscriptionConfirmation's ``SubscribeURL`` is
        visited in the background, never delaying the answer."""
        message = message_of(body)
        if message is None or message.get("Type") != "SubscriptionConfirmation":
            return
        url = message.get("SubscribeURL")
        topic = str(message.get("TopicArn", ""))
        problem = sns_url_problem(url, certificate=False)
        if problem is not None or not isinstance(url, str):
            self._pending(topic, str(url), f"SubscribeURL {problem}: not visited")
            return
        task = asyncio.get_running_loop().create_task(self._confirm(topic, url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, topic: str, url: str) -> None:
        await asyncio.sleep(0)  # let the handler send its answer first
        try:
            await (self.fetch or http_get)(url, CONFIRM_TIMEOUT)
        except Exception as exc:  # any failure leaves it to the operator, with the URL
            self._pending(topic, url, f"{type(exc).__name__}: {exc}"[:200])
            return
        self.pending.pop(topic, None)
        log.info("sns_subscription_confirmed", topic_arn=topic)

    def _pending(self, topic: str, url: str, reason: str) -> None:
        self.pending[topic] = PendingConfirmation(
            topic, url, datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            reason)
        log.warning("sns_subscription_confirmation_failed", topic_arn=topic, reason=reason,
                    subscribe_url=url,
                    action="open subscribe_url in a browser to confirm the subscription")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
