"""Secrets on stdout (docs/security.md #4): ``serve`` shows secrets it has just
generated only to a person at a terminal; a container's stdout is a log. ``hindsight
sources`` shows the URLs any time, and the secrets only with ``--show-secrets``; with
each source its setup guide (docs/sources/) and, when the database is reachable, its
last delivery and counts by outcome."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import pytest

from hindsight.cli import announce_webhooks, main
from hindsight.settings import Settings, generate_credentials, load_settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def generated(tmp_path: Path) -> Settings:
    settings = load_settings(environ={"HINDSIGHT_DATA_DIR": str(tmp_path)}, config=None)
    return generate_credentials(settings)[0]


def secrets_of(settings: Settings) -> list[str]:
    values = [*settings.api_tokens]
    for conf in settings.sources.values():
        values += [c.get_secret_value() for c in (conf.token, conf.secret) if c is not None]
    assert values
    return values


def test_generated_secrets_are_not_printed_when_stdout_is_a_log(tmp_path: Path) -> None:
    settings = generated(tmp_path)
    out = io.StringIO()
    announce_webhooks(settings, generated=True, out=out)
    text = out.getvalue()
    assert "/v1/webhooks/alertmanager" in text
    assert "hindsight sources --show-secrets" in text
    assert not [s for s in secrets_of(settings) if s in text]


def test_generated_secrets_are_shown_to_a_person_at_a_terminal(tmp_path: Path) -> None:
    settings = generated(tmp_path)
    out = Terminal()
    announce_webhooks(settings, generated=True, out=out)
    assert all(s in out.getvalue() for s in secrets_of(settings))


def test_configured_secrets_are_never_printed_at_start(tmp_path: Path) -> None:
    settings = generated(tmp_path)
    out = Terminal()
    announce_webhooks(settings, generated=False, out=out)
    assert not [s for s in secrets_of(settings) if s in out.getvalue()]


def test_sources_shows_secrets_only_when_asked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    settings = generated(tmp_path)
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["sources"]) == 0
    hidden = capsys.readouterr().out
    assert "/v1/webhooks/github" in hidden
    assert not [s for s in secrets_of(settings) if s in hidden]
    assert main(["sources", "--show-secrets"]) == 0
    shown = capsys.readouterr().out
    assert all(s in shown for s in secrets_of(settings))


# --- setup that explains itself (issue 13, item 3) ------------------------------------

REPOSITORY = Path(__file__).resolve().parents[2]


def test_first_start_leaves_pagerduty_disabled_and_says_whose_secret_to_paste(
        tmp_path: Path) -> None:
    """PagerDuty generates the V3 subscription's signing secret (PagerDuty developer-docs,
    docs/webhooks/04-Signatures.md, "Obtaining the Secret"): ``serve`` must print no
    secret of its own for PagerDuty, but where to paste PagerDuty's."""
    settings = generated(tmp_path)
    out = Terminal()
    announce_webhooks(settings, generated=True, out=out)
    text = out.getvalue()
    assert "/v1/webhooks/pagerduty" not in text
    assert "Not enabled" in text
    assert "paste PagerDuty's signing secret" in text
    assert "HINDSIGHT_SOURCES__PAGERDUTY__SECRET" in text
    assert "docs/sources/pagerduty.md" in text


def test_sources_names_each_sources_guide_and_every_guide_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every source, enabled or not, is printed with its guide, docs/sources/<source>.md,
    and that file is in the repository (a printed path that leads nowhere explains
    nothing)."""
    from ingest.sources import SOURCES

    generated(tmp_path)
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    for source in SOURCES:
        assert f"docs/sources/{source}.md" in out, source
        assert (REPOSITORY / "docs" / "sources" / f"{source}.md").is_file(), source


def test_sources_without_a_database_still_lists_and_says_why_there_are_no_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before the first ``serve`` there is no embedded database: the listing must not
    create one, and it says so instead of failing."""
    generated(tmp_path)
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert "/v1/webhooks/alertmanager" in out
    assert "delivery counts not shown: no database yet" in out
    assert not (tmp_path / "pgdata").exists()


async def test_sources_shows_each_sources_last_delivery_and_counts_by_outcome(
        make_client: Any, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With the database reachable, each enabled source shows its last receipt and its
    deliveries by outcome, as the delivery log records them: an Alertmanager webhook
    (understood), its retry with the same bytes (a duplicate, API.md idempotency) and a
    body that is not JSON (invalid); a source that received nothing says so."""
    from projections.runtime.projector import PROJECTOR
    from tests.fixtures import load_fixture
    from tests.helpers import TOKENS, signed_headers

    client = await make_client(projector=True)
    firing = load_fixture("alertmanager", "firing")
    positions = []
    for body in (firing.body, firing.body, b"{not json"):
        response = await client.post("/v1/webhooks/alertmanager", data=body, headers=signed_headers(
            "alertmanager", body, {"Content-Type": "application/json"}))
        assert response.status in (200, 202, 400), await response.text()
        positions.append((await response.json())["delivery"])
    assert await client.app[PROJECTOR].wait_for(max(positions))

    config = tmp_path / "hindsight.toml"
    config.write_text(f'[sources.alertmanager]\ntoken = "{TOKENS["alertmanager"]}"\n'
                      f'[sources.cronitor]\ntoken = "{TOKENS["cronitor"]}"\n', encoding="utf-8")
    monkeypatch.setenv("HINDSIGHT_CONFIG", str(config))
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", database_url)
    capsys.readouterr()
    # main runs its own event loop (asyncio.run): give it a thread of its own.
    assert await asyncio.to_thread(main, ["sources"]) == 0
    out = capsys.readouterr().out
    alertmanager = out[out.index("  alertmanager"):out.index("  cronitor")]
    assert re.search(r"deliveries: last \d{4}-\d\d-\d\dT[\d:.]+Z; "
                     r"1 understood, 1 duplicate, 1 invalid", alertmanager), alertmanager
    cronitor = out[out.index("  cronitor"):]
    assert "deliveries: none yet" in cronitor
    assert TOKENS["alertmanager"] not in out


def test_sources_can_skip_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    generated(tmp_path)
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.chdir(tmp_path)
    assert main(["sources", "--no-deliveries"]) == 0
    out = capsys.readouterr().out
    assert "deliveries:" not in out
    assert "delivery counts not shown" not in out
