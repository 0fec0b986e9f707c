"""Small text helpers the postmortem draft shares: durations, times, Markdown escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ingest.signals import format_time

__all__ = ["code", "format_time", "human_duration", "md", "one_line", "seconds", "time_of_day"]


def human_duration(total: float) -> str:
    """``2 min 10 s``, ``1 h 5 min``, ``3 d 2 h``: every non-zero unit, to the second.

    Sub-second precision is kept in ``seconds``; here it would only be noise.
    """
    sign = "−" if total < 0 else ""
    rest = round(abs(total))
    if rest == 0:
        return "0 s" if total == 0 else f"{sign}{abs(total):.3g} s"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount} {unit}")
    return sign + " ".join(parts)


def seconds(total: float) -> str:
    """``130 s`` or ``65.25 s``: the exact figure behind a human duration."""
    if float(total).is_integer():
        return f"{int(total)} s"
    return f"{total:.3f}".rstrip("0") + " s"


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
