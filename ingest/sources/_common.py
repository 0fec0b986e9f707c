"""Helpers every source adapter shares: times, severities, required fields.

Adapters are pure: no I/O, no clock. Anything two adapters need lives here once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from ingest.delivery import MappingError
from ingest.signals import Severity

_FRACTION = re.compile(r"(\.\d+)")
_ZERO_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z, means "unknown"


def parse_time(value: Any, *, assume: tzinfo = UTC) -> datetime | None:
    """An RFC 3339 / ISO 8601 time, or None when missing, empty or Go's zero time.

    Sub-microsecond digits (Alertmanager sends nanoseconds) are truncated; a time without
    a zone is read in ``assume``, the zone the tool documents. Raises MappingError for a
    string that is not a time at all.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_epoch(value)
    if not isinstance(value, str):
        raise MappingError(f"expected a time, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(f"not a time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=assume)
    if parsed.year <= _ZERO_YEAR:
        return None
    return parsed.astimezone(UTC)


def from_epoch(value: float | int | str) -> datetime | None:
    """Unix seconds (or milliseconds, when the number is too large for seconds)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MappingError(f"not a Unix time: {str(value)[:40]!r}") from None
    if number <= 0:
        return None
    if number > 1e11:  # milliseconds since 1970 pass 1e11 in 1973; seconds never will here
        number /= 1000.0
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=number)


_SEVERITY_WORDS: dict[str, Severity] = {
    "critical": "P1",
    "crit": "P1",
    "fatal": "P1",
    "emergency": "P1",
    "disaster": "P1",
    "page": "P1",
    "p1": "P1",
    "sev1": "P1",
    "high": "P2",
    "error": "P2",
    "err": "P2",
    "major": "P2",
    "p2": "P2",
    "sev2": "P2",
    "warning": "P3",
    "warn": "P3",
    "medium": "P3",
    "minor": "P3",
    "average": "P3",
    "p3": "P3",
    "sev3": "P3",
    "info": "P4",
    "informational": "P4",
    "low": "P4",
    "none": "P4",
    "p4": "P4",
    "p5": "P4",
    "sev4": "P4",
}


def severity_from(*candidates: Any) -> Severity | None:
    """The first candidate that names a severity (critical→P1, high/error→P2,
    warning→P3, info→P4, P1…P4 as is), else None for the source's default."""
    for candidate in candidates:
        if isinstance(candidate, str):
            found = _SEVERITY_WORDS.get(candidate.strip().lower())
            if found is not None:
                return found
    return None


def severity_from_labels(labels: Mapping[str, Any]) -> Severity | None:
    return severity_from(labels.get("severity"), labels.get("priority"))


def require(mapping: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """``mapping[key]`` when it exists and has the expected type, else a MappingError
    naming the field, e.g. ``alerts[2].labels: expected an object``."""
    path = f"{where}.{key}" if where else key
    if not isinstance(mapping, dict):
        raise MappingError(f"{where or 'body'}: expected an object")
    if key not in mapping:
        raise MappingError(f"{path}: missing")
    value = mapping[key]
    if not isinstance(value, kind):
        raise MappingError(f"{path}: expected {_type_words(kind)}")
    return value


def optional(mapping: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """Like require, but a missing or null field is None."""
    if not isinstance(mapping, dict) or mapping.get(key) is None:
        return None
    return require(mapping, key, kind, where)


def _type_words(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number",
             float: "a number", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def clip(text: str, limit: int = 500) -> str:
    """Long annotations are kept in the raw body; a summary stays readable."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
