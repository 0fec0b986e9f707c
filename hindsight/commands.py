"""CLI commands beyond serve and migrate: the read side in a terminal."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Each feature adds its command here."""
    __import__("hindsight.cli_drafts", fromlist=["x"]).register(sub)  # draft, review
    __import__("hindsight.cli_latency", fromlist=["x"]).register(sub)  # latency, demo
    __import__("hindsight.cli_projections", fromlist=["x"]).register(sub)  # rebuild, incidents...
