"""Hindsight: incident timelines, detection latency and postmortem drafts from your
monitoring tools' webhooks.

Start with `hindsight serve` (it creates its settings and database on the first start),
then `hindsight demo` for a realistic week of data. Every command reads the same
settings: --config or HINDSIGHT_CONFIG, HINDSIGHT_* variables over the file."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from hindsight.settings import (
    SECRET_FROM_TOOL,
    SECRET_SHOWN_BY,
    SIGNED_SOURCES,
    Settings,
    SettingsError,
    generate_credentials,
    has_credentials,
    load_settings,
)
from hindsight.sources_info import SourceDeliveries, delivery_counts_on, guide_path
from ingest.signals import format_time
from ingest.sources import SOURCES

# HTTP server limits (aiohttp's request parser): a request line or one header over 8 KiB,
# or more than 100 headers, is refused with 400 before any handler runs.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
KEEPALIVE_TIMEOUT = 75.0  # an idle keep-alive connection is closed after this


# What each enabled source's credential is, as the operator handles it. PagerDuty's is the
# other way round from the rest: PagerDuty generates the signing secret and the operator
# pastes it into Hindsight (settings.SECRET_FROM_TOOL).
_SECRET_WORDS = {"pagerduty": "signing secret (PagerDuty's)",
                 "native": "secret (sign with it)",
                 "vercel": "signing secret (Vercel's)",
                 "checkly": "webhook secret (paste into Checkly)",
                 "sentry": "client secret (Sentry's)"}


def _describe_deliveries(found: SourceDeliveries | None) -> str:
    if found is None:
        return "none yet"
    names = found.ordered_outcomes()
    counts = ", ".join(f"{found.outcomes[o]} {o}" for o in names)
    return f"last {format_time(found.last_received_at)}; {counts}"


def _print_webhooks(settings: Settings, out: Any = None, *, reveal: bool = True,
                    deliveries: Mapping[str, SourceDeliveries] | None = None) -> None:
    """The webhook URLs and each source's guide; their secrets only when ``reveal``:
    stdout usually ends up in a log (journal, container logs), where secrets must not.
    With ``deliveries``, each enabled source's last delivery and counts by outcome."""
    out = out or sys.stdout
    pad = " " * 16  # under the URL column

    def shown(value: str) -> str:
        return value if reveal else "<configured>"

    print("Webhook URLs (paste into each tool):", file=out)
    for name, conf in settings.sources.items():
        url = settings.webhook_url(name)
        if name in SIGNED_SOURCES or (conf.secret and not conf.token):
            secret = shown(conf.secret.get_secret_value()) if conf.secret else "(not set)"
            words = _SECRET_WORDS.get(name, "secret")
            print(f"  {name:<13} {url}\n{pad}{words}: {secret}", file=out)
        else:
            token = shown(conf.token.get_secret_value()) if conf.token else "(not set)"
            print(f"  {name:<13} {url}?token={token}\n"
                  f"{pad}or header  Authorization: Bearer {token}", file=out)
            if conf.secret:  # Grafana: its HMAC signature, beside the token
                print(f"{pad}or signed with secret: {shown(conf.secret.get_secret_value())}",
                      file=out)
        print(f"{pad}guide: {guide_path(name)}", file=out)
        if deliveries is not None:
            print(f"{pad}deliveries: {_describe_deliveries(deliveries.get(name))}", file=out)
    disabled = [name for name in SOURCES if name not in settings.sources]
    if disabled:
        print("Not enabled (add its [sources.NAME] table, or HINDSIGHT_SOURCES__NAME__…):",
              file=out)
        for name in disabled:
            if name in SECRET_FROM_TOOL:
                # The tool generates the signing secret: Hindsight must not invent one.
                tool = SECRET_SHOWN_BY.get(name, name)
                variable = f"HINDSIGHT_SOURCES__{name.upper().replace('-', '_')}__SECRET"
                print(f"  {name:<13} paste {tool}'s signing secret (shown when you add "
                      f"the webhook) as {variable}\n{pad}or "
                      f"[sources.{name}] secret; guide: {guide_path(name)}", file=out)
            else:
                print(f"  {name:<13} guide: {guide_path(name)}", file=out)
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


async def delivery_counts(url: str) -> dict[str, SourceDeliveries]:
    """Per source, the last receipt and the deliveries by outcome, from the delivery log
    (a read model: it lags the event log by the projector's delay). A copy of a stored
    delivery (a retry) counts as ``duplicate``."""
    from hindsight.database import connect

    conn = await connect(url)
    try:
        return await delivery_counts_on(conn)
    finally:
        await conn.close()


def read_delivery_counts(settings: Settings) -> tuple[dict[str, SourceDeliveries] | None, str]:
    """The delivery counts when the database is reachable, else None and why not. The
    embedded PostgreSQL is joined (or started briefly) only when it already exists: a
    listing must not create a database."""
    from hindsight.database import configured_database

    if settings.database_url is None and not (
            settings.data_dir / "pgdata" / "PG_VERSION").is_file():
        return None, "no database yet: `hindsight serve` creates it"

    async def read() -> dict[str, SourceDeliveries]:
        async with configured_database(settings) as url:
            return await delivery_counts(url)

    try:
        return asyncio.run(read()), ""
    except Exception as exc:  # any failure only costs the counts, never the listing
        import asyncpg

        if isinstance(exc, asyncpg.UndefinedTableError):
            return None, "the database is not migrated yet (`hindsight migrate`)"
        return None, f"the database is not reachable ({type(exc).__name__})"


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    if not has_credentials(settings):
        print("no sources are configured yet: `hindsight serve` generates credentials on "
              "its first start", file=sys.stderr)
        return 1
    deliveries, why_not = (None, "") if args.no_deliveries else read_delivery_counts(settings)
    _print_webhooks(settings, reveal=args.show_secrets, deliveries=deliveries)
    if why_not:
        print(f"(delivery counts not shown: {why_not})")
    return 0


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--host`` and ``--port``: where ``serve`` listens, and where every command that
    talks to a running server (``demo``) finds it. Same settings, same defaults."""
    parser.add_argument("--host", help="the address served on (default: HINDSIGHT_HOST, "
                                       "else the settings file's host, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="the port served on (default: "
                                                 "HINDSIGHT_PORT, else the settings file's "
                                                 "port, else 8080)")


def server_url(settings: Settings) -> str:
    """The base URL of the server these settings describe: ``serve``'s host and port,
    with a wildcard address (0.0.0.0, ::) reached over loopback."""
    host = settings.host if settings.host not in {"0.0.0.0", "::", ""} else "127.0.0.1"  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


class PortBusy(Exception):
    pass


def check_port(host: str, port: int) -> None:
    """Raise ``PortBusy`` when something already listens on ``host:port``, before the
    server starts its database: a busy port then costs one line, not a traceback."""
    if port == 0:
        return
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # aiohttp reports an unknown host itself
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            # As aiohttp binds: SO_REUSEADDR, so a closed connection in TIME_WAIT is no
            # conflict; a listening socket still is.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortBusy(port) from None


def busy_port_message(settings: Settings) -> str:
    return (f"hindsight: port {settings.port} on {settings.host} is already in use: stop "
            f"what listens there, or choose another port with --port or HINDSIGHT_PORT")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hindsight.logs import configure

    try:
        check_port(settings.host, settings.port)
    except PortBusy:
        print(busy_port_message(settings), file=sys.stderr)
        return 1
    generated = False
    if not has_credentials(settings):
        settings, path = generate_credentials(settings)
        settings = settings.model_copy(update={"host": args.host or settings.host,
                                               "port": args.port or settings.port})
        print(f"No configuration found: generated credentials in {path} (mode 0600).")
        generated = True
    if settings.port == 0 and not (args.no_projector and args.workers == 1):
        # every worker must bind the same port: choose it now
        settings = settings.model_copy(update={"port": free_port(settings.host)})
    announce_webhooks(settings, generated=generated)
    print(f"Serving on http://{settings.host}:{settings.port}  (readiness: /readyz)", flush=True)
    configure(settings.log_level)
    options = {"access_log": None,  # aiohttp's would log query tokens; our middleware does not
               "keepalive_timeout": KEEPALIVE_TIMEOUT, "max_line_size": MAX_LINE_SIZE,
               "max_field_size": MAX_FIELD_SIZE, "max_headers": MAX_HEADERS}
    if args.no_projector and args.workers == 1:  # one ingest replica, as before: no children
        return serve_one(settings, options)
    from hindsight.supervisor import serve

    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    workers = args.workers or os.cpu_count() or 1
    return serve(settings, workers=workers, database_url=database_url,
                 server_options=options, projector=not args.no_projector)


def serve_one(settings: Settings, options: dict[str, Any]) -> int:
    from aiohttp import web

    from hindsight.app import create_app

    app = create_app(settings, projector=False)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None,
                    shutdown_timeout=10, **options)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:  # taken between the check and the bind
            raise
        print(busy_port_message(settings), file=sys.stderr)
        return 1
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


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
    parser = argparse.ArgumentParser(
        prog="hindsight", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE",
                        help="TOML settings file (default: HINDSIGHT_CONFIG, else "
                             "./hindsight.toml, else hindsight.toml in the data directory "
                             "(HINDSIGHT_DATA_DIR, default .hindsight), as serve generates "
                             "it); HINDSIGHT_* variables override what it says")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands (`hindsight COMMAND --help` for each)")

    serve = sub.add_parser("serve", help="migrate, then serve HTTP from --workers processes "
                                         "beside one projector process (supervised)")
    add_server_options(serve)
    serve.add_argument("--workers", type=positive_int, metavar="N",
                       help="HTTP worker processes sharing the port (SO_REUSEPORT); default: "
                            "the number of CPU cores")
    serve.add_argument("--no-projector", action="store_true",
                       help="ingest and read only; another serve projects (scaling out: "
                            "ingest replicas beside one projecting serve)")
    serve.set_defaults(func=cmd_serve)

    sources = sub.add_parser("sources", help="each enabled source's webhook URL, how it "
                                             "authenticates, its setup guide "
                                             "(docs/sources/) and its deliveries so far")
    sources.add_argument("--show-secrets", action="store_true",
                         help="print the tokens and secrets too (they are hidden by default: "
                              "terminals get recorded and shared)")
    sources.add_argument("--no-deliveries", action="store_true",
                         help="do not read the database for each source's last delivery "
                              "and counts by outcome")
    sources.set_defaults(func=cmd_sources)

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.set_defaults(func=cmd_migrate)

    from hindsight import commands

    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; Ctrl-C ends it quietly (exit status 130, as a shell reports SIGINT)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _main(argv: list[str] | None = None) -> int:
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



