"""`hindsight serve` without the projector, for `bench/ingest.py --no-projector`: the
same settings, logging and application, with ``create_app(settings, projector=False)``,
to tell the ingest path's cost from the projector's (which shares serve's event loop)."""

from __future__ import annotations

import argparse

import _common  # noqa: F401  (puts the repository root first on sys.path)
from aiohttp import web

from hindsight.app import create_app
from hindsight.logs import configure
from hindsight.settings import load_settings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    settings = load_settings(args.config, host=args.host, port=args.port)
    configure(settings.log_level)
    web.run_app(create_app(settings, projector=False), host=args.host, port=args.port,
                print=None, access_log=None, shutdown_timeout=10)


if __name__ == "__main__":
    main()
