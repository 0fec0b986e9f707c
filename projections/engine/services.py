"""Which service a signal belongs to (TIMELINE.md "service"; API.md ``[services]``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fnmatch import translate

from ingest.signals import Signal
from ingest.sources.alertmanager import alert_subject
from projections.engine.texts import alert_name

_GLOB_CHARS = frozenset("*?[")


def names_of(signal: Signal) -> tuple[str, ...]:
    """The names ``[services]`` patterns are matched against, in order: the subject;
    then, for an alert with an ``alertname`` (Alertmanager, Grafana: the subject is its
    fingerprint, a hash nobody writes a pattern for), how it is shown (TIMELINE.md: "shown
    as alertname and its distinguishing labels"): its title name
    (``HighErrorRate on 10.42.3.17:8080``, ``projections.engine.texts.alert_name``), then its
    labels (``HighErrorRate{instance="10.42.3.17:8080", job="checkout-api"}``,
    ``ingest.sources.alertmanager.alert_subject``: the subject before fingerprints, so
    patterns written against it still match). Person labels are never in either."""
    if signal.kind != "alert" or not signal.label_map.get("alertname", "").strip():
        return (signal.subject,)
    names = [signal.subject]
    for name in (alert_name(signal), alert_subject(signal.label_map)):
        if name not in names:
            names.append(name)
    return tuple(names)


def fallback_name(signal: Signal) -> str:
    """The service when neither ``[services]`` nor the payload names one: the subject as
    it is shown (TIMELINE.md "else the subject"; an alert's subject is "shown as alertname
    and its distinguishing labels", so an alert's service is its title name, not its
    fingerprint); anything else, the subject itself."""
    return alert_name(signal)


class ServiceMap:
    """The configured ``[services]`` mapping: case-insensitive globs on a signal's names
    (:func:`names_of`: its subject, then, for an alert, how it is shown).

    When several patterns match:

    1. an exact pattern (no ``*``, ``?`` or ``[``) beats any glob: naming a subject
       outright is the most specific thing a configuration can say. Exact patterns are
       tried on every name (subject first) before any glob is;
    2. then globs, name by name in the same order (subject first): on one name, the first
       matching service in sorted-name order wins, so the answer never depends on the
       order a configuration file or dict happened to have.
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
        # Names recur (every alert of a subject, every check run): the answer is a pure
        # function of the names, so it is worked out once. Bounded: a flood of distinct
        # names cannot grow it without limit.
        self._known: dict[tuple[str, ...], str | None] = {}
        # The same for whole signals: what ``service_of`` reads of one (kind, subject,
        # payload hint, labels) recurs for every repeat of an alert or check, and working
        # out its names costs more than the match. Bounded like ``_known``.
        self._signals: dict[tuple[object, ...], str] = {}

    def configured(self, *names: str) -> str | None:
        """The configured service of the first name an exact pattern matches, else of the
        first name a glob matches (the class's order); None when nothing matches."""
        if names in self._known:
            return self._known[names]
        lows = [name.lower() for name in names]
        found = next((s for s in map(self._exact.get, lows) if s is not None), None)
        if found is None:
            found = next((s for s in map(self._glob, lows) if s is not None), None)
        if len(self._known) >= 100_000:
            self._known.clear()
        self._known[names] = found
        return found

    def _glob(self, low: str) -> str | None:
        if self._combined is None:
            return None
        match = self._combined.fullmatch(low)
        if match is None or match.lastgroup is None:
            return None
        return self._globs[int(match.lastgroup[1:])][1]

    def service_of(self, signal: Signal) -> str:
        """The configured mapping wins (on :func:`names_of`), else the payload's own hint,
        else the subject as it is shown (:func:`fallback_name`)."""
        key = (signal.kind, signal.subject, signal.service, signal.labels)
        known = self._signals.get(key)
        if known is None:
            known = self._service_of(signal)
            if len(self._signals) >= 100_000:
                self._signals.clear()
            self._signals[key] = known
        return known

    def _service_of(self, signal: Signal) -> str:
        # With no pattern configured nothing can match: the names are not worked out
        # (for an alert they cost more than all the rest of placing it).
        if self._exact or self._globs:
            configured = self.configured(*names_of(signal))
            if configured is not None:
                return configured
        if signal.service is not None and signal.service.strip():
            return signal.service.strip()
        return fallback_name(signal)
