"""``hindsight draft`` and ``hindsight review``: the postmortem draft and the weekly
action-item review in a terminal, read from the configured database's read models.

Both print exactly what the HTTP API answers (the same ``build_draft`` and
``weekly_review``), so a draft saved with ``--out`` is the draft the server shows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from hindsight.settings import Settings
from projections import action_items as items


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    draft = sub.add_parser("draft", help="print or write an incident's postmortem draft")
    draft.add_argument("incident_id", metavar="INCIDENT_ID")
    draft.add_argument("--format", choices=("md", "json"), default="md")
    draft.add_argument("--out", type=Path, help="write to FILE instead of printing")
    draft.add_argument("--draft-date", type=_date, metavar="YYYY-MM-DD",
                       help="the date due dates count from (default: the resolution date)")
    draft.set_defaults(func=cmd_draft)

    review = sub.add_parser("review", help="the weekly action-item review")
    review.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                        help="the review's date (default: today, UTC)")
    review.add_argument("--format", choices=("text", "json"), default="text")
    review.set_defaults(func=cmd_review)


def _run(settings: Settings, work: Any) -> int:
    from hindsight.cli import _with_admin_connection

    result: int = asyncio.run(_with_admin_connection(settings, work))
    return result


def cmd_draft(args: argparse.Namespace, settings: Settings) -> int:
    from projections.codec import incident_from_json
    from projections.draft import build_draft

    async def work(conn: Any) -> int:
        raw = await conn.fetchval("SELECT doc::text FROM incidents WHERE id = $1",
                                  args.incident_id)
        if raw is None:
            print(f"hindsight: no incident {args.incident_id!r}", file=sys.stderr)
            return 1
        doc = orjson.loads(raw)
        if doc.get("merged_into"):
            print(f"hindsight: incident {args.incident_id!r} was merged into "
                  f"{doc['merged_into']!r}; draft that one", file=sys.stderr)
            return 1
        rows = await conn.fetch("SELECT doc::text FROM action_items WHERE incident_id = $1 "
                                "ORDER BY created_at, id", args.incident_id)
        recorded = [items.item_from_json(orjson.loads(r["doc"])) for r in rows]
        draft = build_draft(incident_from_json(doc), recorded, args.draft_date,
                            settings.status.public_services)
        if args.format == "json":
            text = orjson.dumps(draft.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
        else:
            text = draft.to_markdown()
        if args.out is not None:
            args.out.write_text(text, encoding="utf-8")
            print(f"wrote {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0

    return _run(settings, work)


def _line(item: items.ActionItem) -> str:
    due = item.due_date.isoformat() if item.due_date else "no due date"
    owner = item.owner or "unassigned"
    return f"  {due:<12} {item.title}  [{owner}; {item.id}; incident {item.incident_id}]"


def render_review(review: items.Review) -> str:
    """Plain text: the four lists, each with its count; empty lists say so."""
    sections: Sequence[tuple[str, tuple[items.ActionItem, ...]]] = (
        ("Overdue", review.overdue),
        ("Unassigned", review.unassigned),
        (f"Due more than {items.MAX_DUE_DAYS} days out", review.due_beyond_14_days),
        ("Open", review.open),
    )
    lines = [f"Action-item review for {review.today.isoformat()}"]
    for title, chosen in sections:
        lines += ["", f"{title} ({len(chosen)})"]
        lines += [_line(item) for item in chosen] or ["  none"]
    return "\n".join(lines) + "\n"


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    async def work(conn: Any) -> int:
        rows = await conn.fetch("SELECT doc::text FROM action_items ORDER BY created_at, id")
        all_items = [items.item_from_json(orjson.loads(r["doc"])) for r in rows]
        today = args.today or datetime.now(UTC).date()
        review = items.weekly_review(all_items, today)
        if args.format == "json":
            sys.stdout.write(orjson.dumps(review.to_json(), option=orjson.OPT_INDENT_2).decode()
                             + "\n")
        else:
            sys.stdout.write(render_review(review))
        return 0

    return _run(settings, work)
