"""One adapter per monitoring tool, behind one seam: ``parse(delivery) -> list[Signal]``.

An adapter is pure (no I/O, no clock). It raises ``BodyError`` when the body is not
JSON/form data and ``MappingError`` when it parsed but cannot be mapped; a tool's
set-up or test message maps to no signals.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ingest.delivery import Delivery
from ingest.signals import Signal

Adapter = Callable[[Delivery], list[Signal]]

# Source name in the URL -> module in this package.
SOURCE_MODULES: dict[str, str] = {
    "alertmanager": "alertmanager",
    "grafana": "grafana",
    "uptime-kuma": "uptime_kuma",
    "uptimerobot": "uptimerobot",
    "betterstack": "betterstack",
    "healthchecks": "healthchecks",
    "cronitor": "cronitor",
    "github": "github",
    "gitlab": "gitlab",
    "argocd": "argocd",
    "pagerduty": "pagerduty",
    "native": "native",
}
SOURCES: tuple[str, ...] = tuple(SOURCE_MODULES)


def adapter_for(source: str) -> Adapter:
    """The ``parse`` function of a known source; KeyError for an unknown one."""
    module = import_module(f"ingest.sources.{SOURCE_MODULES[source]}")
    parse: Adapter = module.parse
    return parse


def parse(delivery: Delivery) -> list[Signal]:
    return adapter_for(delivery.source)(delivery)
