"""The ``hindsight`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from hindsight.settings import (
    SIGNED_SOURCES,
    Settings,
    SettingsError,
    generate_credentials,
    has_credentials,
    load_settings,
)

# HTTP server limits (aiohttp's request parser): a request line or one header over 8 KiB,
# or more than 100 headers, is refused with 400 before any handler runs.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
KEEPALIVE_TIMEOUT = 75.0  # an idle keep-alive connection is closed after this


def _print_webhooks(settings: Settings, out: Any = None, *, reveal: bool = True) -> None:
    """The webhook URLs; their secrets only when ``reveal``: stdout usually ends up in a
    log (journal, container logs), where secrets must not."""
    out = out or sys.stdout

    def shown(value: str) -> str:
        return value if reveal else "<configured>"

    print("Webhook URLs (paste into each tool):", file=out)
    for name, conf in settings.sources.items():
        url = settings.webhook_url(name)
        if name in SIGNED_SOURCES or (conf.secret and not conf.token):
            secret = shown(conf.secret.get_secret_value()) if conf.secret else "(not set)"
            print(f"  {name:<13} {url}\n  {'':<13} secret: {secret}", file=out)
        else:
            token = shown(conf.token.get_secret_value()) if conf.token else "(not set)"
            print(f"  {name:<13} {url}?token={token}\n"
                  f"  {'':<13} or header  Authorization: Bearer {token}", file=out)
    if settings.api.tokens:
        print(f"API token (read API, dashboard): {shown(settings.api_tokens[0])}", file=out)
    if not reveal and settings.config_path is not None:
        print(f"(secrets are in {settings.config_path})", file=out)


def announce_webhooks(settings: Settings, *, generated: bool, out: Any = None) -> None:
    """What ``serve`` prints at start. Secrets it has just generated are shown only to a
    person at a terminal: a container's or a service manager's stdout is a log, kept and
    shipped where secrets must not go."""
    out = out or sys.stdout
    reveal = generated and out.isatty()
    _print_webhooks(settings, out, reveal=reveal)
    if generated and not reveal:
        print("(stdout is not a terminal, so the new secrets are not printed: "
              "`hindsight sources --show-secrets` shows them)", file=out)


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    if not has_credentials(settings):
        print("no sources are configured yet: `hindsight serve` generates credentials on "
              "its first start", file=sys.stderr)
        return 1
    _print_webhooks(settings, reveal=args.show_secrets)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from hindsight.app import create_app
    from hindsight.logs import configure

    generated = False
    if not has_credentials(settings):
        settings, path = generate_credentials(settings)
        settings = settings.model_copy(update={"host": args.host or settings.host,
                                               "port": args.port or settings.port})
        print(f"No configuration found: generated credentials in {path} (mode 0600).")
        generated = True
    announce_webhooks(settings, generated=generated)
    print(f"Serving on http://{settings.host}:{settings.port}  (readiness: /readyz)", flush=True)
    configure(settings.log_level)
    # access_log=None: aiohttp's access log would write each request line, query tokens
    # included; requests are logged by our middleware, without the query.
    app = create_app(settings, projector=not args.no_projector)
    web.run_app(app, host=settings.host, port=settings.port,
                print=None, access_log=None, shutdown_timeout=10,
                keepalive_timeout=KEEPALIVE_TIMEOUT, max_line_size=MAX_LINE_SIZE,
                max_field_size=MAX_FIELD_SIZE, max_headers=MAX_HEADERS)
    return 0


async def _with_admin_connection(
    settings: Settings, work: Callable[[Any], Coroutine[Any, Any, int]]
) -> int:
    from hindsight.database import configured_database, connect

    async with configured_database(settings) as url:
        conn = await connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()


def cmd_migrate(_: argparse.Namespace, settings: Settings) -> int:
    from hindsight.migrations import migrate

    async def work(conn: Any) -> int:
        applied = await migrate(conn)
        print("applied: " + ", ".join(applied) if applied else "nothing to apply: up to date")
        return 0

    return asyncio.run(_with_admin_connection(settings, work))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hindsight", description=__doc__)
    parser.add_argument("--config", help="TOML settings file (default ./hindsight.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, project and serve HTTP in one process")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-projector", action="store_true",
                       help="ingest and read only; another process projects (scaling out: "
                            "ingest replicas beside one projecting process)")
    serve.set_defaults(func=cmd_serve)

    sources = sub.add_parser("sources", help="each enabled source's webhook URL and how it "
                                             "authenticates")
    sources.add_argument("--show-secrets", action="store_true",
                         help="print the tokens and secrets too (they are hidden by default: "
                              "terminals get recorded and shared)")
    sources.set_defaults(func=cmd_sources)

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.set_defaults(func=cmd_migrate)

    from hindsight import commands

    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    try:
        settings = load_settings(args.config, **overrides)
    except SettingsError as exc:
        print(f"hindsight: bad setting: {exc}", file=sys.stderr)
        return 2
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    return func(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())



