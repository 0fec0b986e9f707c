"""The alert rule's pending period, learned from Prometheus at receipt (TIMELINE.md rule 8).

Prometheus sends Alertmanager ``startsAt`` = the moment a rule *fired*
(``rules/manager.go`` ``sendAlerts``: ``StartsAt: alert.FiredAt``), the first evaluation
at which the rule's condition had held for its ``for`` duration since the alert's
``ActiveAt`` (``rules/alerting.go`` ``Eval``: ``ts.Sub(a.ActiveAt) >= r.holdDuration``).
The condition held from ``activeAt``: that is when the failure began. Where a
``prometheus_url`` is configured for the source, Hindsight asks, after the delivery is
stored and answered:

1. ``GET /api/v1/rules?type=alert&rule_name[]=<alertname>`` (``web/api/v1/api.go``
   ``rules``: each alerting rule's ``name``, ``duration`` = its ``for`` in seconds,
   static ``labels``, and ``alerts``, the rule's active alerts exactly as
   ``/api/v1/alerts`` lists them: ``labels``, ``state``, ``activeAt``). Prometheus before
   2.48 ignores ``rule_name[]`` and lists every rule; the name is matched here anyway.
2. The alert is the active alert of a rule named ``alertname`` whose labels are the
   delivered alert's labels minus the external labels: Prometheus adds each external
   label the alert lacks before sending (``notifier/notifier.go`` ``Send``), so an
   active alert matches when its labels are a subset of the delivered ones; the most
   specific such alert wins, and two equally specific with different ``activeAt`` are
   no answer. Its ``activeAt``, when not after ``startsAt`` (a later ``activeAt`` is a
   later firing of the same labels), is when the failure began (``learned_from:
   active_alert``).
3. Else (the alert already resolved, or was relabelled beyond recognition) the rule's
   ``for``: the failure began at ``startsAt − for`` (``learned_from: rule_for``), within
   one evaluation interval after the true ``activeAt``. The rule is the one whose alert
   matched, else the only ``for`` among rules of that name whose static labels the
   alert carries (a templated label value matches anything).

What was learned is appended as its own event (``alert.pending_period``), keyed by the
source, the alert's subject (fingerprint) and its ``startsAt``, so it is stored once per
firing; it carries the alert's signal as the delivery stated it, so the projector folds
it with no further lookup, and a rebuild never calls out. A rule with no ``for`` has no
pending period: nothing is appended. Lookups never delay an answer: ``offer`` only puts
work on a bounded queue (full: the lookup is dropped and logged), a few workers ask
with a short timeout, and a failure is logged and forgotten (a later repeat of the alert
may ask again).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson
import structlog
from aiohttp import web

from ingest.delivery import MappingError
from ingest.signals import Signal, format_time
from ingest.sources import signal_data
from ingest.sources._common import parse_time
from ingest.store import Appended, NewEvent

log = structlog.get_logger("hindsight.pending")

EVENT_TYPE = "alert.pending_period"
LearnedFrom = Literal["active_alert", "rule_for"]

TIMEOUT = 2.0  # seconds per lookup: a slow Prometheus costs a lookup, never an answer
CONCURRENCY = 4  # lookups in flight at once
QUEUE_SIZE = 256  # firing alerts waiting for a lookup; beyond, dropped (and logged)
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a huge rule list is refused, not buffered whole
REMEMBERED = 4096  # firings already learned: a repeat every repeat_interval asks no more


@dataclass(frozen=True, slots=True)
class Learned:
    """What Prometheus told about one firing: when its condition began to hold."""

    pending_since: datetime
    active_at: datetime | None
    for_seconds: float | None
    rule: str
    group: str | None
    interval_seconds: float | None
    learned_from: LearnedFrom


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing alert of a stored delivery, waiting to be looked up."""

    source: str
    position: int
    index: int
    received_at: datetime
    signal: Signal
    labels: Mapping[str, str]
    starts_at: datetime

    @property
    def key(self) -> str:
        """Once per firing: the source, the alert's subject and its ``startsAt``."""
        return f"pending:{self.source}:{self.signal.subject}@{format_time(self.starts_at)}"


def firing_alerts(source: str, position: int, received_at: datetime, body: bytes,
                  signals: Sequence[Signal]) -> list[Firing]:
    """The firing alerts of an Alertmanager notification with their full label sets
    (the signals keep only the labels safe to show), paired with their signals: the
    adapter makes one signal per alert, in order (``signals_from_group``)."""
    try:
        alerts = orjson.loads(body).get("alerts")
    except (orjson.JSONDecodeError, AttributeError):
        return []
    if not isinstance(alerts, list) or len(alerts) != len(signals):
        return []
    found = []
    for index, (alert, signal) in enumerate(zip(alerts, signals, strict=True)):
        if not isinstance(alert, dict) or alert.get("status") != "firing":
            continue
        labels = alert.get("labels")
        if signal.state != "failing" or signal.time_source != "source" or not (
                isinstance(labels, dict) and isinstance(labels.get("alertname"), str)):
            continue
        try:
            starts_at = parse_time(alert.get("startsAt"))
        except MappingError:
            continue
        if starts_at is None or starts_at != signal.occurred_at:
            continue
        found.append(Firing(source, position, index, received_at, signal,
                            {str(k): str(v) for k, v in labels.items()}, starts_at))
    return found


def _subset(small: Mapping[str, Any], big: Mapping[str, str]) -> bool:
    return all(big.get(str(k)) == v for k, v in small.items())


def _static_labels_match(rule_labels: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A rule's own labels are carried by its alerts, unless templated (expanded per
    alert: ``{{ $labels.x }}``), which could be anything."""
    return all(isinstance(v, str) and ("{{" in v or labels.get(str(k)) == v)
               for k, v in rule_labels.items())


def learn(rules: Any, labels: Mapping[str, str], starts_at: datetime) -> Learned | None:
    """What a ``/api/v1/rules`` answer says of the alert with ``labels`` that fired at
    ``starts_at`` (steps 2 and 3 of the module's docstring); None when it says nothing
    usable. Pure: tested with answers alone."""
    name = labels.get("alertname")
    data = rules.get("data") if isinstance(rules, dict) else None
    groups = data.get("groups") if isinstance(data, dict) else None
    if not name or not isinstance(groups, list):
        return None
    named = [(group, rule) for group in groups
             if isinstance(group, dict) and isinstance(group.get("rules"), list)
             for rule in group["rules"]
             if isinstance(rule, dict) and rule.get("type") == "alerting"
             and rule.get("name") == name]
    # Step 2: the active alert with these labels (less the external ones).
    matches: list[tuple[int, datetime, dict[str, Any], dict[str, Any]]] = []
    for group, rule in named:
        for alert in rule.get("alerts") or ():
            alert_labels = alert.get("labels") if isinstance(alert, dict) else None
            if not isinstance(alert_labels, dict) or not _subset(alert_labels, labels):
                continue
            try:
                active_at = parse_time(alert.get("activeAt"))
            except MappingError:
                continue
            if active_at is not None:
                matches.append((len(alert_labels), active_at, group, rule))
    if matches:
        best = max(m[0] for m in matches)
        chosen = [m for m in matches if m[0] == best]
        if len({m[1] for m in chosen}) == 1:
            _, active_at, group, rule = chosen[0]
            if active_at <= starts_at:
                found = _learned(active_at, active_at, group, rule, "active_alert")
                return found if active_at < starts_at else None
            named = [(group, rule)]  # a later firing of this alert: its rule's for
    # Step 3: the rule's for.
    candidates = [(g, r) for g, r in named
                  if _static_labels_match(r.get("labels") or {}, labels)]
    durations = {_seconds(r.get("duration")) for _, r in candidates}
    if len(durations) != 1:
        return None
    duration = durations.pop()
    if duration is None or duration <= 0:
        return None
    group, rule = candidates[0]
    return _learned(starts_at - timedelta(seconds=duration), None, group, rule, "rule_for")


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _learned(pending_since: datetime, active_at: datetime | None, group: dict[str, Any],
             rule: dict[str, Any], learned_from: LearnedFrom) -> Learned:
    name = group.get("name")
    return Learned(pending_since=pending_since, active_at=active_at,
                   for_seconds=_seconds(rule.get("duration")), rule=str(rule.get("name")),
                   group=name if isinstance(name, str) else None,
                   interval_seconds=_seconds(group.get("interval")),
                   learned_from=learned_from)


def without_credentials(url: str) -> str:
    """Where a lookup went, as the log may record it: no user, password or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def pending_event(firing: Firing, learned: Learned, prometheus: str,
                  learned_at: datetime) -> NewEvent:
    """The ``alert.pending_period`` event: what was learned, about which firing of which
    alert, from which delivery, and from where; with the alert's signal as the delivery
    stated it (``signal_data``), so the projector needs nothing else to fold it."""
    data: dict[str, Any] = {
        "source": firing.source,
        "subject": firing.signal.subject,
        "delivery": firing.position,
        "index": firing.index,
        "delivery_received_at": format_time(firing.received_at),
        "starts_at": format_time(firing.starts_at),
        "pending_since": format_time(learned.pending_since),
        "active_at": None if learned.active_at is None else format_time(learned.active_at),
        "for_seconds": learned.for_seconds,
        "interval_seconds": learned.interval_seconds,
        "rule": learned.rule,
        "group": learned.group,
        "learned_from": learned.learned_from,
        "prometheus": prometheus,
        "signal": signal_data(firing.signal),
    }
    return NewEvent(stream=f"pending-{firing.source}-{uuid.uuid4().hex}", type=EVENT_TYPE,
                    received_at=learned_at, occurred_at=learned.pending_since, data=data,
                    idempotency_key=firing.key)


Append = Callable[[NewEvent], Awaitable[Appended]]


class PendingLookup:
    """Asks Prometheus for the pending period of each firing alert ``offer``-ed, in the
    background, and appends what it learns. ``start`` and ``close`` bound its life (the
    application's ``cleanup_ctx``)."""

    def __init__(self, append: Append, prometheus_url: str, *, timeout: float = TIMEOUT,
                 concurrency: int = CONCURRENCY, queue_size: int = QUEUE_SIZE,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.append = append
        self.url = prometheus_url.rstrip("/")
        self.where = without_credentials(prometheus_url)
        self.timeout = timeout
        self.concurrency = concurrency
        self.clock = clock
        self.queue: asyncio.Queue[Firing] = asyncio.Queue(maxsize=queue_size)
        self.learned: OrderedDict[str, None] = OrderedDict()
        self.session: aiohttp.ClientSession | None = None
        self.workers: list[asyncio.Task[None]] = []

    def offer(self, source: str, position: int, received_at: datetime, body: bytes,
              signals: Sequence[Signal]) -> None:
        """Queue a lookup for each firing alert of a stored delivery. Never waits: it
        runs before the delivery is answered, and must not delay the answer."""
        if not any(s.state == "failing" and s.kind == "alert" for s in signals):
            return
        for firing in firing_alerts(source, position, received_at, body, signals):
            if firing.key in self.learned:
                continue
            try:
                self.queue.put_nowait(firing)
            except asyncio.QueueFull:
                log.warning("pending_lookup_dropped", reason="queue full",
                            subject=firing.signal.subject)
                return

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"Accept": "application/json"})
        self.workers = [asyncio.create_task(self._work(), name=f"pending-{n}")
                        for n in range(self.concurrency)]

    async def close(self) -> None:
        for task in self.workers:
            task.cancel()
        for task in self.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.session is not None:
            await self.session.close()

    async def drain(self) -> None:
        """Wait until every queued lookup is done (tests)."""
        await self.queue.join()

    async def _work(self) -> None:
        while True:
            firing = await self.queue.get()
            try:
                await self.lookup(firing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed lookup must not stop the worker
                log.warning("pending_lookup_failed", subject=firing.signal.subject,
                            error=repr(exc)[:200])
            finally:
                self.queue.task_done()

    async def lookup(self, firing: Firing) -> Appended | None:
        """Ask, and append what was learned; None when nothing was."""
        if firing.key in self.learned:
            return None
        rules = await self._get_rules(firing.labels["alertname"])
        if rules is None:
            return None
        learned = learn(rules, firing.labels, firing.starts_at)
        if learned is None:
            log.info("pending_period_unknown", subject=firing.signal.subject,
                     rule=firing.labels["alertname"])
            self._remember(firing.key)  # Prometheus has nothing to add about this firing
            return None
        appended = await self.append(pending_event(firing, learned, self.where, self.clock()))
        self._remember(firing.key)
        log.info("pending_period_learned", subject=firing.signal.subject,
                 learned_from=learned.learned_from, position=appended.position,
                 pending_seconds=(firing.starts_at - learned.pending_since).total_seconds())
        return appended

    def _remember(self, key: str) -> None:
        self.learned[key] = None
        while len(self.learned) > REMEMBERED:
            self.learned.popitem(last=False)

    async def _get_rules(self, alertname: str) -> Any:
        if self.session is None:
            raise RuntimeError("PendingLookup.start() was not awaited")
        params = [("type", "alert"), ("rule_name[]", alertname)]
        try:
            async with self.session.get(f"{self.url}/api/v1/rules", params=params) as resp:
                if resp.status != 200:
                    log.warning("pending_lookup_refused", status=resp.status,
                                prometheus=self.where)
                    return None
                if (resp.content_length or 0) > MAX_RESPONSE_BYTES:
                    log.warning("pending_lookup_too_large", prometheus=self.where)
                    return None
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        log.warning("pending_lookup_too_large", prometheus=self.where)
                        return None
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("pending_lookup_unavailable", prometheus=self.where,
                        error=type(exc).__name__)
            return None
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            log.warning("pending_lookup_not_json", prometheus=self.where)
            return None


PENDING_LOOKUP = web.AppKey("pending_lookup", PendingLookup)
