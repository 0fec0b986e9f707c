"""Secrets on stdout (docs/security.md #4): ``serve`` shows secrets it has just
generated only to a person at a terminal; a container's stdout is a log. ``hindsight
sources`` shows the URLs any time, and the secrets only with ``--show-secrets``."""

from __future__ import annotations

import io
from pathlib import Path

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
