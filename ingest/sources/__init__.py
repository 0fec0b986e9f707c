"""One adapter per monitoring tool, behind one seam: ``parse(delivery) -> list[Signal]``.

An adapter is pure (no I/O, no clock). It raises ``BodyError`` when the body is not
JSON/form data and ``MappingError`` when it parsed but cannot be mapped; a tool's
set-up or test message maps to no signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Literal

from ingest.delivery import BodyError, Delivery, MappingError
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


Outcome = Literal["understood", "invalid", "unmapped", "unsupported"]

# Content types a monitoring tool may send; anything else is "unsupported" (HTTP 415).
ACCEPTED_TYPES = frozenset(
    {"", "application/json", "text/json", "application/x-www-form-urlencoded", "text/plain",
     "multipart/form-data"}
)
HTTP_STATUS: dict[Outcome, int] = {"understood": 202, "invalid": 400, "unmapped": 422,
                                   "unsupported": 415}


@dataclass(frozen=True, slots=True)
class Understanding:
    outcome: Outcome
    error: str | None
    signals: tuple[Signal, ...]

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.outcome]


def understand(delivery: Delivery) -> Understanding:
    """What a delivery says, as ingest answers it and the projector folds it. Never
    raises: an adapter bug makes the delivery "unmapped" (kept, and fixed by a rebuild
    once the adapter is), never an error for the sender."""
    ctype = delivery.content_type
    if ctype not in ACCEPTED_TYPES and not ctype.endswith("+json"):
        return Understanding("unsupported", f"unsupported content type {ctype!r}", ())
    try:
        return Understanding("understood", None, tuple(parse(delivery)))
    except BodyError as exc:
        return Understanding("invalid", str(exc), ())
    except MappingError as exc:
        return Understanding("unmapped", str(exc), ())
    except Exception as exc:
        logging.getLogger("hindsight.ingest").exception("adapter failed: %s", delivery.source)
        return Understanding(
            "unmapped",
            f"the {delivery.source} adapter could not read this payload ({type(exc).__name__})",
            (),
        )
