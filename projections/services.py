"""Which service a signal belongs to (TIMELINE.md "service"; API.md ``[services]``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fnmatch import translate

from ingest.signals import Signal

_GLOB_CHARS = frozenset("*?[")


class ServiceMap:
    """The configured ``[services]`` mapping: case-insensitive globs on subjects.

    When several services match one subject:

    1. an exact pattern (no ``*``, ``?`` or ``[``) beats any glob: naming a subject
       outright is the most specific thing a configuration can say;
    2. otherwise the first matching service in sorted-name order wins, so the answer
       never depends on the order a configuration file or dict happened to have.
    """

    def __init__(self, services: Mapping[str, Sequence[str]]) -> None:
        exact: dict[str, str] = {}
        globs: list[tuple[str, str]] = []
        for service in sorted(services):
            for pattern in services[service]:
                low = pattern.strip().lower()
                if not low:
                    continue
                if _GLOB_CHARS.isdisjoint(low):
                    exact.setdefault(low, service)
                else:
                    globs.append((low, service))
        self._exact = exact
        self._globs = tuple(globs)
        # All globs as one regex of alternatives in the same order: the first that
        # matches wins, as in the loop it replaces, but the scan runs in C.
        self._combined = re.compile("|".join(
            f"(?P<g{i}>{translate(pattern)})" for i, (pattern, _) in enumerate(globs)
        )) if globs else None
        # Subjects recur (every alert of a subject, every check run): the answer is a pure
        # function of the subject, so it is worked out once. Bounded: a flood of distinct
        # subjects cannot grow it without limit.
        self._known: dict[str, str | None] = {}

    def configured(self, subject: str) -> str | None:
        if subject in self._known:
            return self._known[subject]
        found = self._match(subject.lower())
        if len(self._known) >= 100_000:
            self._known.clear()
        self._known[subject] = found
        return found

    def _match(self, low: str) -> str | None:
        found = self._exact.get(low)
        if found is not None:
            return found
        if self._combined is None:
            return None
        match = self._combined.fullmatch(low)
        if match is None or match.lastgroup is None:
            return None
        return self._globs[int(match.lastgroup[1:])][1]

    def service_of(self, signal: Signal) -> str:
        """The configured mapping wins, else the payload's own hint, else the subject."""
        configured = self.configured(signal.subject)
        if configured is not None:
            return configured
        if signal.service is not None and signal.service.strip():
            return signal.service.strip()
        return signal.subject
