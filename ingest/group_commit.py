"""Group commit: concurrent deliveries share one transaction.

Each caller awaits its own event's commit; the committer gathers what arrives within a
few milliseconds of the first waiting event (or until a batch is full) and appends it in
one transaction, so a commit's fixed cost (WAL flush, round trips) is paid once per batch
and throughput grows with load. Several batches may be in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from ingest.errors import StoreUnavailable
from ingest.store import Appended, EventStore, NewEvent


@dataclass
class _Pending:
    event: NewEvent
    future: asyncio.Future[Appended]


MAX_IN_FLIGHT = 4  # batches committing at once


class GroupCommitter:
    def __init__(
        self,
        store: EventStore,
        *,
        max_wait: float = 0.002,
        max_batch: int = 256,
        max_in_flight: int = MAX_IN_FLIGHT,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.max_wait = max_wait
        self.max_batch = max_batch
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(StoreUnavailable("the server is shutting down"))

    async def append(self, event: NewEvent) -> Appended:
        """Append one event; returns once the transaction holding it has committed."""
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(event, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch = [first]
            await self._slots.acquire()
            # While a slot was busy, more arrived: take them. Wait out the window only
            # while another commit is in flight; with the pipe idle, commit at once (the
            # next batch forms by itself while this one commits).
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                if not self._flushes:
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            live = [p for p in batch if not p.future.cancelled()]
            if not live:
                return
            try:
                results = await self.store.append_independent([p.event for p in live])
            except Exception as exc:  # every waiter must hear about it, whatever it is
                for pending in live:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                return
            if self.on_batch is not None:
                self.on_batch(len(live))
            for pending, result in zip(live, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)
        finally:
            self._slots.release()
