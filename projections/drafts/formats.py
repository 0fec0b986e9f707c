"""How Hindsight writes durations and times for people: one place, used by the CLI, the
drafts and (as ``static/dashboard/assets/format.js``, the same rules in JavaScript) the
dashboard.

Durations (``duration``)
    Rounded to the nearest whole second, halves up (``434.5 s`` is ``7 min 15 s``), then
    written with every unit that is not zero, largest first: ``52 min 1 s``, ``1 h 45 s``
    (not ``1 h 0 min 45 s``), ``3 d 2 h``. Units are ``d``, ``h``, ``min``, ``s``, each
    separated from its number by a space. Under half a second, three significant digits:
    ``0.118 s``. Zero is ``0 s``; a negative duration has a minus sign (``−5 s``); an
    unknown one is ``–``. Every view rounds the same way, so a p90 reads the same in the
    terminal, on the dashboard and in a draft.

Exact durations (``exact_seconds``)
    Beside a rounded one where exactness matters (the draft): ``434.5 s``.

Times
    In prose, to the nearest second, halves up like durations (``prose_time``:
    ``2025-03-14T09:58:12Z`` for 09:58:12.345678): a sentence needs the moment, not its
    microseconds, and the times it names agree with the durations it gives. In tables
    and JSON, exactly as the source gave it (``table_time``, TIMELINE.md: timestamps keep
    the precision the source gave).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from ingest.signals import format_time

__all__ = ["UNKNOWN", "duration", "exact_seconds", "plural", "prose_time", "table_time"]

UNKNOWN = "–"
_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def _significant(value: float) -> str:
    """Three significant digits, never in exponent form: ``0.118``, ``0.00012``."""
    text = f"{float(f'{value:.3g}'):.10f}".rstrip("0").rstrip(".")
    return text or "0"


def duration(total: float | None) -> str:
    """``52 min 1 s``, ``1 h 45 s``, ``3 d 2 h``, ``0.118 s``: the module's rules."""
    if total is None or math.isnan(total):
        return UNKNOWN
    sign = "−" if total < 0 else ""
    size = abs(total)
    rest = math.floor(size + 0.5)  # halves up, as JavaScript's Math.round
    if rest == 0:
        return "0 s" if size == 0 else f"{sign}{_significant(size)} s"
    parts = []
    for unit_size, unit in _UNITS:
        amount, rest = divmod(rest, unit_size)
        if amount:
            parts.append(f"{amount} {unit}")
    return sign + " ".join(parts)


def exact_seconds(total: float) -> str:
    """``130 s`` or ``65.25 s``: the exact figure behind a rounded duration."""
    if float(total).is_integer():
        return f"{int(total)} s"
    return f"{total:.3f}".rstrip("0") + " s"


def prose_time(value: datetime) -> str:
    """``2025-03-14T09:58:12Z``: UTC to the nearest second, halves up, for sentences.
    Rounded as durations are, so the times a sentence names and the duration between
    them agree (00:00:00Z to 00:07:14.5Z reads "00:07:15Z", "7 min 15 s")."""
    whole = value.astimezone(UTC).replace(microsecond=0)
    if value.microsecond >= 500_000:
        whole += timedelta(seconds=1)
    return format_time(whole)


def table_time(value: datetime | None) -> str:
    """The exact time (``2025-03-14T09:58:12.345678Z``), for tables and JSON."""
    return UNKNOWN if value is None else format_time(value)


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 incident``, ``2 incidents``, ``0 deliveries`` (``words`` when not ``word`` +
    ``s``)."""
    many = words if words is not None else word + "s"
    return f"{count:,} {word if count == 1 else many}"
