"""Settings: ``hindsight.toml`` overridden by ``HINDSIGHT_*`` variables, parsed once.

Where a setting is looked for, first match wins:

1. ``HINDSIGHT_*`` environment variables (``__`` nests: ``HINDSIGHT_SOURCES__GITHUB__SECRET``),
   and ``HINDSIGHT_*_FILE`` variants whose value is a path to read the secret from;
2. the TOML file: ``--config PATH``, else ``HINDSIGHT_CONFIG``, else ``./hindsight.toml``,
   else the credentials ``serve`` generated in the data directory.

A bad value fails at start with the variable's name and the expected form.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from ingest.sources import SOURCES

ENV_PREFIX = "HINDSIGHT_"
GENERATED_NAME = "hindsight.toml"
Severity = Literal["P1", "P2", "P3", "P4"]

# Sources that authenticate by a shared secret (signature or header), the others by token.
# (Sentry: Sentry-Hook-Signature with the integration's client secret.)
SIGNED_SOURCES = frozenset({"github", "gitlab", "pagerduty", "native", "checkly", "vercel",
                            "sentry"})
# Sources whose secret the tool generates and the operator pastes into Hindsight, never
# the reverse: PagerDuty creates a V3 webhook subscription's signing secret itself and
# shows it once (PagerDuty developer-docs, docs/webhooks/04-Signatures.md, "Obtaining the
# Secret": "When a webhook subscription is created, a strong unique secret is generated
# and provided in the response"). Vercel shows a webhook's secret once, in the "Webhook
# Created" dialog (vercel.com/docs/webhooks), or signs with the integration's client
# secret. Sentry generates an integration's client secret and shows it on the
# integration's page (docs.sentry.io, integration-platform/webhooks
# "Sentry-Hook-Signature"). First start leaves these disabled.
SECRET_FROM_TOOL = frozenset({"pagerduty", "vercel", "sentry"})
# The tool's name as the setup texts say whose secret to paste (default: the source).
SECRET_SHOWN_BY = {"pagerduty": "PagerDuty", "vercel": "Vercel", "sentry": "Sentry"}
# Sources whose alerts come from Prometheus rules, with a ``prometheus_url`` to ask for
# their pending period. Grafana is not one: its rules API needs a service-account token
# (docs/sources/alertmanager.md, "The pending period").
PENDING_SOURCES = frozenset({"alertmanager"})
# Sources delivered by Amazon SNS: signed messages, topics, certificates (ingest/sns.py).
SNS_SOURCES = frozenset({"cloudwatch"})


# The environment a load_settings call reads: os.environ, or a mapping a test passes.
_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar("hindsight_environ")


class _EnvironSource(EnvSettingsSource):
    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get(os.environ)
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and the expected form."""


MIN_SECRET_LENGTH = 16
MAX_DISPLAY_NAME = 60
# Placeholders this project ships in its examples (hindsight.example.toml, deploy/): a
# copied file that still holds one must not start, it would accept anyone's deliveries.
PLACEHOLDERS = ("replace-me", "change-me", "changeme", "your-token", "your-secret")


def strong_secret(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if any(mark in text.lower() for mark in PLACEHOLDERS):
        raise ValueError("is a placeholder from an example file: set a real secret "
                         "(`python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(f"is {len(text)} characters; a secret needs at least "
                         f"{MIN_SECRET_LENGTH}")
    return value


def standard_webhooks_secret(value: SecretStr) -> SecretStr:
    """The Standard Webhooks specification's secret: ``whsec_`` and the base64 of 24 to
    64 random bytes (the reference library strips the prefix and base64-decodes the
    rest). Anything else is refused rather than silently used as raw bytes."""
    import base64
    import binascii

    text = value.get_secret_value()
    if not text.startswith("whsec_"):
        raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("after whsec_ must be base64 (Standard Webhooks secret)") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"decodes to {len(key)} bytes; Standard Webhooks secrets are "
                         "24 to 64 bytes")
    return value


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = None
    secret: SecretStr | None = None
    # Several secrets may be valid at once while a tool's secret is rotated.
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    default_severity: Severity = "P3"
    # Alertmanager only: the Prometheus whose alerts it routes, asked at receipt when an
    # alert fired (its activeAt, else its rule's ``for``) so the failure starts when the
    # rule's condition began to hold (TIMELINE.md rule 8; ingest/prometheus_pending.py).
    # A secret: a URL may carry basic-auth credentials; the log records it without them.
    prometheus_url: SecretStr | None = None
    # Amazon SNS sources (cloudwatch) only: the topics whose messages are accepted (empty:
    # any topic, then a token is required), and where SNS signing certificates are
    # cached (default <data_dir>/sns-certificates; pre-seed it on a host without egress).
    topic_arns: list[str] = Field(default_factory=list)
    certificate_dir: Path | None = None

    @field_validator("token", "secret")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else strong_secret(value)

    @field_validator("previous_secrets")
    @classmethod
    def _strong_previous(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [strong_secret(v) for v in value]

    @field_validator("topic_arns")
    @classmethod
    def _topic_arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            parts = arn.split(":")
            if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns":
                raise ValueError(f"{arn[:80]!r} is not an SNS topic ARN "
                                 "(arn:aws:sns:<region>:<account>:<topic>)")
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _http_url(value)


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[SecretStr] = Field(default_factory=list)

    @field_validator("tokens")
    @classmethod
    def _strong(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [strong_secret(v) for v in value]


# A notification target's name: what the log records in place of its URL, so it must
# never be a URL itself (no ':' or '/').
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
LEGACY_TARGET_PREFIX = "target-"


def _http_url(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # The URL itself is not repeated: a chat webhook URL is a credential.
        raise ValueError("must be an http(s) URL")
    return value


class NotifySettings(BaseModel):
    """Outbound notifications for action items (Standard Webhooks signed), to named
    targets. A target's URL is often a credential itself (a chat webhook): it is kept as
    a secret and never written to the log; events, keys and logs name the target."""

    model_config = ConfigDict(extra="forbid")

    # name -> URL: ``[notify.targets] ops-chat = "https://..."``.
    targets: dict[str, SecretStr] = Field(default_factory=dict)
    # The unnamed list of earlier versions, still accepted: its URLs are named
    # target-1, target-2, ... in the order given.
    urls: list[SecretStr] = Field(default_factory=list)
    secret: SecretStr | None = None

    @field_validator("secret")
    @classmethod
    def _standard_webhooks(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else standard_webhooks_secret(value)

    @field_validator("targets")
    @classmethod
    def _named_urls(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, url in value.items():
            if not _TARGET_NAME.fullmatch(name):
                raise ValueError(f"target name {name[:64]!r} must be 1-63 letters, digits, "
                                 "'-', '_' or '.', starting with a letter or digit")
            try:
                _http_url(url)
            except ValueError as exc:
                raise ValueError(f"target {name!r} {exc}") from None
        return value

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [_http_url(v) for v in value]

    @model_validator(mode="after")
    def _distinct_names(self) -> NotifySettings:
        clash = sorted(set(self.targets) & set(self._legacy()))
        if clash:
            raise ValueError(f"target name {clash[0]!r} is also the name given to an entry "
                             "of the old urls list; rename the target")
        return self

    def _legacy(self) -> dict[str, SecretStr]:
        return {f"{LEGACY_TARGET_PREFIX}{n}": url for n, url in enumerate(self.urls, 1)}

    def named_targets(self) -> dict[str, str]:
        """Every target, name -> URL: ``targets``, then the old ``urls`` as target-N."""
        return {name: url.get_secret_value()
                for name, url in {**self.targets, **self._legacy()}.items()}


class StatusSettings(BaseModel):
    """The public status page. Publication is opt-in: it names and publishes only the
    services listed here, each under the display name given (``[status.public_services]
    checkout = "Checkout"``), and incidents an engineer marks public."""

    model_config = ConfigDict(extra="forbid")

    # The page's title (and heading), e.g. "Acme status".
    title: str = "Status"
    # The service as incidents name it -> the name the public reads.
    public_services: dict[str, str] = Field(default_factory=dict)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        title = " ".join(value.split())
        if not 1 <= len(title) <= MAX_DISPLAY_NAME:
            raise ValueError(f"the status page title must be 1-{MAX_DISPLAY_NAME} characters")
        return title

    @field_validator("public_services")
    @classmethod
    def _display_names(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned: dict[str, str] = {}
        for service, display in value.items():
            name = " ".join(display.split())
            if not service.strip():
                raise ValueError("a service name must not be empty")
            if not 1 <= len(name) <= MAX_DISPLAY_NAME:
                raise ValueError(f"display name of {service!r} must be 1-{MAX_DISPLAY_NAME} "
                                 "characters")
            cleaned[service] = name
        return cleaned


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    database_url: SecretStr | None = None
    data_dir: Path = Path(".hindsight")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None           # how tools reach us, for printed webhook URLs
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # The largest body POST /v1/deliveries/import takes (a JSON Lines file of deliveries).
    import_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    reopen_window_seconds: float = Field(15 * 60, ge=0)
    # How long the projector keeps a resolved incident in memory (data time); older ones
    # move to its compact archive and come back when a late signal or event touches them.
    retention_seconds: float = Field(30 * 24 * 3600, gt=0)
    group_commit_wait_ms: float = Field(2.0, ge=0, le=100)
    signature_tolerance_seconds: int = Field(300, ge=1)
    # Identical bytes from a tool that sends no delivery id are a retry only within this
    # many seconds of a stored copy's receipt; later, the same bytes are a new report.
    dedup_window_seconds: float = Field(600, ge=0)
    # A transaction running this long anywhere in the cluster holds the readers' horizon:
    # log a warning (hindsight_read_horizon_age_seconds, docs/operations.md).
    read_horizon_warning_seconds: float = Field(60, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api: ApiSettings = Field(default_factory=ApiSettings)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    services: dict[str, list[str]] = Field(default_factory=dict)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    config_path: Path | None = Field(None, exclude=True)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
        # HINDSIGHT_SOURCES__UPTIME_KUMA__TOKEN: a variable name cannot hold a dash.
        value = {name.replace("_", "-"): conf for name, conf in value.items()}
        unknown = sorted(set(value) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown source {unknown[0]!r}; known: {', '.join(SOURCES)}")
        asking = sorted(name for name, conf in value.items()
                        if conf.prometheus_url is not None and name not in PENDING_SOURCES)
        if asking:
            raise ValueError(f"sources.{asking[0]}.prometheus_url: only "
                             f"{', '.join(sorted(PENDING_SOURCES))} can ask Prometheus for "
                             "an alert's pending period")
        for name, conf in value.items():
            if name not in SNS_SOURCES and (conf.topic_arns or conf.certificate_dir):
                raise ValueError(f"sources.{name}: topic_arns and certificate_dir are for "
                                 f"Amazon SNS sources ({', '.join(sorted(SNS_SOURCES))})")
        native = value.get("native")
        if native is not None:
            for secret in [native.secret, *native.previous_secrets]:
                if secret is None:
                    continue
                try:
                    standard_webhooks_secret(secret)
                except ValueError as exc:
                    raise ValueError(f"sources.native.secret (or HINDSIGHT_SOURCES__NATIVE__"
                                     f"SECRET) {exc}") from None
        return value

    @property
    def reopen_window(self) -> timedelta:
        return timedelta(seconds=self.reopen_window_seconds)

    @property
    def retention(self) -> timedelta:
        return timedelta(seconds=self.retention_seconds)

    @property
    def api_tokens(self) -> list[str]:
        return [t.get_secret_value() for t in self.api.tokens]

    def source(self, name: str) -> SourceSettings | None:
        return self.sources.get(name)

    def webhook_url(self, source: str) -> str:
        base = self.public_url or f"http://{self.host}:{self.port}"
        return f"{base.rstrip('/')}/v1/webhooks/{source}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_EnvironSource(settings_cls), init_settings)


def _file_variants(environ: Mapping[str, str]) -> dict[str, str]:
    """``HINDSIGHT_X_FILE=/run/secrets/x`` becomes ``HINDSIGHT_X=<file content>``."""
    found: dict[str, str] = {}
    for name, path in environ.items():
        if not (name.upper().startswith(ENV_PREFIX) and name.upper().endswith("_FILE")):
            continue
        if name.upper() == "HINDSIGHT_CONFIG_FILE":
            continue
        target = name[: -len("_FILE")]
        try:
            found[target] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{name}: cannot read {path!r} ({exc.strerror})") from None
    return found


def config_file(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """Which TOML file applies, or None when there is none yet."""
    if explicit:
        return Path(explicit)
    if environ.get("HINDSIGHT_CONFIG"):
        return Path(environ["HINDSIGHT_CONFIG"])
    local = Path(GENERATED_NAME)
    if local.is_file():
        return local
    data_dir = Path(environ.get("HINDSIGHT_DATA_DIR", ".hindsight"))
    generated = data_dir / GENERATED_NAME
    return generated if generated.is_file() else None


def load_settings(
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Parse settings once, failing fast with the setting's name and the expected form."""
    env = dict(os.environ if environ is None else environ)
    files = _file_variants(env)
    for name in list(env):
        if name.upper().endswith("_FILE") and name[: -len("_FILE")] in files:
            del env[name]  # the value now stands under the variable's own name
    env.update(files)
    path = config_file(config, env)
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    token = _ENVIRON.set(env)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    finally:
        _ENVIRON.reset(token)
    # Command-line flags are the most specific choice and win over the environment.
    return settings.model_copy(update={**overrides, "config_path": path})


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    variable = ENV_PREFIX + "__".join(str(p) for p in first["loc"]).upper()
    return f"{where} (or {variable}): {first['msg']}"


def generate_credentials(settings: Settings) -> tuple[Settings, Path]:
    """First start with no configuration: make an API token and one credential per
    source whose credential Hindsight chooses, save them (mode 0600) in the data
    directory, and return the new settings. Sources whose secret the tool generates
    (``SECRET_FROM_TOOL``: PagerDuty, Vercel, Sentry) are left disabled until the
    operator pastes it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / GENERATED_NAME
    lines = [
        "# Generated by `hindsight serve` on first start. Keep it secret (mode 0600).",
        "[api]",
        f'tokens = ["{secrets.token_urlsafe(24)}"]',
        "",
    ]
    for source in SOURCES:
        if source in SECRET_FROM_TOOL:
            # Nothing to invent: the tool makes the secret. The source stays disabled
            # (404) until the operator pastes it; the commented table says where.
            lines += [f"# [sources.{_toml_key(source)}]  (see docs/sources/{source}.md)",
                      f"# secret = \"<the signing secret {SECRET_SHOWN_BY.get(source, source)}"
                      " shows when you add the webhook>\"", ""]
            continue
        key = "secret" if source in SIGNED_SOURCES else "token"
        value = _standard_webhooks_secret() if source == "native" else secrets.token_urlsafe(24)
        lines += [f'[sources.{_toml_key(source)}]', f'{key} = "{value}"', ""]
    # Create with 0600 from the start: the file must never be readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(path, 0o600)
    return load_settings(config=path), path


def _standard_webhooks_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _toml_key(name: str) -> str:
    return f'"{name}"' if "-" in name else name


def has_credentials(settings: Settings) -> bool:
    return bool(settings.api.tokens or settings.sources)
