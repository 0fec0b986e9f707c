"""Which service a signal belongs to (TIMELINE.md "service"; API.md ``[services]``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

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

    def configured(self, subject: str) -> str | None:
        low = subject.lower()
        found = self._exact.get(low)
        if found is not None:
            return found
        for pattern, service in self._globs:
            if fnmatchcase(low, pattern):
                return service
        return None

    def service_of(self, signal: Signal) -> str:
        """The configured mapping wins, else the payload's own hint, else the subject."""
        configured = self.configured(signal.subject)
        if configured is not None:
            return configured
        if signal.service is not None and signal.service.strip():
            return signal.service.strip()
        return signal.subject
