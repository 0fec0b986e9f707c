"""The application factory: every resource opened in ``cleanup_ctx``, reached by AppKey."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from hindsight import migrations
from hindsight.database import connect, create_pool, service_settings
from hindsight.embedded import EmbeddedPostgres
from hindsight.metrics import Metrics
from hindsight.openapi import openapi_json
from hindsight.settings import SNS_SOURCES, Settings
from hindsight.sources_info import delivery_counts_on, guide_file, source_rows
from ingest.auth import Credentials, presented_token
from ingest.group_commit import MAX_IN_FLIGHT, GroupCommitter
from ingest.keys import POOL, STORE
from ingest.prometheus_pending import PENDING_LOOKUP, PendingLookup
from ingest.sns import SnsEndpoint
from ingest.store import Appended, EventStore, NewEvent
from ingest.webhooks import INGESTOR, Ingestor, IngestSettings
from ingest.webhooks import routes as ingest_routes
from projections.engine.fold import EngineConfig
from projections.keys import ENGINE_CONFIG
from projections.reactions.notifier import (
    LEADERSHIP,
    NOTIFY_SETTINGS,
    Leadership,
    NotifySettings,
    notifier_ctx,
)
from projections.runtime.projection import engine_config
from projections.runtime.projector import (
    PROJECTOR,
    Projector,
    ReadHorizon,
    refuse_a_log_from_another_cluster,
)
from projections.web import dashboard, incident_pages, latency, setup_page, status_page
from projections.web.keys import PUBLICATION, SOURCE_DIRECTORY, Publication, SourceDirectory
from projections.web.routes import routes as read_routes

log = structlog.get_logger("hindsight")

SETTINGS = web.AppKey("settings", Settings)
DATABASE_URL = web.AppKey("database_url", str)
METRICS = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The only /v1/ routes open without an API token, by their registered route (not a path
# prefix: "/v1/status" must not open a later "/v1/status-internal").
OPEN_ROUTES = frozenset({"/v1/webhooks/{source}", "/v1/status"})
# A client that sent its headers and then sends no byte of its body for this long is cut
# off (408, connection closed): slow clients must not pin connections and handlers.
BODY_IDLE_TIMEOUT = 10.0
# The largest body of the JSON API (manual events, action items): the biggest is a note
# or a postmortem field, far below this. Webhooks are bounded by max_body_bytes and the
# import by import_max_bytes; both read their bodies themselves, under those limits.
API_MAX_BODY = 64 * 1024
OWN_BODY_LIMIT = frozenset({"/v1/webhooks/{source}", "/v1/deliveries/import"})
# Group commit's own connections: one per batch in flight, one for the readers' wake-up
# and a duplicate's first copy; part of a process's SERVICE_CONNECTIONS.
APPEND_CONNECTIONS = MAX_IN_FLIGHT + 1
SERVICE_CONNECTIONS = 16
METRICS_INTERVAL = 2.0  # seconds between refreshes of the database-derived gauges
LEADER_INTERVAL = 0.2  # seconds between reports of this process's projector leadership


def credentials(settings: Settings) -> dict[str, Credentials]:
    out: dict[str, Credentials] = {}
    for name, conf in settings.sources.items():
        secrets = [s.get_secret_value() for s in ([conf.secret] if conf.secret else [])]
        secrets += [s.get_secret_value() for s in conf.previous_secrets]
        token = conf.token.get_secret_value() if conf.token else None
        endpoint = None
        if name in SNS_SOURCES:  # signing certificates cached on disk across restarts
            endpoint = SnsEndpoint(conf.certificate_dir
                                   or settings.data_dir / "sns-certificates")
        out[name] = Credentials(token=token, secrets=tuple(secrets),
                                topic_arns=tuple(conf.topic_arns), sns=endpoint)
    return out


class RequestIds:
    """Request ids unique across processes and restarts without a uuid4 per request
    (issue 11 measured ~160 µs of per-request glue; uuid4 was its dearest part after
    the contextvars): a random prefix per process, then a counter."""

    def __init__(self) -> None:
        self.pid = 0
        self.prefix = ""
        self.counter = itertools.count()

    def __call__(self) -> str:
        if self.pid != os.getpid():  # first use, or a forked worker: a prefix of its own
            self.pid, self.prefix = os.getpid(), uuid.uuid4().hex[:16]
        return f"{self.prefix}{next(self.counter):016x}"


next_request_id = RequestIds()


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    structlog.contextvars.clear_contextvars()
    request_id = request.headers.get("X-Request-Id") or next_request_id()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        request.app[METRICS].request_seconds_of(name, status).observe(
            time.perf_counter() - started)


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Cut off a client whose body stalls: no new byte for ``BODY_IDLE_TIMEOUT``.

    aiohttp itself has no read timeout once the headers are in, so a client could hold a
    connection (and a handler awaiting its body) open forever. Bodies that arrived with
    the headers (nearly every webhook) take the fast path; others are watched while the
    handler reads them, and the handler is cancelled if the body stops coming."""
    content = request.content
    if not request.body_exists or content.is_eof():
        return await handler(request)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(handler(request))
    seen, idle_since = content.total_bytes, loop.time()
    while True:
        done, _ = await asyncio.wait({task}, timeout=min(1.0, BODY_IDLE_TIMEOUT / 4))
        if done or content.is_eof():
            return await task  # the body is complete: the handler's own deadlines apply
        if content.total_bytes != seen:
            seen, idle_since = content.total_bytes, loop.time()
        elif loop.time() - idle_since >= BODY_IDLE_TIMEOUT:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            log.warning("slow_client_cut_off", path=request.path, received=seen)
            response = web.json_response({"error": "request body timed out"}, status=408)
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            # Close now: aiohttp would otherwise linger, reading the rest of the body
            # (that is not coming) for up to 10 s more.
            if request.transport is not None:
                request.transport.close()
            return response


def body_too_large() -> web.Response:
    return web.json_response(
        {"error": f"request body over {API_MAX_BODY} bytes, the API's limit"}, status=413)


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route's body is bounded. Routes in ``OWN_BODY_LIMIT`` enforce their own;
    every other body is at most ``API_MAX_BODY`` (the application's client_max_size, so
    ``request.read()`` stops a chunked body there): refused from Content-Length without
    being read, else as soon as it passes the limit, with a JSON 413."""
    resource = request.match_info.route.resource
    if not request.body_exists or (resource is not None
                                   and resource.canonical in OWN_BODY_LIMIT):
        return await handler(request)
    if request.content_length is not None and request.content_length > API_MAX_BODY:
        return body_too_large()
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return body_too_large()


@web.middleware
async def api_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The read and manual-event API needs a Bearer token from ``[api] tokens``."""
    if request.path.startswith("/v1/") and not is_open_route(request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        offered = presented_token(headers, request.query)
        tokens = request.app[SETTINGS].api_tokens
        if offered is None or not any(hmac.compare_digest(offered.encode(), t.encode())
                                      for t in tokens):
            return web.json_response({"error": "missing or wrong API token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


def is_open_route(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in OPEN_ROUTES


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Embedded PostgreSQL (unless a URL is configured), migrations, the service pool."""
    settings = app[SETTINGS]
    embedded: EmbeddedPostgres | None = None
    if DATABASE_URL not in app:
        if settings.database_url is not None:
            app[DATABASE_URL] = settings.database_url.get_secret_value()
        else:
            embedded = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
            app[DATABASE_URL] = await asyncio.to_thread(embedded.start)
    url = app[DATABASE_URL]
    conn = await connect(url)
    try:
        try:
            applied = await migrations.migrate(conn)
        except asyncpg.InsufficientPrivilegeError:
            # A least-privilege login (member of hindsight_service only, the owner
            # migrating with `hindsight migrate`) may not CREATE, not even IF NOT EXISTS:
            # fine when nothing is pending, fatal otherwise.
            if await migrations.pending(conn):
                raise
            applied = []
    finally:
        await conn.close()
    if applied:
        log.info("migrations_applied", names=applied)
    # Up to SERVICE_CONNECTIONS per process (docs/operations.md): an ingesting process's
    # group commit has its own APPEND_CONNECTIONS of them (ingest_ctx).
    appending = ingest_ctx in app.cleanup_ctx
    app[POOL] = await create_pool(
        url, min_size=2,
        max_size=SERVICE_CONNECTIONS - (APPEND_CONNECTIONS if appending else 0))
    app[STORE] = EventStore(app[POOL])
    try:
        yield
    finally:
        await app[STORE].close()
        await app[POOL].close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


class TimedCommitter(GroupCommitter):
    """Group commit that reports each committed append's wait (hindsight_append_seconds)."""

    def __init__(self, *args: Any, on_append: Callable[[float], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_append = on_append

    async def append(self, event: NewEvent) -> Appended:
        started = time.perf_counter()
        appended = await super().append(event)
        self.on_append(time.perf_counter() - started)
        return appended


async def keep_session(_: asyncpg.Connection) -> None:
    """The append pool's reset: nothing to undo. Its connections only run the store's
    append path (one autocommit INSERT, the lookup of a duplicate's first copy,
    pg_notify), which changes no session state; asyncpg still rolls back a transaction
    left open. asyncpg's default reset query (RESET ALL, UNLISTEN *, CLOSE ALL, advisory
    unlocks) was a round trip per batch: ~8% of an HTTP worker's samples under wrk."""


def counter_of(counter: Counter) -> Callable[[str, str], None]:
    """``counter.labels(a, b).inc()``, each labelled child looked up once (labels()
    validates and locks on every call)."""
    children: dict[tuple[str, str], Any] = {}

    def count(a: str, b: str) -> None:
        child = children.get((a, b))
        if child is None:
            child = children[(a, b)] = counter.labels(a, b)
        child.inc()

    return count


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    append_pool = await create_pool(app[DATABASE_URL], min_size=1, max_size=APPEND_CONNECTIONS,
                                    reset=keep_session)
    appends = EventStore(append_pool)
    committer = TimedCommitter(
        appends,
        on_append=metrics.append_seconds.observe,
        max_wait=settings.group_commit_wait_ms / 1000,
        on_batch=metrics.batch_size.observe,
    )
    committer.start()
    app[INGESTOR] = Ingestor(
        committer,
        IngestSettings(
            credentials=credentials(settings),
            max_body_bytes=settings.max_body_bytes,
            import_max_bytes=settings.import_max_bytes,
            tolerance_seconds=settings.signature_tolerance_seconds,
            dedup_window_seconds=settings.dedup_window_seconds,
        ),
        count=counter_of(metrics.deliveries),
    )
    try:
        yield
    finally:
        for creds in app[INGESTOR].settings.credentials.values():
            if creds.sns is not None:  # subscription confirmations still under way
                await creds.sns.close()
        await committer.close()
        await appends.close()
        await append_pool.close()


async def pending_ctx(app: web.Application) -> AsyncIterator[None]:
    """TIMELINE.md rule 8: with ``[sources.alertmanager] prometheus_url``, each firing
    alert newly stored is looked up in Prometheus in the background (its pending period),
    never delaying the answer; what is learned is appended as its own event."""
    conf = app[SETTINGS].source("alertmanager")
    if conf is None or conf.prometheus_url is None:
        yield
        return
    ingestor = app[INGESTOR]
    lookup = PendingLookup(ingestor.committer.append, conf.prometheus_url.get_secret_value())
    await lookup.start()
    app[PENDING_LOOKUP] = lookup

    def offer(source: str, *stored: Any) -> None:
        if source == "alertmanager":
            lookup.offer(source, *stored)

    ingestor.after_store = offer
    try:
        yield
    finally:
        ingestor.after_store = None
        await lookup.close()


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """A background task for the block's lifetime, cancelled and awaited at its end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def projector_ctx(app: web.Application) -> AsyncIterator[None]:
    """The projector runs in every serve process; the advisory lock lets one lead."""
    settings = app[SETTINGS]
    url = app[DATABASE_URL]
    # The leader writes read models as the service role, like the rest of the service.
    session = await service_settings(url)
    async with app[POOL].acquire() as conn:  # a logical restore not yet renumbered: refuse
        await refuse_a_log_from_another_cluster(conn)
    projector = Projector(
        app[STORE], url, engine_config_from(settings),
        connect=lambda: connect(url, server_settings=session),
    )
    app[PROJECTOR] = projector
    app[LEADERSHIP] = Leadership(is_leader=lambda: projector.status.leader,
                                 projected=projector.projected)
    leader = app[METRICS].projector_leader

    async def report_leadership() -> None:  # read by any process's /metrics
        while True:
            leader.set(1 if projector.status.leader else 0)
            await asyncio.sleep(LEADER_INTERVAL)

    async with running(projector.run(), "projector"), running(report_leadership(), "leader"):
        yield


READ_HORIZON = web.AppKey("read_horizon", ReadHorizon)


async def refresh_gauges(app: web.Application) -> None:
    """Set the projector, read-horizon and incident gauges from the database (shared by
    every replica, so any of them reports the same lag) and this process's leadership.
    A horizon held past ``read_horizon_warning_seconds`` is logged once, as a warning."""
    metrics = app[METRICS]
    horizon = app[READ_HORIZON]
    if PROJECTOR in app:
        metrics.projector_leader.set(1 if app[PROJECTOR].status.leader else 0)
    async with asyncio.timeout(METRICS_INTERVAL), app[POOL].acquire() as conn:
        row = await conn.fetchrow(
            """SELECT c.transaction_id, c.position FROM projector_checkpoint c
               WHERE c.name = 'main'""")
        xid, position = (row["transaction_id"], row["position"]) if row else (0, 0)
        # Bounded count: a huge backlog reads as "at least a million", never a long scan.
        lag = await conn.fetchrow(
            """SELECT count(*) AS n,
                      extract(epoch FROM clock_timestamp() - min(recorded_at)) AS age
               FROM (SELECT recorded_at FROM events
                     WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
                     LIMIT 1000000) AS unprojected""",
            str(xid), position)
        open_count = await conn.fetchval(
            "SELECT count(*) FROM incidents WHERE status = 'open' AND merged_into IS NULL")
        held = await horizon.age(conn)
    metrics.read_horizon_age_seconds.set(held)
    if horizon.warn_once(held, app[SETTINGS].read_horizon_warning_seconds):
        log.warning("read_horizon_held", age_seconds=round(held, 1),
                    horizon_transaction_id=horizon.horizon,
                    find="SELECT pid, datname, usename, xact_start, state, query "
                         "FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                         "ORDER BY xact_start")
    metrics.projector_lag_events.set(lag["n"])
    metrics.projector_lag_seconds.set(float(lag["age"] or 0.0))
    metrics.open_incidents.set(open_count)


async def gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    app[READ_HORIZON] = ReadHorizon()

    async def loop() -> None:
        while True:
            try:
                await refresh_gauges(app)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage must not stop the gauges for good
                log.debug("gauges_not_refreshed", error=repr(exc))
            await asyncio.sleep(METRICS_INTERVAL)

    async with running(loop(), "gauges"):
        yield


def engine_config_from(settings: Settings) -> EngineConfig:
    return engine_config(
        services=settings.services,
        default_severity={name: conf.default_severity for name, conf in settings.sources.items()},
        reopen_window=settings.reopen_window,
        retention=settings.retention,
    )


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and every migration is applied."""
    try:
        async with asyncio.timeout(1.5):
            async with request.app[POOL].acquire() as conn:
                missing = await migrations.pending(conn)
    except Exception as exc:
        return web.json_response({"status": "unavailable", "error": type(exc).__name__}, status=503)
    if missing:
        return web.json_response({"status": "migrations pending", "pending": missing}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_page(request: web.Request) -> web.Response:
    if PROJECTOR in request.app:  # leadership is known without the database: always fresh
        request.app[METRICS].projector_leader.set(1 if request.app[PROJECTOR].status.leader else 0)
    registry = request.app[METRICS].registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # serve's processes: their sums
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return web.Response(body=generate_latest(registry),
                        content_type="text/plain", charset="utf-8")


def hand_over(app: web.Application, settings: Settings) -> None:
    """What the read side's rooms need of the settings, as their own typed keys: they
    never import this package."""
    app[PUBLICATION] = Publication(title=settings.status.title,
                                   public_services=settings.status.public_services,
                                   public_url=settings.public_url)

    async def rows(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        return source_rows(settings, await delivery_counts_on(conn))

    app[SOURCE_DIRECTORY] = SourceDirectory(rows=rows, guide=guide_file)
    notify = settings.notify
    app[NOTIFY_SETTINGS] = NotifySettings(
        targets=notify.named_targets(),
        secret=None if notify.secret is None else notify.secret.get_secret_value(),
        unnamed=tuple(name for name in notify.named_targets() if name not in notify.targets))


def create_app(settings: Settings, *, database_url: str | None = None,
               projector: bool = True, http: bool = True) -> web.Application:
    """The application. ``projector``: run the projector (and its notifier) in this
    process; ``http``: ingest and serve (routes, group commit, gauges). ``serve`` runs
    HTTP workers (``projector=False``) beside one projector process (``http=False``);
    tests run both in one."""
    app = web.Application(
        middlewares=[request_context, api_token, body_limit, body_deadline],
        client_max_size=API_MAX_BODY,  # see body_limit: webhooks and import have their own
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[ENGINE_CONFIG] = engine_config_from(settings)
    hand_over(app, settings)
    if database_url is not None:
        app[DATABASE_URL] = database_url
    app.cleanup_ctx.append(database_ctx)
    if http:
        app.cleanup_ctx.append(ingest_ctx)
        app.cleanup_ctx.append(pending_ctx)  # asks Prometheus; needs the ingestor
    if projector:
        app.cleanup_ctx.append(projector_ctx)
    if http:
        app.cleanup_ctx.append(gauges_ctx)
    if projector:
        app.cleanup_ctx.append(notifier_ctx)  # it sends only while its projector leads
    if not http:
        return app
    app.add_routes(ingest_routes())
    app.add_routes(read_routes())
    app.add_routes(status_page.routes())  # /status, /v1/status, /status/feed.atom
    app.add_routes(latency.routes())      # /v1/detection-latency[/worst]
    app.add_routes(dashboard.routes())    # /dashboard
    app.add_routes(incident_pages.routes())  # /incidents, /incidents/{id}[/draft], /action-items
    app.add_routes(setup_page.routes())   # /setup, /setup/guides/{source}.md, /v1/sources
    app.add_routes([
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/metrics", metrics_page),
        web.get("/openapi.json", openapi_json),
    ])
    return app
