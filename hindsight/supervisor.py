"""``hindsight serve`` as a family of processes: one supervisor, one projector, N HTTP workers.

The projector renders and encodes batches of up to 1,000 events; sharing an event loop
with HTTP, that froze request handling for up to a second (issue 11). So:

- the **supervisor** (this module, the process ``serve`` starts as) starts the embedded
  PostgreSQL once when no ``database_url`` is configured, forks the children, restarts
  any that dies (after a pause that doubles while they keep dying young), and on SIGTERM
  or SIGINT asks each to stop (SIGTERM), waits up to the shutdown timeout, kills what is
  left, then stops PostgreSQL. It serves nothing itself;
- the **projector** process runs the projector and the notifier (both act only while it
  holds the projector's advisory lock: a second ``serve`` on the same database waits);
- **HTTP workers** each bind the same port with ``SO_REUSEPORT`` (the kernel spreads
  connections over them) and ingest and read, with no projector (``--no-projector``).

Children die with the supervisor, even when it is SIGKILLed: ``PR_SET_PDEATHSIG`` on
Linux, else a pipe whose write end only the supervisor holds. A worker left behind would
keep the port and the projector lock of a dead ``serve``.

Metrics: every process writes its samples to a shared directory (prometheus_client's
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary directory per
``serve``); any worker's ``/metrics`` shows the sums over all processes (counters and
histograms), the projector's leadership and the latest database-derived gauges.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("hindsight.supervisor")
T = TypeVar("T")

SHUTDOWN_TIMEOUT = 10.0  # seconds a child has to stop after SIGTERM; then SIGKILL
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 30.0  # before restarting a child that died
YOUNG = 10.0  # a child that dies within this many seconds of its start died young
EXIT_FATAL = 3  # a child that cannot start at all (port taken, bad settings): give up
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    role: str                       # "projector" or "http"
    index: int
    target: Callable[[], None]
    process: BaseProcess | None = None
    started: float = 0.0
    pause: float = FIRST_PAUSE
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return self.role if self.role == "projector" else f"http-{self.index}"


@dataclass
class Supervisor:
    children: list[Child]
    shutdown_timeout: float = SHUTDOWN_TIMEOUT
    stopping: bool = False
    fatal: bool = False
    _lifeline: tuple[int, int] = field(default_factory=os.pipe)

    def run(self) -> int:
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                self._start(child)
            while not self.stopping:
                self._watch()
        finally:
            self._stop_children()
            for s, handler in previous.items():
                signal.signal(s, handler)
            for fd in self._lifeline:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return 1 if self.fatal else 0

    def _stop(self, signum: int, _: Any) -> None:
        self.stopping = True

    def _start(self, child: Child) -> None:
        context = multiprocessing.get_context("fork")
        process = context.Process(target=self._child_main, args=(child,),
                                  name=f"hindsight-{child.name}", daemon=False)
        process.start()
        child.process, child.started, child.restart_at = process, time.monotonic(), None
        log.info("child_started", child=child.name, pid=process.pid)

    def _child_main(self, child: Child) -> None:
        # In the child: die with the supervisor; the supervisor's handlers are not ours.
        os.close(self._lifeline[1])
        die_with_parent(os.getppid(), self._lifeline[0])
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)
        # Ctrl-C reaches the whole process group: the supervisor alone decides, and
        # passes it on as SIGTERM (one signal each, never two).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        child.target()

    def _watch(self) -> None:
        now = time.monotonic()
        due = [c.restart_at for c in self.children if c.restart_at is not None]
        timeout = max(0.0, min(due) - now) if due else 1.0
        sentinels = {c.process.sentinel: c for c in self.children
                     if c.process is not None and c.restart_at is None}
        try:
            ready = wait(list(sentinels), timeout=min(timeout, 1.0))
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            ready = []
        if self.stopping:
            return
        for sentinel in ready:
            child = sentinels[sentinel]  # type: ignore[index]
            assert child.process is not None
            child.process.join()
            code = child.process.exitcode
            mark_dead(child.process.pid)
            if code == EXIT_FATAL:
                log.error("child_cannot_start", child=child.name, exit_code=code)
                self.fatal = self.stopping = True
                return
            young = time.monotonic() - child.started < YOUNG
            child.pause = min(child.pause * 2, LONGEST_PAUSE) if young else FIRST_PAUSE
            child.restart_at = time.monotonic() + child.pause
            log.warning("child_died", child=child.name, exit_code=code,
                        restart_in_seconds=child.pause)
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None and child.restart_at <= now:
                self._start(child)

    def _stop_children(self) -> None:
        live = [c.process for c in self.children if c.process is not None and c.process.is_alive()]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + self.shutdown_timeout + 2.0
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("child_killed", pid=process.pid, reason="shutdown timeout")
                process.kill()
                process.join()
            mark_dead(process.pid)


def die_with_parent(parent: int, lifeline: int) -> None:
    """Make this process die when ``parent`` does (SIGKILLed ones included)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            os.close(lifeline)
            if os.getppid() != parent:  # it died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:  # EOF once the supervisor, the write end's only holder, is gone
        with contextlib.suppress(OSError):
            os.read(lifeline, 1)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def mark_dead(pid: int | None) -> None:
    """Drop a dead process's live gauges from the shared metrics (counters stay)."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def shared_metrics() -> Any:
    """A fresh directory for the processes' metrics, removed at the end."""
    directory = tempfile.mkdtemp(prefix="hindsight-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    use_shared_metrics()
    try:
        yield directory
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)


def use_shared_metrics() -> None:
    """prometheus_client picks its value class when first imported: pick again now that
    ``PROMETHEUS_MULTIPROC_DIR`` is set (metrics made from here on write to it)."""
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def serve(settings: Any, *, workers: int, database_url: str | None,
          server_options: dict[str, Any], projector: bool = True) -> int:
    """Run ``serve``: the database once, the projector and ``workers`` HTTP workers."""
    import hindsight.app  # noqa: F401  loaded once here, shared by the forked children
    from hindsight.embedded import EmbeddedPostgres

    embedded: EmbeddedPostgres | None = None
    if database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
        database_url = embedded.start()
    url: str = database_url
    try:
        with shared_metrics():
            children = [Child("projector", 0, lambda: projector_process(settings, url))
                        ] if projector else []
            children += [Child("http", i, lambda: http_worker(settings, url, server_options))
                         for i in range(workers)]
            return Supervisor(children).run()
    finally:
        if embedded is not None:
            embedded.stop()


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop's event loop when uvloop is installed (a
    dependency on Linux and macOS), else on asyncio's own. Measured under ``wrk``
    (issue 11, three interleaved rounds): HTTP workers 1,019-1,470 -> 876-935 µs of CPU
    per delivery, the projector 369-409 -> 281-316, deliveries/s 368-553 -> 639-682."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop has no Windows build
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def http_worker(settings: Any, database_url: str, options: dict[str, Any]) -> None:
    """One HTTP worker: ingest and read, no projector, on the shared port."""
    from hindsight.app import create_app

    app = create_app(settings, database_url=database_url, projector=False)
    sys.exit(run_loop(_serve_http(app, settings.host, settings.port, options)))


async def _serve_http(app: Any, host: str, port: int, options: dict[str, Any]) -> int:
    import errno

    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           **options)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=True)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.error("port_busy", host=host, port=port)
            return EXIT_FATAL
        await terminated()
    finally:
        await runner.cleanup()
    return 0


def projector_process(settings: Any, database_url: str) -> None:
    """The projector and the notifier, with no HTTP."""
    from hindsight.app import create_app

    app = create_app(settings, database_url=database_url, projector=True, http=False)
    run_loop(_run_background(app))


async def _run_background(app: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # runs the cleanup contexts' starts: the projector begins
    try:
        await terminated()
    finally:
        await runner.cleanup()


async def terminated() -> None:
    """Until SIGTERM (the supervisor's request to stop)."""
    import asyncio

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
