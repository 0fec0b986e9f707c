"""Settings: TOML, HINDSIGHT_* variables over it, *_FILE secrets, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hindsight.settings import SettingsError, generate_credentials, load_settings


def test_variables_override_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "hindsight.toml"
    config.write_text('port = 9000\n[sources.alertmanager]\ntoken = "from-file"\n')
    settings = load_settings(config, environ={"HINDSIGHT_PORT": "9100"})
    assert settings.port == 9100
    token = settings.sources["alertmanager"].token
    assert token is not None
    assert token.get_secret_value() == "from-file"


def test_a_secret_can_come_from_a_file_variant(tmp_path: Path) -> None:
    secret = tmp_path / "github-secret"
    secret.write_text("s3cret\n")
    settings = load_settings(environ={"HINDSIGHT_SOURCES__GITHUB__SECRET_FILE": str(secret)})
    github = settings.sources["github"].secret
    assert github is not None
    assert github.get_secret_value() == "s3cret"


def test_a_dashed_source_name_can_be_set_from_a_variable() -> None:
    settings = load_settings(environ={"HINDSIGHT_SOURCES__UPTIME_KUMA__TOKEN": "t"})
    assert "uptime-kuma" in settings.sources


def test_a_bad_value_names_the_variable_and_the_expected_form() -> None:
    with pytest.raises(SettingsError, match=r"HINDSIGHT_PORT.*integer"):
        load_settings(environ={"HINDSIGHT_PORT": "eighty"})


def test_an_unknown_source_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown source 'nagios'.*alertmanager"):
        load_settings(environ={"HINDSIGHT_SOURCES__NAGIOS__TOKEN": "t"})


def test_a_missing_file_variant_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HINDSIGHT_DATABASE_URL_FILE"):
        load_settings(environ={"HINDSIGHT_DATABASE_URL_FILE": str(tmp_path / "absent")})


def test_generated_credentials_are_private_and_cover_every_source(tmp_path: Path) -> None:
    settings = load_settings(environ={"HINDSIGHT_DATA_DIR": str(tmp_path)})
    generated, path = generate_credentials(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(generated.api_tokens) == 1
    assert set(generated.sources) == {
        "alertmanager", "grafana", "uptime-kuma", "uptimerobot", "betterstack",
        "healthchecks", "cronitor", "github", "gitlab", "argocd", "pagerduty", "native"}
    native = generated.sources["native"].secret
    assert native is not None
    assert native.get_secret_value().startswith("whsec_")
