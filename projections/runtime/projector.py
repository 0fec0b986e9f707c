"""The projector: one leader per database folds the log into the read models.

1. Leadership: ``pg_try_advisory_lock`` on a dedicated connection (a transaction-pooling
   proxy would break a session lock; say so in deployment). Followers retry every second,
   so when a leader dies its lock goes with its connection and another takes over.
2. Resume: read the checkpoint and the engine's saved state for every service, and fold
   the action-item events up to the checkpoint (they are few) to restore their state.
3. Catch up, then follow live: ``EventStore.follow`` reads in commit-safe order; NOTIFY
   only shortens the wait, a timer polls regardless.
4. Each batch: fold, then write read-model rows, engine state and the checkpoint in ONE
   transaction on the leader's connection. The checkpoint moves by compare-and-set from
   the value this leader last wrote: zero rows updated means someone else projected
   meanwhile, and this leader steps down rather than write twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog
from aiohttp import web

from ingest.action_items import ACTION_ITEM_EVENT_TYPES
from ingest.errors import StoreError
from ingest.store import TRANSIENT, Cursor, EventStore, Listener, RecordedEvent
from projections.engine.fold import EngineConfig
from projections.runtime.projection import Pending, Projection, save_state, stored_firsts, write

log = structlog.get_logger("hindsight.projector")

PROJECTOR_LOCK = 0x48_53_50_52  # "HSPR": one projector leader per database
CHECKPOINT = "main"
SNAPSHOT_EVERY = 20_000  # events between saves of the engine's state
YIELD_EVERY = 25  # events folded between returns to the event loop
# Events read (and committed) at most per batch. It binds only while the projector is
# behind (following live, a batch is what arrived meanwhile), and then bigger is
# cheaper: every incident a batch changes is rendered, encoded and written once per
# batch, however many of its events the batch holds. Measured (issue 11) on a 25,771-
# event log of bench/ingest.py's traffic, whose incidents reach thousands of entries,
# two interleaved rounds: 1,000 -> 1,119 and 1,162 µs of projector CPU per event (its
# PostgreSQL 340, 347), 5,000 -> 691 and 613 (178, 169); catching up in 33-38 s, not 58-65.
BATCH_SIZE = 5000
# Seconds between the starts of the projector's reads while events stream in (a read
# after a quiet spell starts at once). Each batch pays fixed costs: every incident it
# changed is rendered (an alert storm's incident of 20,000 entries: 5-15 ms even when
# one entry changed), its timeline compared with the rows written, and one transaction
# of several statements. Reading as soon as each delivery's notification came gave
# batches of a few events under steady load, and those fixed costs per few events.
# Lingering adds up to this much to the live lag (goal: under 1 s).
LINGER = 0.1
READ_MODELS = ("incidents", "timeline_entries", "subject_states", "service_risks",
               "signal_incidents", "delivery_log", "action_items", "projector_state")


class LostLeadership(Exception):
    """The checkpoint moved under us: another projector wrote. Step down."""


@dataclass
class Status:
    """What /metrics and /readyz show about the projector in this process."""

    leader: bool = False
    cursor: Cursor = field(default_factory=Cursor)
    events: int = 0
    last_batch_at: float = 0.0
    last_recorded_at: float | None = None


@dataclass
class ReadHorizon:
    """How long the readers' horizon has been held (``hindsight_read_horizon_age_seconds``).

    Readers read only below ``pg_snapshot_xmin``: the oldest transaction, anywhere in the
    cluster, that has written (has a transaction id) and not ended. While it runs, every
    later commit waits unread. The age is the larger of

    - the age of the oldest running transaction that has a transaction id
      (``pg_stat_activity.backend_xid``, its ``xact_start``), which PostgreSQL shows only
      for sessions of roles the service may see (grant ``pg_read_all_stats`` to see all);
    - how long this process has seen the horizon stuck at the same transaction while a
      transaction runs (from this object's first refresh, so it never overstates).

    0 when no transaction with an id is running (the horizon is the next id)."""

    horizon: int = -1
    since: float = 0.0
    warned: int = -1  # the horizon last warned about: one warning per held horizon

    async def age(self, conn: asyncpg.Connection, now: float | None = None) -> float:
        row = await conn.fetchrow(
            """SELECT pg_snapshot_xmin(s)::text::bigint AS horizon,
                      pg_snapshot_xmax(s)::text::bigint AS next,
                      (SELECT extract(epoch FROM clock_timestamp() - min(xact_start))
                       FROM pg_stat_activity WHERE backend_xid IS NOT NULL) AS oldest
               FROM pg_current_snapshot() AS s""")
        now = time.monotonic() if now is None else now
        horizon, following = int(row["horizon"]), int(row["next"])
        if horizon != self.horizon:
            self.horizon, self.since = horizon, now
        if horizon >= following:  # nothing with an id is running: nothing is held
            return 0.0
        return max(now - self.since, float(row["oldest"] or 0.0))

    def warn_once(self, age: float, threshold: float) -> bool:
        """True the first time this horizon's hold passes ``threshold``."""
        if age < threshold or self.warned == self.horizon:
            return False
        self.warned = self.horizon
        return True


async def load_checkpoint(conn: asyncpg.Connection) -> tuple[Cursor, int]:
    await conn.execute(
        "INSERT INTO projector_checkpoint (name) VALUES ($1) ON CONFLICT DO NOTHING", CHECKPOINT)
    row = await conn.fetchrow(
        "SELECT transaction_id, position, events FROM projector_checkpoint WHERE name = $1",
        CHECKPOINT)
    return Cursor(row["transaction_id"], row["position"]), row["events"]


async def reset_read_models(conn: asyncpg.Connection) -> None:
    """Empty every read model and put the checkpoint (and the saved state's cursor) at the
    start of the log, in one transaction: the next fold replays everything."""
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")
        await conn.execute(
            """INSERT INTO projector_checkpoint (name) VALUES ($1)
               ON CONFLICT (name) DO UPDATE SET transaction_id = 0, position = 0, events = 0,
                 snapshot_transaction_id = 0, snapshot_position = 0, updated_at = now()""",
            CHECKPOINT)


# The owner's fix for a log restored from another cluster (docs/operations.md, "Backup and
# restore"): every restored event takes the id of one new transaction, in position order.
RENUMBER_SQL = """BEGIN;
ALTER TABLE events DISABLE TRIGGER events_no_update_delete;
UPDATE events SET transaction_id = pg_current_xact_id();
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete;
COMMIT;"""


class RestoredFromAnotherCluster(RuntimeError):
    """The log holds transaction ids this cluster has not reached yet: a logical restore
    from another cluster. Readers only read below the oldest running transaction, so
    they would never read those events, and new ones would sort before them."""


async def ids_ahead(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """(highest transaction id in the log, the checkpoint's, this cluster's next id).
    The next id comes from the snapshot (``pg_snapshot_xmax``): reading it assigns none."""
    row = await conn.fetchrow(
        """SELECT coalesce((SELECT max(transaction_id) FROM events)::text::bigint, 0) AS log,
                  coalesce((SELECT transaction_id FROM projector_checkpoint
                            WHERE name = $1), 0) AS checkpoint,
                  pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next""",
        CHECKPOINT)
    return int(row["log"]), int(row["checkpoint"]), int(row["next"])


async def refuse_a_log_from_another_cluster(conn: asyncpg.Connection) -> None:
    """Stop the start when the log's transaction ids are ahead of this cluster's. Not
    repaired here: the service role may not rewrite the log, and ingesting first would
    order new deliveries before the restored history."""
    highest, _, following = await ids_ahead(conn)
    if highest >= following:
        raise RestoredFromAnotherCluster(
            f"the event log's transaction ids reach {highest}, but this PostgreSQL cluster "
            f"has only reached {following}: the log was restored from a logical dump of "
            "another cluster, and readers would never read it (docs/operations.md, "
            "'Backup and restore'). As the database owner, run\n"
            f"{RENUMBER_SQL}\nthen `hindsight rebuild`, then start again.")


class OutdatedState(Exception):
    """The saved engine state is of another format (an upgraded engine): replay."""


async def restore(conn: asyncpg.Connection, store: EventStore, config: EngineConfig,
                  upto: Cursor) -> Projection:
    """The projection as of ``upto`` (the checkpoint): the saved engine state at the
    snapshot cursor, the action items folded to that cursor (they are few), then the
    events from the snapshot to the checkpoint folded again without writing (their rows
    are already in the read models)."""
    projection = Projection(config)
    row = await conn.fetchrow(
        "SELECT snapshot_transaction_id, snapshot_position FROM projector_checkpoint "
        "WHERE name = $1", CHECKPOINT)
    snapshot = Cursor(row["snapshot_transaction_id"], row["snapshot_position"]) if row else Cursor()
    for state in await conn.fetch("SELECT service, state::text FROM projector_state"):
        try:
            projection.engine.load(state["service"], orjson.loads(state["state"]))
        except ValueError as exc:
            raise OutdatedState(str(exc)) from exc
    if snapshot.position:
        async with store.pool.acquire() as reader:
            rows = await reader.fetch(
                """SELECT position, transaction_id::text::bigint AS xid, type, data::text,
                          recorded_at
                   FROM events WHERE type = ANY($1::text[])
                     AND (transaction_id, position) <= ($2::text::xid8, $3::bigint)
                   ORDER BY transaction_id, position""",
                list(ACTION_ITEM_EVENT_TYPES), str(snapshot.transaction_id), snapshot.position)
        for item in rows:
            projection.apply_item(RecordedEvent(
                position=item["position"], transaction_id=item["xid"], stream="",
                stream_version=0, type=item["type"], data=orjson.loads(item["data"]),
                metadata={}, body=None, idempotency_key=None, occurred_at=None,
                received_at=item["recorded_at"], recorded_at=item["recorded_at"]))
    cursor = snapshot
    while cursor < upto:
        batch = [e for e in await store.read(cursor, 1000) if e.cursor <= upto]
        if not batch:
            break
        projection.apply(batch, Pending(), await stored_firsts(conn, batch))
        projection.unsaved.update(projection.engine.take_changes().services)
        cursor = batch[-1].cursor
    projection.engine.take_changes()  # restored state is not a change
    return projection


def snapshot_due(projection: Projection) -> bool:
    return projection.events_unsaved >= SNAPSHOT_EVERY


async def project_batch(
    conn: asyncpg.Connection,
    projection: Projection,
    batch: list[RecordedEvent],
    previous: Cursor,
    events_before: int,
    fault: Callable[[str], None] | None = None,
    *,
    save: bool | None = None,
) -> None:
    """Fold ``batch`` and commit its rows with the checkpoint, or nothing at all.

    Every SNAPSHOT_EVERY events (or when ``save`` says so) the engine's state of the
    services changed since the last save is written too, and the snapshot cursor moves
    with the checkpoint: saving the whole state each batch would cost more than folding.
    """
    pending = Pending()
    firsts = await stored_firsts(conn, batch)  # what copies of earlier deliveries repeat
    for start in range(0, len(batch), YIELD_EVERY):
        projection.apply(batch[start:start + YIELD_EVERY], pending, firsts)
        # The fold is CPU work on the server's event loop: let waiting webhook requests
        # through between slices, so a burst to project never stalls ingestion.
        await asyncio.sleep(0)
    changes = projection.engine.take_changes()
    projection.unsaved.update(changes.services)
    projection.events_unsaved += len(batch)
    after = batch[-1].cursor
    saving = snapshot_due(projection) if save is None else save
    async with conn.transaction():
        written = await write(conn, changes, pending, projection.written)
        if saving:
            await save_state(conn, {name: projection.engine.dump(name)
                                    for name in projection.unsaved})
        if fault is not None:
            fault("after-read-models")  # tests: crash between read models and checkpoint
        moved = await conn.execute(
            """UPDATE projector_checkpoint
               SET transaction_id = $2, position = $3, events = $4, updated_at = now(),
                   snapshot_transaction_id = CASE WHEN $7 THEN $2 ELSE snapshot_transaction_id END,
                   snapshot_position = CASE WHEN $7 THEN $3 ELSE snapshot_position END
               WHERE name = $1 AND transaction_id = $5 AND position = $6""",
            CHECKPOINT, after.transaction_id, after.position, events_before + len(batch),
            previous.transaction_id, previous.position, saving)
        if moved != "UPDATE 1":
            raise LostLeadership("the checkpoint moved: another projector is writing")
    projection.written.committed(written)
    if saving:
        projection.unsaved.clear()
        projection.events_unsaved = 0


class Projector:
    def __init__(
        self,
        store: EventStore,
        dsn: str,
        config: EngineConfig,
        *,
        connect: Callable[[], Any],
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 0.5,
        linger: float = LINGER,
        fault: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.dsn = dsn
        self.config = config
        self.connect = connect
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.linger = linger
        self.fault = fault
        self.status = Status()
        self.projected = asyncio.Condition()

    async def run(self) -> None:
        """Forever: wait for leadership, project while leading; survive outages."""
        while True:
            try:
                await self._lead_once()
            except asyncio.CancelledError:
                raise
            except (LostLeadership, StoreError, *TRANSIENT, asyncpg.PostgresError) as exc:
                log.warning("projector_stepped_down", error=repr(exc))
            except RestoredFromAnotherCluster as exc:
                log.error("projector_refused", error=str(exc))
                self.status.leader = False
                await asyncio.sleep(10.0)
            except Exception:
                log.exception("projector_failed")
            self.status.leader = False
            await asyncio.sleep(1.0)

    async def _lead_once(self) -> None:
        conn: asyncpg.Connection = await self.connect()
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PROJECTOR_LOCK):
                return
            self.status.leader = True
            log.info("projector_leading")
            listener = Listener(self.dsn)
            await listener.start()
            try:
                await self._project(conn, listener)
            finally:
                await listener.close()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _project(self, conn: asyncpg.Connection, listener: Listener) -> None:
        cursor, events = await load_checkpoint(conn)
        await refuse_a_log_from_another_cluster(conn)
        _, checkpoint, following = await ids_ahead(conn)
        if checkpoint >= following:
            # Read models and checkpoint restored from another cluster with a log since
            # renumbered: every event now sorts below the checkpoint and would never be
            # read. The read side is a pure function of the log: replay it.
            log.warning("projector_replaying_from_start",
                        reason="the checkpoint's transaction id is ahead of this cluster's "
                               "(restored from another cluster)",
                        checkpoint=checkpoint, next_transaction_id=following)
            await reset_read_models(conn)
            cursor, events = Cursor(), 0
        try:
            projection = await restore(conn, self.store, self.config, cursor)
        except OutdatedState as exc:
            # The read side is a pure function of the log: after an engine upgrade whose
            # saved state this build cannot read, replay from the start, as a rebuild would.
            log.warning("projector_replaying_from_start", reason=str(exc))
            await reset_read_models(conn)
            cursor, events = Cursor(), 0
            projection = await restore(conn, self.store, self.config, cursor)
        self.status.cursor, self.status.events = cursor, events
        async for batch in self.store.follow(cursor, wake=listener.wake,
                                             poll_interval=self.poll_interval,
                                             limit=self.batch_size, linger=self.linger):
            await project_batch(conn, projection, batch, cursor, events, self.fault)
            cursor, events = batch[-1].cursor, events + len(batch)
            self.status.cursor, self.status.events = cursor, events
            self.status.last_batch_at = time.time()
            self.status.last_recorded_at = batch[-1].recorded_at.timestamp()
            async with self.projected:
                self.projected.notify_all()
            if not listener.connected:
                await listener.start()

    async def wait_for(self, position: int, seconds: float = 10.0) -> bool:
        """Until an event at ``position`` or later has been projected (tests, CLI)."""
        async def reached() -> None:
            async with self.projected:
                await self.projected.wait_for(lambda: self.status.cursor.position >= position)

        try:
            await asyncio.wait_for(reached(), seconds)
        except TimeoutError:
            return False
        return True


# The projector of a process that runs one (``serve``'s projector process; tests).
PROJECTOR = web.AppKey("projector", Projector)
