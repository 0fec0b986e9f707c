"""Small text helpers the postmortem draft shares: durations, times, Markdown escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ingest.signals import format_time
from projections.drafts.formats import duration, exact_seconds, prose_time

__all__ = ["code", "format_time", "human_duration", "md", "one_line", "prose_time", "seconds",
           "time_of_day"]


# Durations and prose times follow projections.drafts.formats, the one place for them.
human_duration = duration
seconds = exact_seconds


def time_of_day(value: datetime, *, relative_to: datetime) -> str:
    """``10:31:00Z`` when ``value`` falls on the same UTC day as ``relative_to``, else the
    full RFC 3339 time: short where it cannot be misread."""
    if value.astimezone(UTC).date() == relative_to.astimezone(UTC).date():
        return format_time(value).split("T", 1)[1]
    return format_time(value)


def one_line(text: str) -> str:
    return " ".join(text.split())


# Characters that start Markdown or HTML constructs anywhere in a line. "_" is escaped
# only at a word's edge: inside a word (payment_reconciliation) GFM never reads it as
# emphasis, and escaping it there would only make the raw text harder to read.
# "*" likewise only where it touches a non-space: "0 2 * * *" cannot open emphasis.
_MD_SPECIAL = re.compile(
    r"[\\`\[\]<>|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|(?<=\S)\*|\*(?=\S)"
)
_LINE_START = re.compile(r"^([#+=>*-]|\d+[.)])")


def md(text: str) -> str:
    """Free text as one line of literal Markdown (safe in a table cell)."""
    escaped = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), one_line(text))
    return _LINE_START.sub(lambda m: "\\" + m.group(0) if len(m.group(0)) == 1
                           else m.group(0)[:-1] + "\\" + m.group(0)[-1], escaped)


def code(text: str) -> str:
    """An identifier as a code span, whatever backticks it holds; ``|`` escaped because
    GFM splits table cells on it even inside code spans."""
    body = one_line(text).replace("|", "\\|")
    if not body:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"
