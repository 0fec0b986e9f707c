"""Outbound action-item notifications: Standard-Webhooks-signed POSTs to the named
``[notify.targets]`` (the old ``[notify] urls`` list counts as targets named target-1, ...).

When an action item is created, or falls overdue, every configured target gets one JSON
message (so a team can turn items into tickets with its own automation). The log is the
memory: each attempt, whatever its outcome, is appended as an
``action_item.notification_attempted`` event on the item's stream, and what to send next
is derived from those events alone, so a restart, a rebuild or a new leader neither
forgets a pending retry nor sends a delivered message again.

One cycle (``Notifier.tick``), run only while this process leads the projector:

1. Read the open items from the read model, and every recorded attempt for them from the
   event log itself (not the read model, which may lag the attempt just appended).
2. For each (item, reason, target) due: ``created`` always, ``overdue`` once the due date has
   passed (UTC): skip it if an attempt was delivered (2xx), if ``max_attempts`` have
   failed (bounded), if one is in flight in this process, or if the back-off after the
   last failure (``backoff`` × 2^(failures − 1)) has not elapsed.
3. Send it: ``webhook-id`` is the same for every attempt of one message (receivers
   deduplicate by it), ``webhook-timestamp`` the attempt's time, ``webhook-signature``
   ``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body`` with the ``[notify] secret``.
4. Append the attempt event (idempotency key per attempt), then forget the in-flight mark:
   from then on the log answers step 2.

Retrying happens here only, in step 2, and nowhere else.

A target is known to the log by its configured name only, never by its URL: a chat
webhook's URL is a credential, and the log is append-only, kept for years and read by
every projection. The event, its idempotency key and the log lines name the target; an
error's text has the URL (and its host, path and query) replaced by the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import orjson
import structlog
from aiohttp import web

from ingest.action_items import ActionItemNotificationAttempted, NotificationReason
from ingest.auth import standard_webhooks_signature
from ingest.keys import POOL, STORE
from ingest.signals import format_time
from ingest.store import EventStore, NewEvent
from projections.engine.action_items import ActionItem, item_from_json

log = structlog.get_logger("hindsight.notifier")

ATTEMPTED = "action_item.notification_attempted"
MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 2.0  # after the first failure; doubles after each further one
POLL_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0

Key = tuple[str, NotificationReason, str]  # (item id, reason, target name)


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    delivered: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Message:
    """One message about one item, for one reason: the same bytes for every target."""

    id: str
    reason: NotificationReason
    body: bytes


def reasons(item: ActionItem, today: date) -> list[NotificationReason]:
    """Why ``item`` should be announced: always when created; overdue once its due date
    is before ``today``. Done items are announced no more."""
    if item.status != "open":
        return []
    found: list[NotificationReason] = ["created"]
    if item.due_date is not None and item.due_date < today:
        found.append("overdue")
    return found


def message(item: ActionItem, reason: NotificationReason, now: datetime) -> Message:
    """The Standard Webhooks payload shape: ``type``, ``timestamp``, ``data``."""
    digest = hashlib.sha256(f"{item.id}\x1f{reason}".encode()).hexdigest()[:24]
    data = item.to_json()
    # The attempts are our bookkeeping, the position a log detail: neither is news.
    data.pop("notifications", None)
    data.pop("position", None)
    body = orjson.dumps({"type": f"action_item.{reason}", "timestamp": format_time(now),
                         "data": data})
    return Message(id=f"msg_{digest}", reason=reason, body=body)


def signed_headers(secret: str, msg: Message, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "Hindsight-Notifier",
        "webhook-id": msg.id,
        "webhook-timestamp": timestamp,
        "webhook-signature": standard_webhooks_signature(secret, msg.id, timestamp, msg.body),
    }


_ANY_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def redacted(text: str, url: str, name: str) -> str:
    """``text`` with ``url``, and each part of it that can name or unlock the target
    (host and port, path, query, fragment), replaced by ``[name]``; and any other URL."""
    parts = urlsplit(url)
    pieces = {url, url.split("#", 1)[0], url.split("?", 1)[0], parts.netloc,
              parts.hostname or "", parts.query, parts.fragment,
              parts.path if len(parts.path) > 1 else ""}
    for piece in sorted((p for p in pieces if p), key=lambda p: (-len(p), p)):
        text = re.sub(re.escape(piece), f"[{name}]", text, flags=re.IGNORECASE)
    return _ANY_URL.sub(f"[{name}]", text)


def due_attempt(tried: Sequence[Attempt], now: datetime, *, max_attempts: int,
                backoff: float) -> int | None:
    """The number of the attempt to make now for one (item, reason, target), or None."""
    if any(a.delivered for a in tried) or len(tried) >= max_attempts:
        return None
    if tried:
        last = max(tried, key=lambda a: a.at)
        wait = timedelta(seconds=backoff * 2 ** (len(tried) - 1))
        if now < last.at + wait:
            return None
    return len(tried) + 1


@dataclass
class Notifier:
    pool: asyncpg.Pool
    store: EventStore
    targets: Mapping[str, str]  # name -> URL; only the name is ever recorded
    secret: str
    session: aiohttp.ClientSession
    is_leader: Callable[[], bool]
    # The projector's condition, notified after each batch it writes (None: poll only).
    projected: asyncio.Condition | None = None
    max_attempts: int = MAX_ATTEMPTS
    backoff: float = BACKOFF_SECONDS
    poll_interval: float = POLL_SECONDS
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    cycles: int = 0
    _in_flight: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    _cycled: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self) -> None:
        while True:
            if self.is_leader():
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # an outage must not end notifications for good
                    log.warning("notifier_cycle_failed", error=repr(exc))
            async with self._cycled:
                self.cycles += 1
                self._cycled.notify_all()
            await self._pause()

    async def _pause(self) -> None:
        """Until the projector writes a batch (a new item) or the poll interval ends."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_interval):
                if self.projected is None:
                    await asyncio.Event().wait()
                else:
                    async with self.projected:
                        await self.projected.wait()

    async def wait_cycles(self, count: int, seconds: float = 30.0) -> bool:
        """Until ``count`` more cycles have run (tests: "nothing more was sent")."""
        target = self.cycles + count
        try:
            async with asyncio.timeout(seconds), self._cycled:
                await self._cycled.wait_for(lambda: self.cycles >= target)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self) -> None:
        now = self.clock()
        items, attempts = await self._load()
        for item in items:
            for reason in reasons(item, now.date()):
                for name in self.targets:
                    key: Key = (item.id, reason, name)
                    if key in self._in_flight:
                        continue
                    number = due_attempt(attempts.get(key, ()), now,
                                         max_attempts=self.max_attempts, backoff=self.backoff)
                    if number is None:
                        continue
                    task = asyncio.create_task(self._send(item, reason, name, number),
                                               name=f"notify-{item.id}")
                    self._in_flight[key] = task
                    task.add_done_callback(self._forget(key))

    def _forget(self, key: Key) -> Callable[[asyncio.Task[None]], None]:
        """Drop the in-flight mark once the attempt is recorded (or the task failed)."""

        def done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(key, None)

        return done

    async def _load(self) -> tuple[list[ActionItem], dict[Key, list[Attempt]]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT doc::text FROM action_items WHERE status = 'open' "
                                    "ORDER BY created_at, id")
            items = [item_from_json(orjson.loads(r["doc"])) for r in rows]
            streams = [f"action-item-{i.id}" for i in items]
            recorded = await conn.fetch(
                "SELECT data::text, recorded_at FROM events "
                "WHERE stream = ANY($1::text[]) AND type = $2", streams, ATTEMPTED)
        # Attempts recorded before targets had names hold the URL: count them for the
        # target that has that URL now, so an upgrade sends nothing twice.
        by_url = {url: name for name, url in self.targets.items()}
        attempts: dict[Key, list[Attempt]] = {}
        for row in recorded:
            data = orjson.loads(row["data"])
            code = data.get("status_code")
            target = data.get("target") or by_url.get(data.get("url", ""))
            if target is None:
                continue  # a URL no longer configured
            attempts.setdefault((data["item_id"], data["reason"], target), []).append(
                Attempt(attempt=data["attempt"], delivered=code is not None and 200 <= code < 300,
                        at=row["recorded_at"]))
        return items, attempts

    async def _send(self, item: ActionItem, reason: NotificationReason, name: str,
                    number: int) -> None:
        url = self.targets[name]
        now = self.clock()
        msg = message(item, reason, now)
        status: int | None = None
        error: str | None = None
        try:
            async with self.session.post(url, data=msg.body,
                                         headers=signed_headers(self.secret, msg, now)) as answer:
                status = answer.status
                await answer.read()
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # aiohttp's messages carry the host, or the whole URL (InvalidURL).
            error = redacted(f"{type(exc).__name__}: {exc}", url, name)[:500]
        event = ActionItemNotificationAttempted(item_id=item.id, target=name, attempt=number,
                                                status_code=status, error=error, reason=reason)
        stream = f"action-item-{item.id}"
        await self.store.append(stream, [NewEvent(
            stream=stream, type=ATTEMPTED, received_at=self.clock(),
            data=event.model_dump(mode="json"),
            # Two leaders in a handover cannot record the same attempt twice. The name,
            # not the URL: keys are stored in the log, and unique-violation errors print them.
            idempotency_key=f"notify:{item.id}:{reason}:{name}:{number}",
        )])
        log.info("notification_attempted", item=item.id, reason=reason, target=name,
                 attempt=number, status=status, error=error)


NOTIFIER = web.AppKey("notifier", Notifier)


@dataclass(frozen=True)
class NotifySettings:
    """What the notifier needs of ``[notify]``, handed over by the application."""

    targets: Mapping[str, str]  # name -> URL
    secret: str | None
    unnamed: tuple[str, ...] = ()  # names given to the deprecated ``[notify] urls``


@dataclass(frozen=True)
class Leadership:
    """Whether this process leads the projector, and the condition it notifies after
    each batch (the notifier wakes on it rather than waiting out its poll)."""

    is_leader: Callable[[], bool]
    projected: asyncio.Condition | None = None


NOTIFY_SETTINGS = web.AppKey("notify_settings", NotifySettings)
LEADERSHIP = web.AppKey("leadership", Leadership)


async def notifier_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs beside the projector; sends only while this process leads it."""
    conf = app[NOTIFY_SETTINGS]
    if not conf.targets:
        yield
        return
    if conf.secret is None:
        log.warning("notifier_disabled",
                    reason="[notify] targets are set but no secret to sign")
        yield
        return
    if conf.unnamed:
        log.warning("notify_urls_deprecated", named=list(conf.unnamed),
                    hint="name each URL under [notify.targets]")
    leadership = app.get(LEADERSHIP) or Leadership(is_leader=lambda: False)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
    notifier = Notifier(pool=app[POOL], store=app[STORE], targets=conf.targets,
                        secret=conf.secret, session=session,
                        is_leader=leadership.is_leader, projected=leadership.projected)
    app[NOTIFIER] = notifier
    task = asyncio.create_task(notifier.run(), name="notifier")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await notifier.close()
        await session.close()
