"""Helpers every source adapter shares: times, severities, required fields.

Adapters are pure: no I/O, no clock. Anything two adapters need lives here once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

from ingest.delivery import Delivery, MappingError
from ingest.patterns import EMAIL
from ingest.signals import Link, Severity, Signal, State

_FRACTION = re.compile(r"(\.\d+)")
_ZERO_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z, means "unknown"


def parse_time(value: Any, *, assume: tzinfo = UTC) -> datetime | None:
    """An RFC 3339 / ISO 8601 time, or None when missing, empty or Go's zero time.

    Sub-microsecond digits (Alertmanager sends nanoseconds) are truncated; a time without
    a zone is read in ``assume``, the zone the tool documents. Raises MappingError for a
    string that is not a time at all.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_epoch(value)
    if not isinstance(value, str):
        raise MappingError(f"expected a time, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(" UTC"):  # GitLab (Ruby) writes "2016-08-12 15:26:29 UTC"
        text = text[:-4] + "+00:00"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(f"not a time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=assume)
    if parsed.year <= _ZERO_YEAR:
        return None
    return parsed.astimezone(UTC)


def from_epoch(value: float | int | str) -> datetime | None:
    """Unix seconds (or milliseconds, when the number is too large for seconds)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MappingError(f"not a Unix time: {str(value)[:40]!r}") from None
    if number <= 0:
        return None
    if number > 1e11:  # milliseconds since 1970 pass 1e11 in 1973; seconds never will here
        number /= 1000.0
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=number)


_SEVERITY_WORDS: dict[str, Severity] = {
    "critical": "P1",
    "crit": "P1",
    "fatal": "P1",
    "emergency": "P1",
    "disaster": "P1",
    "page": "P1",
    "p1": "P1",
    "sev1": "P1",
    "high": "P2",
    "error": "P2",
    "err": "P2",
    "major": "P2",
    "p2": "P2",
    "sev2": "P2",
    "warning": "P3",
    "warn": "P3",
    "medium": "P3",
    "minor": "P3",
    "average": "P3",
    "p3": "P3",
    "sev3": "P3",
    "info": "P4",
    "informational": "P4",
    "low": "P4",
    "none": "P4",
    "p4": "P4",
    "p5": "P4",
    "sev4": "P4",
}


def severity_from(*candidates: Any) -> Severity | None:
    """The first candidate that names a severity (critical→P1, high/error→P2,
    warning→P3, info→P4, P1…P4 as is), else None for the source's default."""
    for candidate in candidates:
        if isinstance(candidate, str):
            found = _SEVERITY_WORDS.get(candidate.strip().lower())
            if found is not None:
                return found
    return None


def severity_from_labels(labels: Mapping[str, Any]) -> Severity | None:
    return severity_from(labels.get("severity"), labels.get("priority"))


def require(mapping: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """``mapping[key]`` when it exists and has the expected type, else a MappingError
    naming the field, e.g. ``alerts[2].labels: expected an object``."""
    path = f"{where}.{key}" if where else key
    if not isinstance(mapping, dict):
        raise MappingError(f"{where or 'body'}: expected an object")
    if key not in mapping:
        raise MappingError(f"{path}: missing")
    value = mapping[key]
    if not isinstance(value, kind):
        raise MappingError(f"{path}: expected {_type_words(kind)}")
    return value


def optional(mapping: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """Like require, but a missing or null field is None."""
    if not isinstance(mapping, dict) or mapping.get(key) is None:
        return None
    return require(mapping, key, kind, where)


def _type_words(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number",
             float: "a number", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def clip(text: str, limit: int = 500) -> str:
    """Long annotations are kept in the raw body; a summary stays readable."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Labels, tags, people, URLs and bodies (monitor and alert-manager adapters) ---

# Label or tag keys that name a person, not a system. The draft is blameless by
# construction (TIMELINE.md), so these never reach a signal's labels or attributes.
PERSON_KEYS = frozenset(
    {
        "owner", "assignee", "author", "user", "username", "email", "contact", "oncall",
        "on_call", "created_by", "updated_by", "acknowledged_by", "resolved_by",
    }
)


def no_people(text: str) -> str:
    """Text with e-mail addresses masked: annotations sometimes name whom to call."""
    return EMAIL.sub("[email]", text)


def safe_labels(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Sorted (key, value) string pairs for a signal: tool-internal keys (``__x__``),
    person keys and values that hold an e-mail address are left out."""
    pairs = []
    for key, value in labels.items():
        text = "" if value is None else str(value)
        # An address holds "@": the search runs only on the few values that could.
        if key.startswith("__") or key.lower() in PERSON_KEYS or ("@" in text
                                                                 and EMAIL.search(text)):
            continue
        pairs.append((str(key), text))
    return tuple(sorted(pairs))


def service_from_labels(labels: Mapping[str, Any]) -> str | None:
    """The payload's own service hint: a non-empty ``service`` label, else ``app``."""
    for key in ("service", "app"):
        value = labels.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def tag_pairs(tags: Any) -> dict[str, str]:
    """``key:value`` or ``key=value`` words of a tag list or space-separated string
    (Healthchecks, UptimeRobot); bare tags are skipped, the first value per key wins."""
    words = tags.split() if isinstance(tags, str) else tags if isinstance(tags, list) else []
    pairs: dict[str, str] = {}
    for word in words:
        if not isinstance(word, str):
            continue
        key, sep, value = word.partition(":") if ":" in word else word.partition("=")
        if sep and key and value:
            pairs.setdefault(key.strip().lower(), value.strip())
    return pairs


def host_of(url: Any) -> str | None:
    """The host of an http(s) URL, lower-cased; None for anything else."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or "://" not in url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host or None


def http_url(url: Any) -> str | None:
    """A link worth showing: an absolute http(s) URL with a host (Uptime Kuma sends a
    bare ``https://`` for monitors that have no URL)."""
    if isinstance(url, str) and url.startswith(("http://", "https://")) and host_of(url):
        return url.strip()
    return None


def multipart_fields(body: bytes, content_type: str) -> dict[str, str]:
    """Text fields of a multipart/form-data body (Uptime Kuma's "form-data" webhook
    mode); raises BodyError when the body is not one."""
    from email import policy
    from email.parser import BytesParser

    from ingest.delivery import BodyError

    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BodyError("body is not multipart/form-data")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace")
    return fields


# Deploys (TIMELINE.md rule 7), shared by github, gitlab and argocd: one shape for every
# tool, so the projector and the draft read the same attributes whatever sent them.
# ``pipeline_succeeded`` is no deploy event of rule 7 (nothing changed in the running
# system): it exists so that a later successful run of the same pipeline clears the risk a
# failed one left (rule 7: "a risk of its service until a later deploy of the same subject
# succeeds"); the timeline does not list it.
DeployAction = Literal["started", "succeeded", "failed", "pipeline_failed", "pipeline_succeeded"]

_DEPLOY_STATES: dict[str, State] = {
    "started": "info",
    "succeeded": "info",
    "failed": "failing",  # still never opens an incident: kind "deploy" is a change
    "pipeline_failed": "failing",
    "pipeline_succeeded": "info",
}
_DEPLOY_VERBS = {"started": "started", "succeeded": "succeeded", "failed": "failed",
                 "pipeline_failed": "failed", "pipeline_succeeded": "succeeded"}
_HEX_SHA = re.compile(r"[0-9a-f]{7,64}")


def short_sha(sha: str | None, length: int = 7) -> str | None:
    """The abbreviated commit id people recognise (GitHub shows 7 digits, GitLab 8);
    a revision that is not a commit id (a chart version, a tag) is kept whole."""
    if not sha:
        return None
    return sha[:length] if _HEX_SHA.fullmatch(sha) else sha


def deploy_signal(
    delivery: Delivery,
    *,
    subject: str,
    action: DeployAction,
    occurred_at: datetime | None,
    environment: str | None,
    sha: str | None,
    ref: str | None,
    status: str,
    what: str = "Deployment",
    links: Iterable[Link] = (),
    extra: Mapping[str, str | None] | None = None,
    service: str | None = None,
) -> Signal:
    """A ``deploy`` signal: state ``info`` for started/succeeded/pipeline_succeeded,
    ``failing`` for failed and pipeline_failed; attributes ``ref`` (short sha), ``sha``,
    ``environment``, ``status`` plus ``extra``; ``service``, the payload's own hint (a
    pipeline's repository, so its risk stays with the repository's service while its
    subject names the workflow). Never carries people: callers pass none."""
    verb = _DEPLOY_VERBS[action]
    if action in ("pipeline_failed", "pipeline_succeeded"):
        summary = f"{what} {verb} at {ref}" if ref else f"{what} {verb}"
    else:
        summary = what
        if ref:
            summary += f" of {ref}"
        if environment:
            summary += f" to {environment}"
        summary += f" {verb}"
    attributes = {"ref": ref, "sha": sha, "environment": environment, "status": status}
    attributes.update(extra or {})
    return Signal(
        source=delivery.source,
        kind="deploy",
        subject=subject,
        service=service,
        state=_DEPLOY_STATES[action],
        occurred_at=occurred_at or delivery.received_at,
        notified_at=delivery.received_at,
        time_source="source" if occurred_at else "receipt",
        summary=summary,
        action=action,
        links=tuple(links),
        attributes=tuple(sorted((k, v) for k, v in attributes.items() if v)),
    )


def scalar_text(body: Mapping[str, Any], key: str) -> str:
    """A template-rendered field as stripped text: a string or a number (a template may
    render a variable with or without quotes), "" when missing or null; MappingError
    naming the field for anything else (Checkly, Pingdom, Gatus)."""
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(f"{key}: expected a string or a number")
    return str(value).strip()
