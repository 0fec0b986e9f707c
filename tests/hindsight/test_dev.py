"""``dev.py``: it passes SIGTERM and SIGINT on to the command it runs and exits quietly,
leaving nothing running (issue 13: `dev.py serve` left hindsight and PostgreSQL running
after SIGTERM and printed a traceback on Ctrl-C)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAMP = ROOT / ".venv" / ".installed"

pytestmark = pytest.mark.skipif(
    not STAMP.is_file() or STAMP.read_text() != hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes()).hexdigest(),
    reason="dev.py would install .venv first")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """dev.py running a long-lived command (demo waiting for a server that never comes),
    in its own session so that signals reach only the processes we name."""
    config = tmp_path / "hindsight.toml"
    config.write_text('[api]\ntokens = ["dev-test-token-0123456789abcdef0123"]\n')
    dev = subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "dev.py"), "hindsight", "--config", str(config), "demo",
         "--url", f"http://127.0.0.1:{_free_port()}", "--wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "HINDSIGHT_DATA_DIR": str(tmp_path / "data")})
    deadline = time.monotonic() + 30
    while not _children(dev.pid):
        assert time.monotonic() < deadline, "dev.py started no command"
        time.sleep(0.1)
    [child] = _children(dev.pid)
    time.sleep(2.0)  # let the command get going (imports, its event loop)
    return dev, child


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 128 + signal.SIGTERM),
                                                (signal.SIGINT, 130)])
def test_a_signal_to_dev_py_ends_its_command_and_nothing_is_left_running(
        tmp_path: Path, signum: int, status: int) -> None:
    dev, child = _start(tmp_path)
    os.kill(dev.pid, signum)  # to dev.py alone, as a service manager or `kill` sends it
    _, err = dev.communicate(timeout=30)
    assert dev.returncode == status
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the command outlived dev.py"
        time.sleep(0.1)
