"""The event store's contract, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ingest.errors import StoreError, StoreRejected, WrongExpectedVersion
from ingest.store import _READ, Cursor, DedupWindow, EventStore, NewEvent, RecordedEvent

NOW = datetime(2025, 3, 14, 10, 2, 40, tzinfo=UTC)


def delivery(key: str, body: bytes = b"{}") -> NewEvent:
    return NewEvent(
        stream=f"delivery-native-{uuid.uuid4().hex}",  # each delivery opens its own stream
        type="delivery.received",
        received_at=NOW,
        data={"source": "native"},
        body=body,
        idempotency_key=f"native:{key}",
    )


def note(stream: str, text: str, key: str | None = None) -> NewEvent:
    return NewEvent(stream=stream, type="incident.note", received_at=NOW, data={"text": text},
                    idempotency_key=key)


async def count(pool: asyncpg.Pool) -> int:
    """Rows in the log, whatever any reader's horizon currently allows."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM events"))


async def read_settled(store: EventStore, expected: int, seconds: float = 30.0
                       ) -> list[RecordedEvent]:
    """Read from the start until ``expected`` events have been handed out.

    The read horizon is the oldest transaction running anywhere in the cluster, so a
    transaction of another test (xdist runs them side by side) delays what we see; it
    never loses anything. An event that was skipped never arrives, and the deadline
    turns that into a failure."""
    seen: list[RecordedEvent] = []
    cursor = Cursor()
    deadline = asyncio.get_running_loop().time() + seconds
    while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
        batch = await store.read(cursor, limit=7)
        if batch:
            seen += batch
            cursor = batch[-1].cursor
        else:
            await asyncio.sleep(0.01)
    return seen


async def test_appended_events_are_read_back_in_order_with_their_fields(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    appended = await store.append_independent([delivery("a", b"raw \x00 bytes"), delivery("b")])
    events = await read_settled(store, 2)
    assert [e.position for e in events] == [a.position for a in appended]
    first = events[0]
    assert first.body == b"raw \x00 bytes"
    assert first.type == "delivery.received"
    assert first.data == {"source": "native"}
    assert first.received_at == NOW
    assert first.stream_version == 1
    assert first.recorded_at > NOW


async def test_a_repeated_idempotency_key_answers_with_the_first_position(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    [first] = await store.append_independent([delivery("same")])
    [again] = await store.append_independent([delivery("same")])
    assert not first.duplicate
    assert again.duplicate
    assert again.position == first.position
    assert await count(pool) == 1


async def test_a_key_repeated_within_one_batch_is_stored_once(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    answers = await store.append_independent([delivery("x"), delivery("x"), delivery("y")])
    assert [a.duplicate for a in answers] == [False, True, False]
    assert answers[0].position == answers[1].position
    assert await count(pool) == 2


async def test_concurrent_appends_of_one_key_store_it_once(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    answers = await asyncio.gather(*(store.append_independent([delivery("race")]) for _ in range(8)))
    positions = {a[0].position for a in answers}
    assert len(positions) == 1
    assert sum(not a[0].duplicate for a in answers) == 1


def report(body: bytes, seconds: float, window: float = 600) -> NewEvent:
    """A delivery known only by its bytes (no tool delivery id), received ``seconds``
    after NOW: keyed by its receipt, deduplicated within ``window`` (ingest/webhooks.py)."""
    at = NOW + timedelta(seconds=seconds)
    identity = f"native:sha256:{body.hex()}"
    return NewEvent(stream=f"delivery-native-{uuid.uuid4().hex}", type="delivery.received",
                    received_at=at, data={"source": "native"}, body=body,
                    idempotency_key=f"{identity}@{at.isoformat()}",
                    dedup_window=DedupWindow(identity, window))


async def stored_receipts(pool: asyncpg.Pool) -> list[float]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT received_at FROM events ORDER BY received_at")
    return [(r["received_at"] - NOW).total_seconds() for r in rows]


async def test_the_same_bytes_are_one_report_within_the_window_and_a_new_one_after(
    pool: asyncpg.Pool
) -> None:
    """ARCHITECTURE.md, "Idempotent appends": identical bytes are a retry only within the
    window of a stored report's receipt (here 600 s); later they are a new report."""
    store = EventStore(pool)
    [first] = await store.append_independent([report(b"A", 0)])
    [retry] = await store.append_independent([report(b"A", 599)])
    [later] = await store.append_independent([report(b"A", 600)])
    [other] = await store.append_independent([report(b"B", 1)])
    assert (first.duplicate, retry.duplicate, later.duplicate, other.duplicate) == (
        False, True, False, False)
    assert retry.position == first.position
    assert await stored_receipts(pool) == [0, 1, 600]


async def test_a_chain_of_copies_is_measured_from_the_stored_report_not_from_the_last_copy(
    pool: asyncpg.Pool
) -> None:
    """The rule for chains: a copy is a duplicate when it lies within the window of a
    stored report of the same bytes. Copies at 0, 300 and 700 s: 300 repeats 0; 700 is
    700 s from the only stored report, so it is a report of its own (a copy does not
    stretch the window). Either direction counts: a copy imported later but received
    earlier (-500 s) repeats the report it is within the window of."""
    store = EventStore(pool)
    answers = [(await store.append_independent([report(b"A", t)]))[0]
               for t in (0, 300, 700, -500)]
    assert [a.duplicate for a in answers] == [False, True, False, True]
    assert answers[1].position == answers[3].position == answers[0].position
    assert await stored_receipts(pool) == [0, 700]


async def test_a_copy_between_two_reports_repeats_the_nearer_one(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    [early] = await store.append_independent([report(b"A", 0)])
    [late] = await store.append_independent([report(b"A", 1000)])
    [near_late] = await store.append_independent([report(b"A", 550)])
    [near_early] = await store.append_independent([report(b"A", 450)])
    assert (near_late.position, near_early.position) == (late.position, early.position)


async def test_an_exact_re_import_of_a_stored_report_is_a_duplicate_of_itself(
    pool: asyncpg.Pool
) -> None:
    """Even with no window at all (0 s), the same bytes with the same recorded receipt
    are the same delivery: re-importing a log stores nothing twice."""
    store = EventStore(pool)
    [first] = await store.append_independent([report(b"A", 5, window=0)])
    [again] = await store.append_independent([report(b"A", 5, window=0)])
    [moved] = await store.append_independent([report(b"A", 6, window=0)])
    assert again.duplicate
    assert again.position == first.position
    assert not moved.duplicate


async def test_racing_copies_within_one_window_store_one_report(pool: asyncpg.Pool) -> None:
    """Concurrency: eight writers (each its own transaction) and one batch holding
    several copies, all within one window: exactly one report is stored and every
    other answer names it."""
    store = EventStore(pool)
    singles = await asyncio.gather(*(store.append_independent([report(b"R", t * 10)])
                                     for t in range(8)))
    batch = await store.append_independent([report(b"R", 100 + t) for t in range(4)])
    answers = [a for [a] in singles] + batch
    assert sum(not a.duplicate for a in answers) == 1
    assert len({a.position for a in answers}) == 1
    assert len(await stored_receipts(pool)) == 1


async def test_a_stream_append_with_a_stale_version_is_refused(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    await store.append("incident-1", [note("incident-1", "a")], expected_version=0)
    await store.append("incident-1", [note("incident-1", "b")], expected_version=1)
    with pytest.raises(WrongExpectedVersion) as caught:
        await store.append("incident-1", [note("incident-1", "c")], expected_version=1)
    assert caught.value.actual == 2
    assert await store.stream_version("incident-1") == 2


async def test_many_events_in_one_stream_append_get_consecutive_versions(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    answers = await store.append("s", [note("s", str(i)) for i in range(3)], expected_version=0)
    assert [a.stream_version for a in answers] == [1, 2, 3]
    assert [e.data["text"] for e in await store.read_stream("s")] == ["0", "1", "2"]


async def test_a_repeated_stream_append_with_its_key_is_a_no_op(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    [first] = await store.append("s", [note("s", "a", key="k1")], expected_version=0)
    [again] = await store.append("s", [note("s", "a", key="k1")], expected_version=0)
    assert again.duplicate
    assert again.position == first.position


async def test_concurrent_stream_appends_without_a_version_all_land(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    await asyncio.gather(*(store.append("busy", [note("busy", str(i))]) for i in range(10)))
    versions = [e.stream_version for e in await store.read_stream("busy")]
    assert versions == list(range(1, 11))


async def test_a_reader_never_skips_an_event_whose_transaction_commits_late(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Hold one append open, commit later ones, read; then commit the first: the reader
    sees every event exactly once, in order, and never past the open one meanwhile."""
    store = EventStore(pool)
    slow = await asyncpg.connect(database_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        slow_store = EventStore(pool)
        await slow_store._insert_independent(slow, [delivery("slow")])

        await store.append_independent([delivery("fast-1")])
        await store.append_independent([delivery("fast-2")])
        seen = await store.read()
        # The open transaction holds the horizon: nothing after it may be handed out yet.
        assert seen == []

        await transaction.commit()
        keys = [e.idempotency_key for e in await read_settled(store, 3)]
        assert keys == ["native:slow", "native:fast-1", "native:fast-2"]
    finally:
        await slow.close()


async def test_a_reader_following_eight_racing_appenders_gets_exactly_the_committed_events(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Eight appenders commit after random delays (some roll back) while a reader follows."""
    rng = random.Random(20251126)
    committed: list[str] = []

    async def appender(worker: int) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for n in range(25):
                key = f"w{worker}-{n}"
                transaction = conn.transaction()
                await transaction.start()
                await EventStore(pool, notify=False)._insert_independent(conn, [delivery(key)])
                await asyncio.sleep(rng.random() * 0.01)
                if rng.random() < 0.1:
                    await transaction.rollback()
                else:
                    await transaction.commit()
                    committed.append(f"native:{key}")
        finally:
            await conn.close()

    store = EventStore(pool)
    seen: list[str | None] = []
    done = asyncio.Event()

    async def reader() -> None:
        cursor = Cursor()
        while True:
            finished = done.is_set()
            batch = await store.read(cursor, limit=13)
            seen.extend(e.idempotency_key for e in batch)
            if batch:
                cursor = batch[-1].cursor
            elif finished:
                return
            else:
                await asyncio.sleep(0.002)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(appender(w) for w in range(8)))
    done.set()
    await reading
    # The follower may have stopped while another test's transaction held the horizon.
    rest = await read_settled(store, len(committed))
    missing = [e.idempotency_key for e in rest if e.idempotency_key not in seen]
    seen.extend(missing)
    assert len(seen) == len(set(seen)), "an event was read twice"
    assert sorted(str(key) for key in seen) == sorted(committed)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_the_service_role_cannot_change_the_event_log(
    pool: asyncpg.Pool, statement: str
) -> None:
    await EventStore(pool).append_independent([delivery("keep")])
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == "hindsight_service"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    assert await count(pool) == 1


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_even_the_owner_is_stopped_by_the_append_only_triggers(
    pool: asyncpg.Pool, database_url: str, statement: str
) -> None:
    await EventStore(pool).append_independent([delivery("keep")])
    owner = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await owner.execute(statement)
        # ENABLE ALWAYS: replica mode (used by logical replication) does not bypass them.
        await owner.execute("SET session_replication_role = replica")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await owner.execute(statement)
    finally:
        await owner.close()
    assert await count(pool) == 1


async def test_follow_wakes_on_an_append(pool: asyncpg.Pool, database_url: str) -> None:
    from ingest.store import Listener

    store = EventStore(pool)
    listener = Listener(database_url)
    await listener.start()
    try:
        got: list[int] = []

        async def consume() -> None:
            async for batch in store.follow(Cursor(), wake=listener.wake, poll_interval=60):
                got.extend(e.position for e in batch)
                return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        [appended] = await store.append_independent([delivery("wake")])
        # Far below the 60 s timer: the NOTIFY woke it. Not 5 s: another test may hold
        # the cluster's read horizon for seconds (tests/faults/test_horizon.py), and the
        # reader backs off meanwhile.
        await asyncio.wait_for(task, 20)
        assert got == [appended.position]
    finally:
        await listener.close()


async def test_an_append_notified_while_a_batch_is_handled_is_read_at_once(
        pool: asyncpg.Pool, database_url: str) -> None:
    """``follow``: a notification that arrives while the consumer handles a batch (the
    projector folding it) is not lost: the next event is read as soon as the consumer
    is done, not after the timer (``wake`` "only shortens the wait"; a lost wake-up
    would cost a live event up to ``poll_interval`` of lag)."""
    from ingest.store import Listener

    store = EventStore(pool)
    listener = Listener(database_url)
    await listener.start()
    try:
        got: list[int] = []
        first_of: list[int] = []

        async def consume() -> None:
            async for batch in store.follow(Cursor(), wake=listener.wake, poll_interval=60):
                got.extend(e.position for e in batch)
                if len(got) >= 2:
                    return
                if first_of and first_of[0] in got:
                    # While this batch is handled, the next append commits and notifies.
                    [second] = await store.append_independent([delivery("during-2")])
                    got.append(-second.position)  # marks what must come next
                    await asyncio.sleep(0.5)  # the notification arrives meanwhile

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        [first] = await store.append_independent([delivery("during-1")])
        first_of.append(first.position)
        await asyncio.wait_for(task, 20)  # far below the 60 s timer (see above: not 5 s)
        assert got[-1] == -got[-2]
    finally:
        await listener.close()


# --- a commit whose answer is lost (issue 12, item 1) ---------------------------------

class _LosingConnection:
    """A pooled connection whose first commit lands in PostgreSQL but whose answer never
    reaches us (the connection drops right after): the store cannot tell this from a
    commit that failed, so it retries."""

    def __init__(self, conn: asyncpg.Connection, pool: LosingPool) -> None:
        self._conn = conn
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _lose(self) -> None:
        if self._pool.to_lose > 0:
            self._pool.to_lose -= 1
            raise ConnectionResetError("connection lost after COMMIT was sent")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._conn.transaction():
            yield
        self._lose()  # committed: only the answer is lost

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._conn.fetch(query, *args)
        if query.lstrip().startswith("INSERT") and not self._conn.is_in_transaction():
            self._lose()  # an INSERT outside a transaction commits on its own
        return rows


class LosingPool:
    """A pool (``await pool.acquire()`` or ``async with pool.acquire()``) whose first
    ``to_lose`` commits lose their answer; set it as an EventStore's ``pool``."""

    def __init__(self, pool: asyncpg.Pool, to_lose: int = 1) -> None:
        self._pool = pool
        self.to_lose = to_lose

    def acquire(self) -> _Acquiring:
        return _Acquiring(self)

    async def release(self, conn: _LosingConnection) -> None:
        await self._pool.release(conn._conn)


class _Acquiring:
    def __init__(self, pool: LosingPool) -> None:
        self._pool = pool
        self._conn: _LosingConnection | None = None

    async def _get(self) -> _LosingConnection:
        return _LosingConnection(await self._pool._pool.acquire(), self._pool)

    def __await__(self) -> Any:
        return self._get().__await__()

    async def __aenter__(self) -> _LosingConnection:
        self._conn = await self._get()
        return self._conn

    async def __aexit__(self, *_: object) -> None:
        if self._conn is not None:
            await self._pool.release(self._conn)


@pytest.mark.parametrize("expected_version", [None, 0])
async def test_a_keyless_stream_append_whose_commit_answer_is_lost_is_stored_once(
        pool: asyncpg.Pool, expected_version: int | None) -> None:
    """Issue 12, item 1: the store retries a commit whose outcome it could not learn,
    which is safe only for appends idempotent by key. An append without a key (a manual
    event sent without Idempotency-Key, an action-item event) gets one from the server
    before the first try: it is stored once, and the retry answers as the first try
    would have (written, version 1), not with a 409 for the write that landed."""
    lossy = LosingPool(pool)
    store = EventStore(lossy, notify=False)  # type: ignore[arg-type, unused-ignore]
    [answer] = await store.append("incident-lost", [note("incident-lost", "a")],
                                  expected_version=expected_version)
    assert lossy.to_lose == 0, "the commit's answer was lost once"
    stored = await EventStore(pool).read_stream("incident-lost")
    assert [e.data["text"] for e in stored] == ["a"]
    assert (answer.position, answer.stream_version, answer.duplicate) == \
        (stored[0].position, 1, False)
    assert stored[0].idempotency_key, "the server gave the keyless event a key"


async def test_a_delivery_whose_commit_answer_is_lost_is_answered_as_written(
        pool: asyncpg.Pool) -> None:
    """Issue 12, item 1: a retry returns the first outcome. The delivery's first try
    was written; the retry finds that row by the delivery's own key and answers
    "written" (202 at the edge), not "duplicate" (200)."""
    lossy = LosingPool(pool)
    store = EventStore(lossy, notify=False)  # type: ignore[arg-type, unused-ignore]
    [answer] = await store.append_independent([delivery("lost-answer")])
    assert lossy.to_lose == 0
    assert await count(pool) == 1
    assert not answer.duplicate
    [again] = await EventStore(pool).append_independent([delivery("lost-answer")])
    assert again.duplicate
    assert again.position == answer.position


# --- errors stay inside the store (issue 12, item 5) ----------------------------------

async def test_a_database_refusal_reaches_the_caller_as_a_store_error(pool: asyncpg.Pool
                                                                      ) -> None:
    """ingest/errors.py: callers branch on the store's errors, never on asyncpg's.
    PostgreSQL's jsonb cannot hold U+0000 (it refuses the value: a real refusal,
    not a lost connection), so this append is refused, reported as StoreRejected with
    asyncpg's error as its cause, and nothing is written."""
    store = EventStore(pool)
    with pytest.raises(StoreError) as caught:
        await store.append("incident-nul", [note("incident-nul", "nul \x00 byte")])
    assert isinstance(caught.value, StoreRejected)
    assert not isinstance(caught.value, asyncpg.PostgresError)
    assert isinstance(caught.value.__cause__, asyncpg.PostgresError)
    assert await count(pool) == 0


# --- the log is read in index order (issue 11, item 4) ---------------------------------

async def test_the_log_read_walks_the_read_order_index_without_sorting(pool: asyncpg.Pool
                                                                       ) -> None:
    """ingest/store.py reads ``ORDER BY (transaction_id, position)`` a page at a time;
    only the events_read_order index gives that order without sorting the whole log on
    every page. With sorting priced out, a plan that still sorts cannot be served by
    the index (the ORDER BY names something the index does not hold)."""
    await EventStore(pool).append_independent([delivery(str(i)) for i in range(20)])
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_sort = off")
        await conn.execute("ANALYZE events")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {_READ}", "0", 0, 1000))
    assert "Sort" not in plan, plan
    assert "events_read_order" in plan, plan
