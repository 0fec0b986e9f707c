"""The incident lifecycle from a terminal: ``hindsight declare | ack | note | severity |
correct-start | resolve | merge | publish`` and ``hindsight action add | assign | due |
link | done``.

Each command is one request to the running server's HTTP API (the same routes, bodies
and checks a person or a script uses: ``POST /v1/incidents``, ``/v1/incidents/{id}/
events``, ``/v1/incidents/{id}/action-items``, ``/v1/action-items/{id}/events``),
authenticated with the first ``[api]`` token. The server is found as ``serve`` is
configured: ``--url``, else ``public_url``, else ``http://host:port`` (HINDSIGHT_HOST,
HINDSIGHT_PORT). Times are RFC 3339 with a zone and default to now. What the server
refuses is printed as it answers (a 422 names the field); an unreachable server is one
line naming the URL tried.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hindsight.settings import Settings
from ingest.signals import format_time

TIME_HELP = "RFC 3339 with a zone, e.g. 2025-03-20T09:40:00Z (default: now)"
SEVERITIES = ("P1", "P2", "P3", "P4")


class ServerUnreachable(Exception):
    """No HTTP answer from the URL tried."""


def when(text: str) -> datetime:
    """An RFC 3339 time with a zone (``Z`` or ``+02:00``); a bare date is midnight UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time such as 2025-03-20T09:40:00Z, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no zone: add Z (UTC) or an offset such as +01:00")
    return value


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def server_url(settings: Settings, url: str | None = None) -> str:
    """Where the running server answers: ``url``, else the settings' ``public_url``, else
    ``http://host:port`` as ``serve`` binds it (a wildcard address is reached on
    loopback)."""
    if url:
        return url.rstrip("/")
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in {"0.0.0.0", "", "*"}:  # noqa: S104  # a wildcard bind, reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


async def _post(url: str, token: str, body: dict[str, Any], headers: dict[str, str]
                ) -> Answer:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, http.post(
                url, json=body,
                headers={"Authorization": f"Bearer {token}", **headers}) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = {"error": (await response.text())[:300]}
            return Answer(response.status, data if isinstance(data, dict) else {})
    except (aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
        raise ServerUnreachable(type(exc).__name__) from None


def post(args: argparse.Namespace, settings: Settings, path: str, body: dict[str, Any],
         *, ok: int = 201) -> dict[str, Any] | None:
    """POST ``body`` to the server; the answer's JSON, or None after printing why not."""
    base = server_url(settings, args.url)
    if not settings.api_tokens:
        print("hindsight: no API token configured ([api] tokens in the settings file); "
              "`hindsight serve` generates one on its first start", file=sys.stderr)
        return None
    headers = {}
    if getattr(args, "idempotency_key", None):
        headers["Idempotency-Key"] = args.idempotency_key
    try:
        answer = asyncio.run(_post(base + path, settings.api_tokens[0], body, headers))
    except ServerUnreachable as exc:
        print(f"hindsight: no Hindsight answered at {base} ({exc}): start it with "
              "`hindsight serve`, or pass --url", file=sys.stderr)
        return None
    if answer.status == ok:
        return answer.body
    error = str(answer.body.get("error") or "")
    if answer.status == 401:
        error = f"the API token was refused by {base} (is it in its [api] tokens?)"
    print(f"hindsight: {answer.status} {error}".rstrip(), file=sys.stderr)
    return None


def _event(args: argparse.Namespace, settings: Settings, body: dict[str, Any],
           done: str) -> int:
    answer = post(args, settings, f"/v1/incidents/{args.incident_id}/events", body)
    if answer is None:
        return 1
    print(f"{args.incident_id}: {done}")
    return 0


def _now(value: datetime | None) -> datetime:
    return value or datetime.now(UTC)


# --- incident commands -----------------------------------------------------------------

def cmd_declare(args: argparse.Namespace, settings: Settings) -> int:
    body: dict[str, Any] = {"service": args.service, "title": args.title}
    if args.id:
        body["incident_id"] = args.id
    if args.severity:
        body["severity"] = args.severity
    if args.started_at:
        body["started_at"] = format_time(args.started_at)
    if args.summary:
        body["summary"] = args.summary
    answer = post(args, settings, "/v1/incidents", body)
    if answer is None:
        return 1
    print(answer["incident"])  # only the id: `ID=$(hindsight declare ...)`
    return 0


def cmd_ack(args: argparse.Namespace, settings: Settings) -> int:
    at = _now(args.at)
    return _event(args, settings, {"type": "acknowledge", "at": format_time(at)},
                  f"acknowledged at {format_time(at)}")


def cmd_note(args: argparse.Namespace, settings: Settings) -> int:
    at = _now(args.at)
    return _event(args, settings, {"type": "note", "at": format_time(at), "text": args.text},
                  f"note at {format_time(at)}")


def cmd_severity(args: argparse.Namespace, settings: Settings) -> int:
    return _event(args, settings, {"type": "severity", "severity": args.severity,
                                   "reason": args.reason or ""},
                  f"severity {args.severity}")


def cmd_correct_start(args: argparse.Namespace, settings: Settings) -> int:
    return _event(args, settings, {"type": "impact_start", "started_at": format_time(args.at),
                                   "evidence": args.evidence},
                  f"impact started at {format_time(args.at)}")


def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    at = _now(args.at)
    return _event(args, settings, {"type": "resolve", "resolved_at": format_time(at),
                                   "text": args.text or ""},
                  f"resolved at {format_time(at)}")


def cmd_merge(args: argparse.Namespace, settings: Settings) -> int:
    return _event(args, settings, {"type": "merge", "other_id": args.other_id},
                  f"merged with {args.other_id} (the older id survives)")


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    public = not args.unpublish
    return _event(args, settings, {"type": "public", "public": public},
                  "shown on the status page" if public else "kept off the status page")


# --- action items ----------------------------------------------------------------------

def cmd_action_add(args: argparse.Namespace, settings: Settings) -> int:
    body: dict[str, Any] = {"title": args.title}
    if args.owner:
        body["owner"] = args.owner
    if args.due:
        body["due_date"] = args.due.isoformat()
    if args.ticket:
        body["ticket_url"] = args.ticket
    answer = post(args, settings, f"/v1/incidents/{args.incident_id}/action-items", body)
    if answer is None:
        return 1
    print(answer["item"])  # only the id, for scripts
    return 0


def _item(args: argparse.Namespace, settings: Settings, body: dict[str, Any], done: str
          ) -> int:
    if post(args, settings, f"/v1/action-items/{args.item_id}/events", body) is None:
        return 1
    print(f"{args.item_id}: {done}")
    return 0


def cmd_action_assign(args: argparse.Namespace, settings: Settings) -> int:
    return _item(args, settings, {"type": "assign", "owner": args.owner},
                 f"assigned to {args.owner}")


def cmd_action_due(args: argparse.Namespace, settings: Settings) -> int:
    return _item(args, settings, {"type": "due_date", "due_date": args.due.isoformat()},
                 f"due {args.due.isoformat()}")


def cmd_action_link(args: argparse.Namespace, settings: Settings) -> int:
    return _item(args, settings, {"type": "ticket", "url": args.ticket_url},
                 f"linked to {args.ticket_url}")


def cmd_action_done(args: argparse.Namespace, settings: Settings) -> int:
    at = _now(args.at)
    return _item(args, settings, {"type": "complete", "completed_at": format_time(at)},
                 f"done at {format_time(at)}")


# --- the parser --------------------------------------------------------------------------

def _common(parser: argparse.ArgumentParser, *, idempotent: bool = True) -> None:
    parser.add_argument("--url", metavar="URL",
                        help="the running Hindsight (default: the settings' public_url, "
                             "else http://HOST:PORT as `serve` binds them; "
                             "HINDSIGHT_HOST, HINDSIGHT_PORT)")
    if idempotent:
        parser.add_argument("--idempotency-key", metavar="KEY",
                            help="sent as Idempotency-Key: running the command again with "
                                 "the same key stores nothing twice")


def _incident(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("incident_id", metavar="INCIDENT_ID",
                        help="the incident's id (as `hindsight incidents` lists it)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The lifecycle commands (docs/lifecycle.md walks through them)."""
    declare = sub.add_parser(
        "declare", help="open an incident by hand (one no monitor saw); prints its id",
        description="Declare an incident a person noticed (e.g. users reported it). "
                    "It is detected by a human at the moment of the declaration.")
    declare.add_argument("--service", required=True,
                         help="the service users experience as one thing")
    declare.add_argument("--title", required=True, help="one line: what is wrong")
    declare.add_argument("--severity", choices=SEVERITIES,
                         help="P1 (highest) to P4 (default: the highest its signals carry, "
                              "else P3)")
    declare.add_argument("--started-at", type=when, metavar="TIME",
                         help="when impact began, RFC 3339 with a zone (default: now, "
                              "the declaration)")
    declare.add_argument("--summary", help="what was reported, in a few sentences")
    declare.add_argument("--id", help="your own incident id (default: the server picks "
                                      "inc_ and 16 hex digits)")
    _common(declare)
    declare.set_defaults(func=cmd_declare)

    ack = sub.add_parser("ack", help="acknowledge: someone has taken the incident on")
    _incident(ack)
    ack.add_argument("--at", type=when, metavar="TIME", help=TIME_HELP)
    _common(ack)
    ack.set_defaults(func=cmd_ack)

    note = sub.add_parser("note", help="add a key action to the timeline, at its own time")
    _incident(note)
    note.add_argument("text", metavar="TEXT", help="what was done or seen")
    note.add_argument("--at", type=when, metavar="TIME",
                      help="when it happened, not when written down; " + TIME_HELP)
    _common(note)
    note.set_defaults(func=cmd_note)

    severity = sub.add_parser("severity", help="set the severity (wins over the signals)")
    _incident(severity)
    severity.add_argument("severity", choices=SEVERITIES, metavar="SEVERITY",
                          help="P1 (highest) to P4")
    severity.add_argument("--reason", help="why, for the timeline")
    _common(severity)
    severity.set_defaults(func=cmd_severity)

    correct = sub.add_parser(
        "correct-start", help="correct when impact began, with the evidence",
        description="Move the incident's start (and so its detection latency) to when "
                    "impact really began, e.g. the first error in the logs.")
    _incident(correct)
    correct.add_argument("--at", type=when, metavar="TIME", required=True,
                         help="when impact began, RFC 3339 with a zone")
    correct.add_argument("--evidence", required=True,
                         help="how we know (e.g. 'first 5xx in the load balancer logs')")
    _common(correct)
    correct.set_defaults(func=cmd_correct_start)

    resolve = sub.add_parser("resolve", help="resolve by hand (wins over signals still "
                                             "failing, until a later failure)")
    _incident(resolve)
    resolve.add_argument("--at", type=when, metavar="TIME",
                         help="when impact ended; " + TIME_HELP)
    resolve.add_argument("--text", help="how it ended, for the timeline")
    _common(resolve)
    resolve.set_defaults(func=cmd_resolve)

    merge = sub.add_parser("merge", help="merge two incidents that are one (the older id "
                                         "survives, whichever is named first)")
    _incident(merge)
    merge.add_argument("other_id", metavar="OTHER_ID", help="the other incident's id")
    _common(merge)
    merge.set_defaults(func=cmd_merge)

    publish = sub.add_parser("publish", help="list the incident on the public status page "
                                             "(users saw it)")
    _incident(publish)
    publish.add_argument("--unpublish", action="store_true",
                         help="keep it off the status page instead")
    _common(publish)
    publish.set_defaults(func=cmd_publish)

    action = sub.add_parser("action", help="action items: add, assign, due, link, done",
                            description="Follow-up work of an incident: specific, "
                                        "assigned, time-bounded.")
    verbs = action.add_subparsers(dest="action", required=True, metavar="VERB")

    add = verbs.add_parser("add", help="add an action item to an incident; prints its id")
    _incident(add)
    add.add_argument("title", metavar="TITLE",
                     help="specific and verifiable: what will be done")
    add.add_argument("--owner", help="a role or team")
    add.add_argument("--due", type=day, metavar="YYYY-MM-DD", help="the due date")
    add.add_argument("--ticket", metavar="URL", help="the tracker's http(s) URL")
    _common(add, idempotent=False)
    add.set_defaults(func=cmd_action_add)

    def item(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("item_id", metavar="ITEM_ID",
                            help="the action item's id (ai_…, as `action add` printed it)")

    assign = verbs.add_parser("assign", help="give the item an owner")
    item(assign)
    assign.add_argument("owner", metavar="OWNER", help="a role or team")
    _common(assign, idempotent=False)
    assign.set_defaults(func=cmd_action_assign)

    due = verbs.add_parser("due", help="set the item's due date")
    item(due)
    due.add_argument("due", type=day, metavar="YYYY-MM-DD", help="the due date")
    _common(due, idempotent=False)
    due.set_defaults(func=cmd_action_due)

    link = verbs.add_parser("link", help="link the item's ticket")
    item(link)
    link.add_argument("ticket_url", metavar="URL", help="the tracker's http(s) URL")
    _common(link, idempotent=False)
    link.set_defaults(func=cmd_action_link)

    done = verbs.add_parser("done", help="mark the item done")
    item(done)
    done.add_argument("--at", type=when, metavar="TIME",
                      help="when it was done; " + TIME_HELP)
    _common(done, idempotent=False)
    done.set_defaults(func=cmd_action_done)
