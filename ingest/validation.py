"""Validation errors at the edge, reported as one short, stable message."""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(exc: ValidationError, tag: str | None = None) -> str:
    """``field.path: message`` for the first error. A tagged union (``type``-discriminated
    events) puts the tag in the location; ``tag`` drops it, since the field is what the
    sender must fix."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"] if part != tag) or "body"
    return f"{where}: {first['msg']}"
