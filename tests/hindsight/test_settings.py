"""Settings: TOML, HINDSIGHT_* variables over it, *_FILE secrets, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hindsight.settings import (
    SECRET_FROM_TOOL,
    SettingsError,
    generate_credentials,
    load_settings,
)
from ingest.sources import SOURCES


def test_variables_override_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "hindsight.toml"
    config.write_text('port = 9000\n[sources.alertmanager]\ntoken = "from-file-0123456789"\n')
    settings = load_settings(config, environ={"HINDSIGHT_PORT": "9100"})
    assert settings.port == 9100
    token = settings.sources["alertmanager"].token
    assert token is not None
    assert token.get_secret_value() == "from-file-0123456789"


def test_a_secret_can_come_from_a_file_variant(tmp_path: Path) -> None:
    secret = tmp_path / "github-secret"
    secret.write_text("s3cret-from-a-file-0123\n")
    settings = load_settings(environ={"HINDSIGHT_SOURCES__GITHUB__SECRET_FILE": str(secret)})
    github = settings.sources["github"].secret
    assert github is not None
    assert github.get_secret_value() == "s3cret-from-a-file-0123"


def test_a_dashed_source_name_can_be_set_from_a_variable() -> None:
    settings = load_settings(environ={"HINDSIGHT_SOURCES__UPTIME_KUMA__TOKEN": "t" * 16})
    assert "uptime-kuma" in settings.sources


def test_a_bad_value_names_the_variable_and_the_expected_form() -> None:
    with pytest.raises(SettingsError, match=r"HINDSIGHT_PORT.*integer"):
        load_settings(environ={"HINDSIGHT_PORT": "eighty"})


def test_an_unknown_source_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown source 'nagios'.*alertmanager"):
        load_settings(environ={"HINDSIGHT_SOURCES__NAGIOS__TOKEN": "t" * 16})


def test_a_missing_file_variant_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HINDSIGHT_DATABASE_URL_FILE"):
        load_settings(environ={"HINDSIGHT_DATABASE_URL_FILE": str(tmp_path / "absent")})


def test_generated_credentials_are_private_and_cover_every_source_hindsight_chooses_for(
        tmp_path: Path) -> None:
    settings = load_settings(environ={"HINDSIGHT_DATA_DIR": str(tmp_path)})
    generated, path = generate_credentials(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(generated.api_tokens) == 1
    assert set(generated.sources) == set(SOURCES) - SECRET_FROM_TOOL
    native = generated.sources["native"].secret
    assert native is not None
    assert native.get_secret_value().startswith("whsec_")


def test_first_start_invents_no_pagerduty_signing_secret(tmp_path: Path) -> None:
    """PagerDuty generates a V3 webhook subscription's signing secret itself and shows it
    once ("When a webhook subscription is created, a strong unique secret is generated
    and provided in the response": PagerDuty developer-docs, docs/webhooks/04-Signatures.md). A
    secret Hindsight made up could never match what PagerDuty signs with, so the source
    stays disabled until the operator pastes PagerDuty's, and the file says where."""
    settings = load_settings(environ={"HINDSIGHT_DATA_DIR": str(tmp_path)})
    generated, path = generate_credentials(settings)
    assert "pagerduty" not in generated.sources
    text = path.read_text(encoding="utf-8")
    assert "\n[sources.pagerduty]" not in text
    assert "# [sources.pagerduty]" in text
    assert "docs/sources/pagerduty.md" in text
    pasted = load_settings(config=path, environ={
        "HINDSIGHT_DATA_DIR": str(tmp_path),
        "HINDSIGHT_SOURCES__PAGERDUTY__SECRET": "from-pagerduty-0123456789abcdef"})
    secret = pasted.sources["pagerduty"].secret
    assert secret is not None
    assert secret.get_secret_value() == "from-pagerduty-0123456789abcdef"


# --- weak and placeholder secrets (docs/security.md: secrets) ---------------------------

@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("HINDSIGHT_SOURCES__ALERTMANAGER__TOKEN", "replace-me", "placeholder"),
    ("HINDSIGHT_API__TOKENS", '["CHANGE-ME-api-token"]', "placeholder"),
    ("HINDSIGHT_SOURCES__GITHUB__SECRET", "CHANGE-ME-github-secret", "placeholder"),
    ("HINDSIGHT_SOURCES__GITLAB__SECRET", "short-secret", "at least 16"),
    ("HINDSIGHT_SOURCES__GITHUB__PREVIOUS_SECRETS", '["tiny"]', "at least 16"),
])
def test_weak_or_placeholder_secrets_stop_the_start_naming_the_setting(
    variable: str, value: str, problem: str
) -> None:
    """The placeholders the project ships (hindsight.example.toml, deploy/kubernetes/
    secret.yaml) and secrets under 16 characters would let anyone post deliveries."""
    with pytest.raises(SettingsError, match=problem) as refused:
        load_settings(environ={variable: value})
    assert variable.split("__")[0].removeprefix("HINDSIGHT_").lower() in str(refused.value)


@pytest.mark.parametrize("secret", [
    "a-long-raw-secret-not-base64",      # no whsec_ prefix: was used as raw bytes
    "whsec_not*base64*at*all!!",          # prefix, but not base64
    "whsec_" + "c2hvcnQ=",                # base64 of 5 bytes: under the 24 the spec asks
])
def test_a_native_secret_must_follow_the_standard_webhooks_format(secret: str) -> None:
    """Standard Webhooks: ``whsec_`` + base64 of 24 to 64 random bytes."""
    with pytest.raises(SettingsError, match=r"sources\.native\.secret"):
        load_settings(environ={"HINDSIGHT_SOURCES__NATIVE__SECRET": secret})


def test_the_example_settings_file_does_not_start_as_it_is() -> None:
    """Copying hindsight.example.toml without filling it in must not run a service that
    accepts ``replace-me`` as a credential."""
    example = Path(__file__).resolve().parents[2] / "hindsight.example.toml"
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings(config=example, environ={})
