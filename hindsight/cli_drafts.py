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

from hindsight.cli_output import FORMATS, Column, render_tsv
from hindsight.settings import Settings
from projections.drafts.markdown import to_markdown
from projections.engine import action_items as items


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    draft = sub.add_parser("draft", help="print or write an incident's postmortem draft")
    draft.add_argument("incident_id", metavar="INCIDENT_ID",
                       help="the incident's id (`hindsight incidents` lists them)")
    draft.add_argument("--format", choices=("md", "json"), default="md",
                       help="Markdown (default) or JSON, the same content as the API's")
    draft.add_argument("--out", type=Path, metavar="FILE",
                       help="write to FILE instead of printing")
    draft.add_argument("--draft-date", type=_date, metavar="YYYY-MM-DD",
                       help="the date suggested due dates count from (default: the UTC "
                            "date the incident was resolved, or, while it is open, the "
                            "date it started; never today, so a draft is the same "
                            "whenever it is built)")
    draft.set_defaults(func=cmd_draft)

    review = sub.add_parser("review", help="the weekly action-item review")
    review.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                        help="the review's date (default: today, UTC)")
    review.add_argument("--format", choices=(*FORMATS, "text"), default="table",
                        help="table (default: the four lists), json or tsv (one line per "
                             "item and list); text is table's old name")
    review.set_defaults(func=cmd_review)


def _run(settings: Settings, work: Any) -> int:
    from hindsight.cli import _with_admin_connection

    result: int = asyncio.run(_with_admin_connection(settings, work))
    return result


def cmd_draft(args: argparse.Namespace, settings: Settings) -> int:
    from projections.drafts.draft import build_draft
    from projections.engine.codec import READ_DOCUMENT, incident_from_json, stored_document

    async def work(conn: Any) -> int:
        row = await conn.fetchrow(READ_DOCUMENT, args.incident_id)
        if row is None:
            print(f"hindsight: no incident {args.incident_id!r}", file=sys.stderr)
            return 1
        doc = stored_document(row["doc"], row["timeline"])
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
            text = to_markdown(draft)
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


REVIEW_COLUMNS = tuple(Column(name) for name in (
    "list", "due", "title", "owner", "id", "incident", "status"))


def review_cells(review: items.Review) -> list[list[str]]:
    """One row per item and list it is in (an item can be overdue and unassigned)."""
    lists = (("overdue", review.overdue), ("unassigned", review.unassigned),
             ("due_beyond_14_days", review.due_beyond_14_days), ("open", review.open))
    return [[name, item.due_date.isoformat() if item.due_date else "", item.title,
             item.owner or "", item.id, item.incident_id, item.status]
            for name, chosen in lists for item in chosen]


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
        elif args.format == "tsv":
            sys.stdout.write(render_tsv(REVIEW_COLUMNS, review_cells(review)))
        else:
            sys.stdout.write(render_review(review))
        return 0

    return _run(settings, work)
