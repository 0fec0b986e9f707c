"""The event store client: append, read in order, follow.

Ordering (why readers never skip): positions come from an identity column, drawn at
INSERT but visible only at COMMIT, so transactions commit out of position order and a
reader polling ``position > last`` can pass an event that commits later. Each row
therefore records its writer's transaction id (``xid8``); readers order by
``(transaction_id, position)`` and only read rows whose transaction id is below
``pg_snapshot_xmin(pg_current_snapshot())``, the oldest transaction still running. Every
transaction below that horizon has ended, so nothing can appear behind the cursor later.
Writers never wait for each other; a long transaction anywhere in the cluster only
delays readers: ``idle_in_transaction_session_timeout`` ends idle ones, nothing bounds an
active one, so the delay is exported as ``hindsight_read_horizon_age_seconds`` and
alerted on. There is no gap timeout: skipping after N seconds is how other stores lost
events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import orjson

from ingest.errors import StoreError, StoreRejected, StoreUnavailable, WrongExpectedVersion

NOTIFY_CHANNEL = "hindsight_events"
T = TypeVar("T")

# Failures after which nothing was decided by the database, or the outcome is unknown
# but an idempotent append may safely be tried again.
TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.exceptions.InternalClientError,  # a connection left mid-operation by a drop
)


# dedup_span's number line: each identity owns a slot of SLOT microseconds, receipts sit
# at OFFSET + microseconds since 1970 inside it (any year from about 1954 to 2001 + 15,000).
_SLOT = 10**18
_OFFSET = 5 * 10**17
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DedupWindow:
    """A retry window for an event identified only by what it carries (a delivery's
    source and body hash): another event of the same ``identity`` whose receipt is less
    than ``seconds`` from a stored one's is a duplicate of it; further apart, both are
    stored. Enforced by the ``events_dedup_window`` exclusion constraint (schema 0004),
    so racing writers store one report per window."""

    identity: str
    seconds: float

    def span(self, received_at: datetime) -> tuple[Decimal, Decimal]:
        """``[receipt - window/2, receipt + window/2)`` in the identity's slot: two spans
        overlap iff same identity and receipts less than a window apart."""
        slot = int(hashlib.sha256(self.identity.encode()).hexdigest()[:32], 16)
        at = (received_at - _EPOCH) // timedelta(microseconds=1)
        half = round(self.seconds * 500_000)
        centre = slot * _SLOT + _OFFSET + at
        return Decimal(centre - half), Decimal(centre + half)


@dataclass(frozen=True, slots=True)
class NewEvent:
    stream: str
    type: str
    received_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    body: bytes | None = None
    idempotency_key: str | None = None
    occurred_at: datetime | None = None
    dedup_window: DedupWindow | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    position: int
    stream: str
    stream_version: int
    duplicate: bool


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A reader's place in the log: the last (transaction id, position) it has seen."""

    transaction_id: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    position: int
    transaction_id: int
    stream: str
    stream_version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    body: bytes | None
    idempotency_key: str | None
    occurred_at: datetime | None
    received_at: datetime
    recorded_at: datetime

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.transaction_id, self.position)


_COLUMNS = """position, transaction_id::text::bigint AS transaction_id, stream, stream_version,
    type, data::text AS data, metadata::text AS metadata, body, idempotency_key,
    occurred_at, received_at, recorded_at"""

_INSERT = """
INSERT INTO events (stream, stream_version, type, data, metadata, body, idempotency_key,
                    occurred_at, received_at)
SELECT s, v, t, d::jsonb, m::jsonb, b, k, o, r
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[],
            $7::text[], $8::timestamptz[], $9::timestamptz[]) AS x(s, v, t, d, m, b, k, o, r)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING position, stream, stream_version
"""

# Deliveries: any conflict (the idempotency key, or a same-bytes report within its retry
# window: the exclusion constraint) skips the row; _insert_independent finds the first.
_INSERT_INDEPENDENT = """
INSERT INTO events (stream, stream_version, type, data, metadata, body, idempotency_key,
                    occurred_at, received_at, dedup_span)
SELECT s, 1, t, d::jsonb, m::jsonb, b, k, o, r,
       CASE WHEN lo IS NULL THEN NULL ELSE numrange(lo, hi) END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[],
            $7::timestamptz[], $8::timestamptz[], $9::numeric[], $10::numeric[])
     AS x(s, t, d, m, b, k, o, r, lo, hi)
ON CONFLICT DO NOTHING
RETURNING position, stream, stream_version
"""

# The stored event each skipped delivery repeats: the one holding its key, else the
# report of the same bytes nearest in receipt among those within the window (earlier
# first on a tie). One indexed lookup per batch, only when something conflicted.
_FIND_FIRST = """
SELECT x.i, e.position, e.stream, e.stream_version, e.rank
FROM unnest($1::int[], $2::text[], $3::numeric[], $4::numeric[], $5::timestamptz[])
     AS x(i, k, lo, hi, r)
CROSS JOIN LATERAL (
    SELECT position, stream, stream_version, rank FROM (
        SELECT position, stream, stream_version, received_at, 0 AS rank FROM events
        WHERE idempotency_key = x.k
        UNION ALL
        SELECT position, stream, stream_version, received_at, 1 FROM events
        WHERE x.lo IS NOT NULL AND dedup_span && numrange(x.lo, x.hi)
    ) AS candidates
    ORDER BY rank, abs(extract(epoch FROM received_at - x.r)), received_at, position
    LIMIT 1
) AS e
"""

# ORDER BY names the table's columns: a bare "transaction_id" would bind to the output
# alias (the bigint cast in _COLUMNS), which no index provides, so every page would sort
# the whole log. Qualified, the events_read_order index is walked in order.
_READ = f"""
SELECT {_COLUMNS} FROM events
WHERE (events.transaction_id, events.position) > ($1::text::xid8, $2::bigint)
  AND events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events.position
LIMIT $3
"""


# The same walk without the stored body and metadata: a rebuild folds the signals ingest
# stored with each delivery and needs a body only to run an older adapter again, so it
# asks for those few bodies by position (``read_positions``) instead of carrying every
# body across the wire.
_READ_LEAN = _READ.replace(
    "SELECT " + _COLUMNS,
    "SELECT " + _COLUMNS.replace("metadata::text AS metadata, body,",
                                 "'{}'::text AS metadata, NULL::bytea AS body,"), 1)


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        position=row["position"],
        transaction_id=row["transaction_id"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        type=row["type"],
        data=orjson.loads(row["data"]),
        metadata=orjson.loads(row["metadata"]),
        body=row["body"],
        idempotency_key=row["idempotency_key"],
        occurred_at=row["occurred_at"],
        received_at=row["received_at"],
        recorded_at=row["recorded_at"],
    )


def _columns(events: Sequence[NewEvent], versions: Sequence[int]) -> list[list[Any]]:
    return [
        [e.stream for e in events],
        list(versions),
        [e.type for e in events],
        [orjson.dumps(e.data).decode() for e in events],
        [orjson.dumps(e.metadata).decode() for e in events],
        [e.body for e in events],
        [e.idempotency_key for e in events],
        [e.occurred_at for e in events],
        [e.received_at for e in events],
    ]


async def read_positions(conn: asyncpg.Connection, positions: Sequence[int]
                         ) -> list[RecordedEvent]:
    """The events at ``positions`` (those that exist), in position order, on the
    caller's connection (no retry: the caller owns its transaction)."""
    try:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE position = ANY($1::bigint[]) ORDER BY position",
            list(positions))
    except TRANSIENT as exc:
        raise StoreUnavailable(f"PostgreSQL is unavailable: {exc!r}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreRejected(f"PostgreSQL refused: {exc}") from exc
    return [_record(r) for r in rows]


def with_key(event: NewEvent) -> NewEvent:
    """``event`` with an idempotency key: its own, else a fresh one the server makes
    before the first try, so a retry of a commit whose answer was lost finds the first
    write instead of storing the event twice."""
    if event.idempotency_key:
        return event
    return dataclasses.replace(event, idempotency_key=f"server:{uuid.uuid4().hex}")


class EventStore:
    """Append-only event log on PostgreSQL. Every method translates asyncpg's errors into
    ``ingest.errors``; the one retry loop lives in ``_with_retry``."""

    def __init__(self, pool: asyncpg.Pool, *, attempts: int = 3, notify: bool = True) -> None:
        self.pool = pool
        self.attempts = attempts
        self.notify = notify
        self._wake_wanted = False
        self._waker: asyncio.Task[None] | None = None

    def _poke_readers(self) -> None:
        """Wake LISTENing readers after a commit, from one background task that
        coalesces pokes. Not inside the appending transaction: PostgreSQL serialises the
        commits of notifying transactions on a cluster-wide queue lock. A lost wake-up
        costs a reader one poll interval, never an event."""
        if not self.notify:
            return
        self._wake_wanted = True
        if self._waker is None or self._waker.done():
            self._waker = asyncio.create_task(self._wake_readers(), name="store-notify")

    async def _wake_readers(self) -> None:
        while self._wake_wanted:
            self._wake_wanted = False
            try:
                async with self.pool.acquire() as conn:
                    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
            except Exception:  # readers poll on a timer as well
                return

    async def close(self) -> None:
        if self._waker is not None:
            self._waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waker

    async def _with_retry(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection, retrying transient failures a bounded
        number of times. Safe for appends because they are idempotent by key: a retry
        of a commit whose answer was lost finds the first write and reports it."""
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            try:
                conn = await self.pool.acquire()
            except Exception as exc:
                # Whatever stops us from getting a connection (server down, database
                # closed to connections, auth refused) is an outage to the caller.
                failure: BaseException = exc
            else:
                broken = False
                try:
                    return await work(conn)
                except TRANSIENT as exc:
                    failure, broken = exc, True
                except StoreError:
                    raise  # the server answered: the connection is in step, keep it
                except asyncpg.PostgresError as exc:
                    # The server answered and refused: in step as well. Callers see the
                    # store's error, never asyncpg's.
                    raise StoreRejected(f"PostgreSQL refused: {exc}") from exc
                except BaseException:
                    broken = True  # cancelled or failed mid-operation
                    raise
                finally:
                    # A connection whose work failed midway (dropped by the server, or
                    # interrupted) is closed, never handed to the next caller in an
                    # unknown protocol state; the pool opens a fresh one.
                    if broken:
                        # A connection the server dropped is already closed, its proxy
                        # detached by asyncpg: terminating it again would raise.
                        with contextlib.suppress(asyncpg.InterfaceError):
                            conn.terminate()
                    with contextlib.suppress(Exception):
                        await self.pool.release(conn)
            if attempt == self.attempts:
                raise StoreUnavailable(f"PostgreSQL is unavailable: {failure!r}") from failure
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def append_independent(self, events: Sequence[NewEvent]) -> list[Appended]:
        """Append events that each open a stream of their own (deliveries), in one
        transaction. An event whose idempotency key is already stored is not written
        again; its answer carries the first append's position, ``duplicate=True``."""
        if not events:
            return []
        events = [with_key(e) for e in events]
        tried = False  # an earlier try of this call sent its INSERT: outcome unknown

        async def work(conn: asyncpg.Connection) -> list[Appended]:
            nonlocal tried
            retrying, tried = tried, True
            # One INSERT statement is one transaction: no BEGIN/COMMIT round trips.
            return await self._insert_independent(conn, events, retrying)

        appended = await self._with_retry(work)
        if any(not a.duplicate for a in appended):
            self._poke_readers()
        return appended

    async def _insert_independent(
        self, conn: asyncpg.Connection, events: Sequence[NewEvent], retrying: bool = False
    ) -> list[Appended]:
        """On a retry (``retrying``), a row holding an event's own key is taken as the
        earlier try's write (its commit landed, its answer was lost): the first event of
        the batch with that key is answered as written, as the first try would have."""
        spans = [e.dedup_window.span(e.received_at) if e.dedup_window else (None, None)
                 for e in events]
        columns = _columns(events, [1] * len(events))
        del columns[1]  # every independent event opens its stream: version 1
        rows = await conn.fetch(_INSERT_INDEPENDENT, *columns, [lo for lo, _ in spans],
                                [hi for _, hi in spans])
        written = {row["stream"]: row for row in rows}
        missing = [i for i, e in enumerate(events) if e.stream not in written]
        existing: dict[int, asyncpg.Record] = {}
        if missing:
            # ON CONFLICT waited for any concurrent writer of the same key or window to
            # finish (a duplicate within this batch was written by the statement itself);
            # this statement's fresh snapshot sees what they committed.
            for row in await conn.fetch(
                _FIND_FIRST, missing, [events[i].idempotency_key for i in missing],
                [spans[i][0] for i in missing], [spans[i][1] for i in missing],
                [events[i].received_at for i in missing],
            ):
                existing[row["i"]] = row
        out: list[Appended] = []
        ours: set[str | None] = set()
        for i, event in enumerate(events):
            row = written.get(event.stream)
            duplicate = row is None
            if row is None:
                row = existing.get(i)
                if row is not None and retrying and row["rank"] == 0 \
                        and event.idempotency_key not in ours:
                    duplicate = False
            if row is None:
                raise StoreError(f"event {event.stream} was neither written nor found")
            if not duplicate:
                ours.add(event.idempotency_key)
            out.append(Appended(row["position"], row["stream"], row["stream_version"],
                                duplicate))
        return out

    async def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> list[Appended]:
        """Append events to one stream in one transaction.

        ``expected_version`` (the stream's current version, 0 for a new stream) makes the
        append conditional: another writer got there first → WrongExpectedVersion. A
        repeated idempotency key answers with the first append instead of writing.
        """
        if any(e.stream != stream for e in events):
            raise ValueError("every event must belong to the stream appended to")
        # Every event has a key before the first try (the caller's, else the server's):
        # the retry below is safe only because appends are idempotent by key.
        events = [with_key(e) for e in events]
        keys = [e.idempotency_key for e in events]
        tried = False  # an earlier try of this call sent its INSERT: outcome unknown

        async def work(conn: asyncpg.Connection) -> list[Appended]:
            nonlocal tried
            async with conn.transaction():
                # Serialise writers of this one stream so the version check below is
                # exact; other streams and deliveries are not held up.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream)
                rows = await conn.fetch(
                    "SELECT position, stream, stream_version FROM events "
                    "WHERE idempotency_key = ANY($1::text[]) ORDER BY position",
                    keys,
                )
                if len(rows) == len(events):
                    # Stored already: by an earlier try of this call whose commit landed
                    # but whose answer was lost (answered as that try would have been,
                    # before any version check), or by an earlier request with these keys.
                    return [Appended(r["position"], r["stream"], r["stream_version"],
                                     not tried) for r in rows]
                current = await conn.fetchval(
                    "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream = $1", stream
                )
                if expected_version is not None and current != expected_version:
                    raise WrongExpectedVersion(stream, expected_version, current)
                versions = range(current + 1, current + 1 + len(events))
                tried = True
                rows = await conn.fetch(_INSERT, *_columns(events, versions))
                if len(rows) != len(events):
                    raise WrongExpectedVersion(stream, current, current)
                return [Appended(r["position"], r["stream"], r["stream_version"], False)
                        for r in sorted(rows, key=lambda r: r["stream_version"])]

        appended = await self._with_retry(work)
        if any(not a.duplicate for a in appended):
            self._poke_readers()
        return appended

    async def read(self, after: Cursor = Cursor(), limit: int = 1000, *,
                   bodies: bool = True) -> list[RecordedEvent]:
        """Events after ``after`` in log order, only from transactions that have ended.
        ``bodies=False``: without bodies and metadata (``body`` None, ``metadata`` {})."""

        async def work(conn: asyncpg.Connection) -> list[RecordedEvent]:
            rows = await conn.fetch(_READ if bodies else _READ_LEAN, str(after.transaction_id),
                                    after.position, limit)
            return [_record(r) for r in rows]

        return await self._with_retry(work)

    async def get(self, position: int) -> RecordedEvent | None:
        async def work(conn: asyncpg.Connection) -> RecordedEvent | None:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM events WHERE position = $1",
                                      position)
            return None if row is None else _record(row)

        return await self._with_retry(work)

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        async def work(conn: asyncpg.Connection) -> list[RecordedEvent]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE stream = $1 ORDER BY stream_version", stream
            )
            return [_record(r) for r in rows]

        return await self._with_retry(work)

    async def stream_version(self, stream: str) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            value = await conn.fetchval(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream = $1", stream
            )
            return int(value)

        return await self._with_retry(work)

    async def follow(
        self,
        after: Cursor,
        *,
        wake: asyncio.Event,
        poll_interval: float = 0.5,
        limit: int = 1000,
        linger: float = 0.0,
    ) -> AsyncIterator[list[RecordedEvent]]:
        """Catch up from ``after``, then follow live: ``wake`` (set by a LISTEN callback,
        see ``Listener``) only shortens the wait; the timer polls regardless, so a lost
        notification delays an event by at most ``poll_interval``.

        ``linger``: reads start at least that many seconds apart. A read after a quiet
        spell starts at once; under a steady stream, events gather for up to ``linger``
        and come as one batch, whose fixed costs (for the projector: rendering each
        changed incident, a transaction) are paid once for all of them."""
        loop = asyncio.get_running_loop()
        last_read = -linger
        cursor = after
        # After a wake-up that showed nothing, something committed that the horizon does
        # not let us read yet (an older transaction is still open): look again soon,
        # backing off towards the timer, instead of sleeping a whole interval.
        retry: float | None = None
        while True:
            # Cleared before the read, not after the batch is handled: a notification
            # that arrives while the consumer folds it is kept, and the next read comes
            # at once instead of after the timer.
            if (gap := last_read + linger - loop.time()) > 0:
                await asyncio.sleep(gap)
            last_read = loop.time()
            wake.clear()
            batch = await self.read(cursor, limit)
            if batch:
                retry = None
                cursor = batch[-1].cursor
                yield batch
                if len(batch) == limit:
                    continue
            try:
                await asyncio.wait_for(wake.wait(), retry or poll_interval)
                retry = 0.005
            except TimeoutError:
                if retry is not None:
                    retry = retry * 2 if retry * 2 < poll_interval else None


class Listener:
    """A dedicated connection LISTENing for appends; sets an asyncio.Event on each."""

    def __init__(self, dsn: str, **connect: Any) -> None:
        self.dsn = dsn
        self.connect_args = connect
        self.wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    def _on_notify(self, *_: object) -> None:
        self.wake.set()

    async def start(self) -> None:
        try:
            self._conn = await asyncpg.connect(self.dsn, **self.connect_args)
            await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except TRANSIENT:
            # Without LISTEN the timer still polls; the projector's loop retries start().
            self._conn = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
