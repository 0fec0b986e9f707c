"""CLI commands beyond serve and migrate: the read side in a terminal."""

from __future__ import annotations

import argparse

from hindsight import cli_drafts, cli_latency, cli_lifecycle, cli_projections


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Each feature module adds its commands."""
    cli_drafts.register(sub)       # draft, review
    cli_latency.register(sub)      # latency, demo
    cli_projections.register(sub)  # rebuild, incidents, incident, deliveries, import
    cli_lifecycle.register(sub)    # declare, ack, note, ..., action add | assign | ...
