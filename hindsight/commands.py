"""CLI commands beyond serve and migrate: the read side in a terminal."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Each feature adds its command here."""
