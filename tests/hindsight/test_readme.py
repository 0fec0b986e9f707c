"""The README is a newcomer's path (issue 13, item 6): everything it links is in the
repository, its Quick start and native example use the current time and resolve what
they open, and its counts match the code."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NUMBERS = {7: "seven", 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}


def _links(path: Path) -> list[str]:
    return [link for link in re.findall(r"\]\(([^)#\s]+)", path.read_text())
            if "://" not in link and not link.startswith("mailto:")]


def test_everything_the_readme_and_its_docs_link_is_in_the_repository() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    missing = [f"{page.name}: {link}" for page in pages for link in _links(page)
               if not (page.parent / link).resolve().is_relative_to(ROOT)
               or not (page.parent / link).exists()]
    assert missing == []
    assert "../shared" not in README.read_text()


def _blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def test_the_quick_start_posts_with_the_current_time_and_resolves_what_it_opened() -> None:
    """A fixed date in the past makes an incident of months of detection latency that
    never ends (TIMELINE.md: started_at is the tool's startsAt)."""
    text = README.read_text()
    alert = next(b for b in _blocks(text) if "/v1/webhooks/alertmanager" in b)
    assert re.search(r'STARTED=\$\(date -u \+%Y-%m-%dT%H:%M:%SZ\)', alert)
    assert '"startsAt": "\'"$STARTED"\'"' in alert
    assert not re.search(r'"startsAt": "\d{4}-', alert)
    assert 'alert resolved "$(date -u' in text
    native = next(b for b in _blocks(text) if "/v1/webhooks/native" in b)
    assert '"occurred_at":"\'"$(date -u' in native
    assert "signal failing" in native
    assert "signal ok" in native


def test_the_readme_counts_the_tools_the_demo_uses() -> None:
    records = (ROOT / "hindsight" / "demo_data" / "week.jsonl").read_bytes().splitlines()
    tools = {orjson.loads(line)["source"] for line in records if line.strip()}
    assert f"a recorded week from {NUMBERS[len(tools)]} tools" in README.read_text()


def test_every_source_has_its_row_in_the_readme_and_a_guide() -> None:
    """Issue 14: each source is documented where a newcomer looks first, with its guide
    in docs/sources/ and its row in that folder's index."""
    from ingest.sources import SOURCES

    readme = README.read_text()
    index = (ROOT / "docs" / "sources" / "README.md").read_text()
    missing = [name for name in SOURCES
               if f"`/v1/webhooks/{name}`" not in readme
               or f"`/v1/webhooks/{name}`" not in index
               or not (ROOT / "docs" / "sources" / f"{name}.md").exists()]
    assert missing == []
