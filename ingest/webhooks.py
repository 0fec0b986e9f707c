"""The write side's HTTP surface: ``POST /v1/webhooks/{source}`` and the import of
recorded deliveries. Every authentic delivery is committed before it is answered, even
one we cannot understand: nothing acknowledged is ever lost.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiohttp import web

from ingest.auth import Credentials, Request, authenticate
from ingest.delivery import Delivery, keep_headers, stored_delivery
from ingest.errors import StoreError
from ingest.group_commit import GroupCommitter
from ingest.signals import Signal, format_time
from ingest.sources import (
    SOURCES,
    Understanding,
    signal_json,
    stored_understanding,
    understand,
)
from ingest.store import Appended, DedupWindow, NewEvent, RecordedEvent

log = structlog.get_logger("hindsight.ingest")
_stdlib_log = logging.getLogger("hindsight.ingest")  # its level: hindsight.logs.configure

DELIVERY_EVENT = "delivery.received"
# Another receipt of a stored delivery (a retry, a redelivery, a re-import at another
# time): no body, a pointer to the stored delivery, its own receipt and kept headers.
COPY_EVENT = "delivery.copy"
ANSWER_DEADLINE = 1.8  # seconds: a sender hears 503 within 2 s when the store is down

@dataclass(frozen=True)
class IngestSettings:
    credentials: Mapping[str, Credentials]   # enabled sources only
    max_body_bytes: int = 1024 * 1024
    import_max_bytes: int = 64 * 1024 * 1024   # a whole JSON Lines file of deliveries
    tolerance_seconds: int = 300
    dedup_window_seconds: float = 600


@dataclass
class Outcome:
    """What a delivery gets answered: HTTP status and JSON body."""

    status: int
    body: dict[str, Any]
    signals: list[Signal] = field(default_factory=list)


_DELIVERY_ID_HEADERS = ("x-github-delivery", "x-gitlab-event-uuid", "webhook-id")
_GITLAB_ID_HEADERS = ("idempotency-key", "webhook-id", "x-gitlab-event-uuid")


# Sources whose delivery id is in the body, by its path there; each is the same on every
# retry of one event. Amazon SNS: the signed ``MessageId`` (also sent as the unsigned
# x-amz-sns-message-id header). Vercel: the event ``id`` (vercel.com/docs/webhooks,
# "Events"; its signature has no timestamp, so this is its replay protection).
# PagerDuty V3: ``event.id``.
_BODY_DELIVERY_IDS: dict[str, tuple[str, ...]] = {
    "cloudwatch": ("MessageId",),
    "vercel": ("id",),
    "pagerduty": ("event", "id"),
}


def _body_id(body: bytes, path: tuple[str, ...]) -> str | None:
    """The non-empty string at ``path`` in a JSON body, else None."""
    try:
        value: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None


def delivery_id(source: str, headers: Mapping[str, str], body: bytes) -> tuple[str, bool]:
    """A delivery's dedup key and whether it holds only within the retry window
    (ARCHITECTURE.md, "Idempotent appends").

    - The tool's own delivery id when it sends one (GitHub ``X-GitHub-Delivery``, GitLab
      ``Idempotency-Key``, else its ``X-Gitlab-Event-UUID``, Standard Webhooks
      ``webhook-id``, PagerDuty's ``event.id``, Amazon SNS's ``MessageId``, Vercel's
      ``id``): the same id is the same delivery whenever it comes again. GitLab's
      ``Idempotency-Key`` (17.4+) is the "unique ID that remains consistent across
      webhook retries" (docs.gitlab.com user/project/integrations/webhooks, "Delivery
      headers"): a "Resend request" from a hook's Recent events carries it unchanged but
      gets a new ``X-Gitlab-Event-UUID``, so the key comes first; older GitLab sends only
      the event UUID.
    - Else the source and a hash of the body, windowed: identical bytes are a retry only
      within ``dedup_window_seconds`` of a stored report's receipt. Later they are a new
      report: Alertmanager re-sends a firing group byte for byte every
      ``repeat_interval``; Cronitor's body for a job failing again another day is the
      same.
    """
    ids = _GITLAB_ID_HEADERS if source == "gitlab" else _DELIVERY_ID_HEADERS
    for header in ids:
        value = headers.get(header)
        if value:
            return f"{source}:{header}:{value}", False
    path = _BODY_DELIVERY_IDS.get(source)
    if path is not None:
        found = _body_id(body, path)
        if found is not None:
            return f"{source}:{'.'.join(path)}:{found}", False
    return f"{source}:sha256:{hashlib.sha256(body).hexdigest()}", True


AfterStore = Callable[[str, int, datetime, bytes, Sequence[Signal]], None]


class Ingestor:
    def __init__(
        self,
        committer: GroupCommitter,
        settings: IngestSettings,
        count: Callable[[str, str], None] = lambda source, outcome: None,
    ) -> None:
        self.committer = committer
        self.settings = settings
        self.count = count  # (source, outcome) -> None: feeds hindsight_deliveries_total
        # (source, position, received_at, body, signals) of each live delivery newly
        # stored, before it is answered: it must only queue work, never wait
        # (ingest/prometheus_pending.py asks Prometheus for an alert's pending period).
        self.after_store: AfterStore | None = None

    async def receive(
        self,
        source: str,
        body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        received_at: datetime,
        *,
        imported: bool = False,
    ) -> Outcome:
        creds = self.settings.credentials.get(source)
        if source not in SOURCES or creds is None:
            self.count("unknown", "unknown_source")
            return Outcome(404, {"error": f"unknown or disabled source {source!r}"})
        if len(body) > self.settings.max_body_bytes:
            self.count(source, "too_large")
            return Outcome(413, {"error": f"body over {self.settings.max_body_bytes} bytes"})
        lower = {k.lower(): v for k, v in headers.items()}
        # Amazon SNS: the signing certificate is loaded (cache, else fetched from an SNS
        # URL only) before the check, which itself never waits on I/O.
        if creds.sns is not None and not await creds.sns.prepare(body):
            self.count(source, "unavailable")
            return Outcome(503, {"error": "the SNS signing certificate could not be "
                                          "fetched; retry later"})
        problem = authenticate(source, Request(body, lower, query, received_at), creds,
                               self.settings.tolerance_seconds)
        if problem is not None:
            self.count(source, "unauthenticated")
            # The reason names what was wrong, never the credential presented.
            log.warning("delivery_refused", source=source, reason=problem)
            return Outcome(401, {"error": "missing or wrong credential or signature"})

        delivery = Delivery(source=source, body=body, received_at=received_at,
                            headers=keep_headers(lower))
        understood = understand(delivery)
        key, windowed = delivery_id(source, lower, body)
        event = NewEvent(
            stream=f"delivery-{source}-{uuid.uuid4().hex}",
            type=DELIVERY_EVENT,
            received_at=received_at,
            data=delivery_data(delivery, understood),
            metadata={"imported": imported},
            body=body,
            # A windowed key names its receipt, so reports of the same bytes a window
            # apart each get one, and re-importing a recorded report is still a no-op.
            idempotency_key=f"{key}@{format_time(received_at)}" if windowed else key,
            dedup_window=(DedupWindow(key, self.settings.dedup_window_seconds)
                          if windowed else None),
        )
        appended = await self.committer.append(event)
        if appended.duplicate:
            # A retry answers as the first delivery did: from what was stored then; and
            # its own receipt is recorded, so detection can take the earliest copy.
            first = await self.committer.store.get(appended.position)
            if first is not None:
                understood = understand(stored_delivery(first))
                if first.received_at != received_at:
                    await self.committer.append(copy_event(first, delivery, key, imported))
        self.count(source, "duplicate" if appended.duplicate else understood.outcome)
        if creds.sns is not None and not imported:
            creds.sns.after_stored(body)  # SNS: confirm a new subscription, in the background
        if appended.duplicate:
            return answer(understood, appended)
        if self.after_store is not None and not imported:
            self.after_store(source, appended.position, received_at, body, understood.signals)
        # The answer's signals from the stored ones: their times are formatted once.
        return answer(understood, appended,
                      [signal_json(s) for s in event.data["parsed"]["signals"]])


def delivery_data(delivery: Delivery, understood: Understanding) -> dict[str, Any]:
    """A ``delivery.received`` event's data: the source, the kept headers, and what the
    adapter made of the delivery (parse once: the projector folds these signals and
    re-runs the adapter only when its ``ADAPTER_VERSION`` moved, ingest/sources)."""
    return {"source": delivery.source, "headers": delivery.headers,
            "parsed": stored_understanding(delivery.source, understood)}


def copy_event(first: RecordedEvent, copy: Delivery, key: str, imported: bool) -> NewEvent:
    """The receipt of ``copy``, a duplicate of the stored delivery ``first``. Keyed by
    the dedup key and its receipt, so recording (or re-importing) it again is a no-op."""
    return NewEvent(
        stream=f"copy-{copy.source}-{uuid.uuid4().hex}",
        type=COPY_EVENT,
        received_at=copy.received_at,
        data={"source": copy.source, "first": first.position,
              "first_received_at": format_time(first.received_at), "headers": copy.headers},
        metadata={"imported": imported},
        idempotency_key=f"copy:{key}@{format_time(copy.received_at)}",
    )


def answer(understood: Understanding, appended: Appended,
           signals_json: list[dict[str, Any]] | None = None) -> Outcome:
    body: dict[str, Any] = {"delivery": appended.position, "duplicate": appended.duplicate}
    if understood.error is not None:
        body["error"] = understood.error
        return Outcome(understood.status, body)
    body["signals"] = (signals_json if signals_json is not None
                       else [s.to_json() for s in understood.signals])
    return Outcome(200 if appended.duplicate else 202, body, list(understood.signals))


INGESTOR = web.AppKey("ingestor", Ingestor)


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit``: refused from Content-Length without
    reading, or as soon as a chunked body passes the limit."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json(outcome: Outcome) -> web.Response:
    return web.Response(status=outcome.status, body=orjson.dumps(outcome.body),
                        content_type="application/json")


async def post_webhook(request: web.Request) -> web.Response:
    ingestor = request.app[INGESTOR]
    source = request.match_info["source"]
    received_at = datetime.now(UTC)
    structlog.contextvars.bind_contextvars(source=source)
    # Refusals before the body is read are counted here: Ingestor.receive never sees
    # them. An unknown name is counted as "unknown", so probes cannot mint label values.
    if source not in ingestor.settings.credentials:
        ingestor.count("unknown", "unknown_source")
        return _json(Outcome(404, {"error": f"unknown or disabled source {source!r}"}))
    body = await read_body(request, ingestor.settings.max_body_bytes)
    if body is None:
        ingestor.count(source, "too_large")
        return _json(Outcome(413, {"error": f"body over {ingestor.settings.max_body_bytes} bytes"}))
    try:
        async with asyncio.timeout(ANSWER_DEADLINE):
            outcome = await ingestor.receive(source, body, request.headers, request.query,
                                             received_at)
    except (StoreError, TimeoutError):
        # Not committed, so not acknowledged: the sender must retry. Any failure of the
        # store (it translates every database error into ingest.errors) says so,
        # rather than a 500.
        ingestor.count(source, "unavailable")
        log.warning("store_unavailable", source=source)
        return web.json_response({"error": "the event store is unavailable; retry later"},
                                 status=503, headers={"Retry-After": "5"})
    # Only when it will be written: structlog's lazy logger binds itself on every call,
    # even a filtered one (~9 µs a request, issue 11's per-request glue).
    if "delivery" in outcome.body and _stdlib_log.isEnabledFor(logging.DEBUG):
        structlog.contextvars.bind_contextvars(delivery=outcome.body["delivery"])
        log.debug("delivery_stored", status=outcome.status, duplicate=outcome.body["duplicate"],
                 signals=len(outcome.signals))
    return _json(outcome)


def parse_import_line(raw: bytes) -> tuple[str, datetime, dict[str, str], dict[str, str], bytes]:
    """One JSON Lines record of a recorded delivery; ValueError names the problem."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("line is not valid JSON") from None
    if not isinstance(record, dict):
        raise ValueError("line is not a JSON object")
    source = record.get("source")
    if not isinstance(source, str):
        raise ValueError("source: missing")
    stamp = record.get("received_at")
    try:
        received_at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("received_at: not an RFC 3339 time") from None
    if received_at.tzinfo is None:
        raise ValueError("received_at: needs a time zone")
    headers = record.get("headers") or {}
    query = record.get("query") or {}
    if not isinstance(headers, dict) or not isinstance(query, dict):
        raise ValueError("headers and query must be objects")
    if isinstance(record.get("body_base64"), str):
        try:
            body = base64.b64decode(record["body_base64"], validate=True)
        except binascii.Error:
            raise ValueError("body_base64: not base64") from None
    elif isinstance(record.get("body"), str):
        body = record["body"].encode("utf-8")
    else:
        raise ValueError("body or body_base64: missing")
    return (source, received_at.astimezone(UTC), {str(k): str(v) for k, v in headers.items()},
            {str(k): str(v) for k, v in query.items()}, body)


async def import_lines(ingestor: Ingestor, lines: list[bytes]) -> list[dict[str, Any]]:
    """Each line gets the outcome a live delivery would; lines run concurrently so group
    commit batches them, but results keep the file's order."""

    async def one(number: int, raw: bytes) -> dict[str, Any]:
        try:
            source, received_at, headers, query, body = parse_import_line(raw)
        except ValueError as exc:
            return {"line": number, "status": 400, "delivery": None, "duplicate": False,
                    "error": str(exc)}
        outcome = await ingestor.receive(source, body, headers, query, received_at, imported=True)
        return {
            "line": number,
            "status": outcome.status,
            "delivery": outcome.body.get("delivery"),
            "duplicate": outcome.body.get("duplicate", False),
            "error": outcome.body.get("error"),
        }

    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    results: list[dict[str, Any]] = []
    for start in range(0, len(numbered), 512):
        chunk = numbered[start:start + 512]
        results += await asyncio.gather(*(one(n, line) for n, line in chunk))
    return results


async def post_import(request: web.Request) -> web.Response:
    ingestor = request.app[INGESTOR]
    limit = ingestor.settings.import_max_bytes
    body = await read_body(request, limit)
    if body is None:
        return web.json_response(
            {"error": f"import body over {limit} bytes (import_max_bytes): split the file"},
            status=413)
    try:
        results = await import_lines(ingestor, body.splitlines())
    except StoreError:
        return web.json_response({"error": "the event store is unavailable; retry later"},
                                 status=503, headers={"Retry-After": "5"})
    return web.Response(body=orjson.dumps({"results": results}), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/webhooks/{source}", post_webhook),
        web.put("/v1/webhooks/{source}", post_webhook),  # Grafana may be set to PUT
        web.post("/v1/deliveries/import", post_import),
    ]
