"""What an operator needs to set up each source, shared by ``hindsight sources`` (the CLI)
and ``GET /v1/sources`` (the ``/setup`` page): its webhook URL, how it authenticates, its
guide (``docs/sources/<source>.md``) and what the delivery log holds of it (the last
delivery and the counts by outcome). Never a secret: the API answers with the kind of
credential only; the CLI prints secrets itself, on request (``--show-secrets``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from hindsight.settings import (
    SECRET_FROM_TOOL,
    SECRET_SHOWN_BY,
    SIGNED_SOURCES,
    SNS_SOURCES,
    Settings,
    SourceSettings,
)
from ingest.signals import format_time
from ingest.sources import SOURCES

GUIDES = "docs/sources"  # one setup guide per source: docs/sources/<source>.md
GUIDES_DIR = Path(__file__).resolve().parents[1] / GUIDES
# The order outcomes are listed in; any other after them, by name.
OUTCOMES = ("understood", "duplicate", "unmapped", "invalid", "unsupported")


def guide_path(source: str) -> str:
    return f"{GUIDES}/{source}.md"


def guide_file(source: str) -> Path | None:
    """The guide of ``source`` when it is a known source with a guide, else None. Only
    names in ``SOURCES`` are looked up: no path a request makes up is ever opened."""
    if source not in SOURCES:
        return None
    path = GUIDES_DIR / f"{source}.md"
    return path if path.is_file() else None


@dataclass(frozen=True)
class SourceDeliveries:
    """What the delivery log holds for one source: authentic deliveries only (refused
    ones are never stored; ``hindsight_deliveries_total`` counts those)."""

    last_received_at: datetime
    outcomes: dict[str, int]  # understood, invalid, unmapped, unsupported, duplicate

    def ordered_outcomes(self) -> list[str]:
        return sorted(self.outcomes,
                      key=lambda o: (OUTCOMES.index(o) if o in OUTCOMES else 99, o))


async def delivery_counts_on(conn: asyncpg.Connection) -> dict[str, SourceDeliveries]:
    """Per source, the last receipt and the deliveries by outcome, from the delivery log
    (a read model: it lags the event log by the projector's delay). A copy of a stored
    delivery (a retry) counts as ``duplicate``."""
    has_copies = await conn.fetchval(
        "SELECT EXISTS (SELECT FROM information_schema.columns "
        "WHERE table_name = 'delivery_log' AND column_name = 'duplicate_of')")
    outcome = ("CASE WHEN duplicate_of IS NULL THEN outcome ELSE 'duplicate' END"
               if has_copies else "outcome")
    rows = await conn.fetch(
        f"SELECT source, {outcome} AS outcome, count(*) AS n, max(received_at) AS last "
        "FROM delivery_log GROUP BY 1, 2")
    found: dict[str, SourceDeliveries] = {}
    for row in rows:
        before = found.get(row["source"])
        outcomes = dict(before.outcomes) if before else {}
        outcomes[row["outcome"]] = int(row["n"])
        last = max(row["last"], before.last_received_at) if before else row["last"]
        found[row["source"]] = SourceDeliveries(last, outcomes)
    return found


def authentication(name: str, conf: SourceSettings) -> str:
    """How ``name`` proves a delivery is authentic, in words, naming no secret."""
    if name in SNS_SOURCES:  # ingest/auth.py check_sns
        words = ("Amazon SNS message signature (certificate from "
                 "https://sns.<region>.amazonaws.com only)")
        if conf.topic_arns:
            words += "; topics: " + ", ".join(conf.topic_arns)
        if conf.token:
            words += "; and ?token=<token> in the subscription's endpoint URL"
        return words
    if name in SIGNED_SOURCES or (conf.secret and not conf.token):
        if name in SECRET_FROM_TOOL:
            return (f"signed (HMAC) with the signing secret "
                    f"{SECRET_SHOWN_BY.get(name, name)} generates, pasted into Hindsight's "
                    "settings")
        if name == "native":
            return "signed (Standard Webhooks) with the configured whsec_ secret"
        if name == "checkly":
            return ("signed (HMAC, x-checkly-signature) with the configured secret, set as "
                    "the webhook secret in Checkly")
        return "signed (HMAC) with the configured secret"
    words = "bearer token: Authorization: Bearer <token>, or ?token=<token>"
    if conf.secret:
        words += "; or signed (HMAC) with the configured secret"
    return words


def source_rows(settings: Settings,
                deliveries: Mapping[str, SourceDeliveries]) -> list[dict[str, Any]]:
    """One JSON object per enabled source, in the settings' order; no secret."""
    rows = []
    for name, conf in settings.sources.items():
        found = deliveries.get(name)
        rows.append({
            "source": name,
            "webhook_url": settings.webhook_url(name),
            "authentication": authentication(name, conf),
            "guide": f"/setup/guides/{name}.md",
            "last_delivery_at": None if found is None else format_time(found.last_received_at),
            "deliveries": {} if found is None else {
                o: found.outcomes[o] for o in found.ordered_outcomes()},
        })
    return rows
