"""Golden drafts: the full Markdown and JSON of two scenarios, kept as reviewed files.

A change to a draft shows as a diff here. After reading a changed draft and judging it
right, rewrite the files with ``HINDSIGHT_UPDATE_GOLDEN=1 pytest tests/projections``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from projections.draft import Draft, build_draft
from tests.projections.test_draft_scenarios import (
    checkout_action_items,
    checkout_outage,
    p1_detection_gap,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HINDSIGHT_UPDATE_GOLDEN") == "1"

DRAFTS: dict[str, Callable[[], Draft]] = {
    # A team that lists checkout on its status page ([status] public_services).
    "checkout_outage": lambda: build_draft(checkout_outage(), checkout_action_items(),
                                           public_services={"checkout": "Checkout"}),
    "p1_detection_gap": lambda: build_draft(p1_detection_gap(), []),
}


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"{path.name} (golden)", tofile=f"{path.name} (built)"))
        pytest.fail(f"the draft differs from {path}:\n{diff}", pytrace=False)


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_the_markdown_draft_matches_its_golden_file(name: str) -> None:
    _compare(GOLDEN / f"{name}.md", DRAFTS[name]().to_markdown())


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_the_json_draft_matches_its_golden_file(name: str) -> None:
    text = json.dumps(DRAFTS[name]().to_json(), indent=2, ensure_ascii=False) + "\n"
    _compare(GOLDEN / f"{name}.json", text)
