"""``hindsight.example.toml`` shows every setting and every source (README: "shows every
setting and source"), and is itself a valid settings file."""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

from hindsight.settings import NotifySettings, Settings, SourceSettings, load_settings
from ingest.sources import SOURCES

EXAMPLE = Path(__file__).resolve().parents[2] / "hindsight.example.toml"


def _mentioned(text: str) -> set[str]:
    """Every ``name =`` the file sets or shows commented out."""
    return set(re.findall(r"^#?\s*([a-z_][a-z0-9_-]*)\s*=", text, flags=re.MULTILINE))


def test_every_top_level_setting_is_shown() -> None:
    names = set(Settings.model_fields) - {"config_path", "api", "sources", "services",
                                          "notify", "status"}
    assert names - _mentioned(EXAMPLE.read_text()) == set()


def test_every_source_has_its_table() -> None:
    text = EXAMPLE.read_text()
    assert {name for name in SOURCES if f"[sources.{name}]" not in text} == set()


def test_every_source_and_notify_setting_is_shown() -> None:
    mentioned = _mentioned(EXAMPLE.read_text())
    assert set(SourceSettings.model_fields) - mentioned == set()
    assert set(NotifySettings.model_fields) - mentioned - {"targets"} == set()
    assert "[notify.targets]" in EXAMPLE.read_text()


def test_the_example_is_a_valid_settings_file_once_its_placeholders_are_replaced(
        tmp_path: Path) -> None:
    """Placeholders are refused on purpose (settings.strong_secret); with real secrets in
    their place, every table and value parses."""
    text = EXAMPLE.read_text()
    text = text.replace("replace-with-a-long-random-token", secrets.token_urlsafe(24))
    text = re.sub(r'"replace-me"', lambda _: f'"{secrets.token_urlsafe(24)}"', text)
    key = base64.b64encode(secrets.token_bytes(24)).decode()
    text = re.sub(r'"whsec_[A-Za-z0-9+/=]+"', f'"whsec_{key}"', text)
    path = tmp_path / "hindsight.toml"
    path.write_text(text)
    settings = load_settings(path, environ={})
    assert set(settings.sources) == set(SOURCES)
