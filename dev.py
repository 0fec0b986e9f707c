#!/usr/bin/env python3
"""Bootstrap: needs only Python 3.11+. Creates .venv, installs Hindsight into it (again
only when pyproject.toml changed), then runs a command inside it.

    python3 dev.py serve            # the service on its embedded defaults
    python3 dev.py test [ARGS]      # lint, types, then the whole test suite
    python3 dev.py hindsight ARGS   # any hindsight command
    python3 dev.py bench NAME       # python bench/NAME.py
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 -- this file runs before any check could
        sys.exit("Hindsight needs Python 3.11 or newer")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing Hindsight and its test tools into .venv …", flush=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "-qq",  # noqa: S603
                    "--disable-pip-version-check", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def run(*cmd: str) -> int:
    """Run ``cmd`` and return its exit status. SIGTERM and SIGINT sent to this process are
    passed on to the child, which shuts down in its own way (``hindsight serve`` stops
    its embedded PostgreSQL), and this process waits for it and exits quietly: a service
    manager's stop or a Ctrl-C leaves nothing running and prints no traceback."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    # Commands are this file's own, never user input.
    child = subprocess.Popen(cmd, cwd=ROOT, env=env)  # noqa: S603

    def forward(signum: int, _frame: object) -> None:
        # Ctrl-C in a terminal reaches the whole process group, the child included;
        # sending it again is harmless. A signal sent to this process alone (kill PID,
        # systemd with KillMode=process) reaches the child only through here.
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # pragma: no cover - the handler above replaces it
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    ensure_env()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return run(str(BIN / "hindsight"), "serve", *rest)
    if command == "test":
        for step in ((str(BIN / "ruff"), "check", "."),
                     (str(BIN / "mypy"),)):
            code = run(*step)
            if code:
                return code
        return run(str(BIN / "python"), "-m", "pytest", "-n", "2", *rest)
    if command == "hindsight":
        return run(str(BIN / "hindsight"), *rest)
    if command == "bench":
        return run(str(BIN / "python"), str(ROOT / "bench" / f"{rest[0]}.py"), *rest[1:])
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C while .venv is being prepared
        code = 130
    # A child ended by a signal reports -N; exit as a shell reports it (128 + N).
    raise SystemExit(128 - code if code < 0 else code)
