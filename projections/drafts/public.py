"""The public summary: what the status page, its Atom feed and the draft's section 7 say.

One function for all three, so they cannot drift. It is built from a short list of safe
facts only (the service's public name, times, duration and a generic phrase for the kind
of impact), never from subjects, labels, links or free text, because those carry
hostnames, IPs, repository names and sometimes people. ``scrub`` runs over the result as
a second line of defence.

The public name differs by reader. On the status page, open to anyone, it is the display
name an operator configured for the service (``[status] public_services``), else
``one of our services``: no heuristic decides that "jenkins" or "vpn-gw" is fit to
publish. In the draft, read by engineers who edit it before posting, it is
``public_name``'s reading of the service name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from ingest.patterns import EMAIL
from projections.engine.model import Incident

INTERNAL = "[internal]"
# What the status page calls a service no operator listed in [status] public_services.
ANONYMOUS = "one of our services"
# Stands for the public name while a text is scrubbed: no letters, so nothing matches it.
_NAME = "\x00\x01"

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# A dotted name whose last label is alphabetic (a TLD-like word), optionally with a port:
# "api.example.com", "db-01.internal:5432". "v1.2" and "3.5" do not match.
_HOST = re.compile(
    r"(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]"
    r"(?::\d{1,5})?(?![\w-])",
    re.IGNORECASE,
)
# Candidates for IP addresses: digits and dots, or hex and colons (checked by ipaddress).
_IP_CANDIDATE = re.compile(r"[0-9a-f:.]*[:.][0-9a-f:.%]*(?:/\d{1,3})?", re.IGNORECASE)
# Characters that mark a string as an identifier rather than a name a user would know:
# paths and repositories (/), label matchers (= { }), addresses (@), ports (:).
_IDENTIFIER_MARKS = re.compile(r"[/=@{}\\:<>\[\]\"']")


def _is_ip(token: str) -> bool:
    text = token.strip("[]()")
    if text.count(":") == 1 and "." in text:  # 10.0.0.1:9100
        text = text.rsplit(":", 1)[0]
    text = text.split("%", 1)[0]
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ip_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _IP_CANDIDATE.finditer(text):
        # Trailing punctuation is not part of an address; leading colons can be ("::1").
        token = match.group(0).strip(".")
        if token.endswith(":") and not token.endswith("::"):
            token = token.rstrip(":")
        if token and _is_ip(token):
            start = text.index(token, match.start())
            spans.append((start, start + len(token)))
    return spans


def is_host_like(text: str) -> bool:
    """Whether ``text`` holds a URL, an e-mail address, an IP address (v4 or v6, with or
    without a port or prefix length) or a dotted host name."""
    return bool(
        _URL.search(text) or EMAIL.search(text) or _HOST.search(text) or _ip_spans(text)
    )


def looks_internal(text: str) -> bool:
    """Host-like, or shaped like an internal identifier (a path or repository, a label
    matcher, an address): not something to show the public."""
    return is_host_like(text) or bool(_IDENTIFIER_MARKS.search(text))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URLs, e-mail addresses, IPs, host names and every string of
    ``secrets`` (case-insensitive; e.g. an incident's subjects) replaced by ``[internal]``.
    """
    # Longest first, so a subject that contains another is replaced whole.
    for secret in sorted({s for s in secrets if s.strip()}, key=lambda s: (-len(s), s)):
        # Whole words only: a subject "api" must not eat "rapid".
        pattern = r"(?<![\w-])" + re.escape(secret) + r"(?![\w-])"
        text = re.sub(pattern, INTERNAL, text, flags=re.IGNORECASE)
    text = _URL.sub(INTERNAL, text)
    text = EMAIL.sub(INTERNAL, text)
    for start, end in reversed(_ip_spans(text)):
        text = text[:start] + INTERNAL + text[end:]
    return _HOST.sub(INTERNAL, text)


# Impact by kind, most specific first; (resolved, ongoing) phrasings with {name}.
_IMPACT: tuple[tuple[str, str, str], ...] = (
    ("ssl", "a certificate problem made {name} unreachable",
     "a certificate problem is making {name} unreachable"),
    ("uptime", "{name} was unavailable", "{name} is unavailable"),
    ("cron", "scheduled processing in {name} was delayed",
     "scheduled processing in {name} is delayed"),
    ("alert", "{name} was degraded", "{name} is degraded"),
)
_DISRUPTED = ("{name} was disrupted", "{name} is disrupted")


def failing_kinds(incident: Incident) -> frozenset[str]:
    """The kinds of check that failed in ``incident`` (deploys and notes never count)."""
    kinds: set[str] = {e.kind for e in incident.timeline if e.state == "failing"}
    kinds.update(incident.kinds)
    return frozenset(kinds - {"deploy", "manual"})


def _impact_templates(incident: Incident) -> tuple[str, str]:
    kinds = failing_kinds(incident)
    for kind, past, present in _IMPACT:
        if kind in kinds:
            return past, present
    return _DISRUPTED


def impact_phrase(incident: Incident, name: str, *, ongoing: bool = False) -> str:
    """A generic phrase for what users experienced, e.g. ``{name} was unavailable``."""
    past, present = _impact_templates(incident)
    return (present if ongoing else past).format(name=name)


def ongoing_since(incident: Incident, name: str, start: str) -> str:
    """An ongoing impact in the present perfect: ``{name} has been degraded since
    {start}`` (never "since X, {name} is degraded")."""
    present = _impact_templates(incident)[1].replace(" is ", " has been ", 1)
    return f"{present.format(name=name)} since {start}"


def is_published(incident: Incident, public_services: Mapping[str, str]) -> bool:
    """Whether the status page shows ``incident``: one users saw (``public``) of a service
    ``[status] public_services`` lists, or one an engineer marked public; never a merged
    one (``status_page``'s query, as a predicate)."""
    listed = incident.service.lower() in {s.lower() for s in public_services}
    return (incident.public and incident.merged_into is None
            and (listed or incident.marked_public is True))


def public_name(incident: Incident) -> str:
    """``the checkout service``, or ``one of our services`` when the service name is an
    internal identifier (a host, a repository, a label matcher)."""
    service = " ".join(incident.service.split())
    if not service or looks_internal(service) or len(service) > 60:
        return ANONYMOUS
    if service.lower().endswith("service"):
        return f"the {service}"
    return f"the {service} service"


def _public_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def public_duration(seconds: float) -> str:
    """Rounded to the minute for readers: ``28 minutes``, ``1 hour 5 minutes``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    for amount, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")):
        if amount:
            parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
    return " ".join(parts)


def display_name(incident: Incident, public_services: Mapping[str, str]) -> str:
    """The name the status page gives ``incident``'s service: its display name when
    ``[status] public_services`` lists the service (matched without regard to case),
    else ``one of our services``. The service's own name is never shown there: only an
    operator's explicit choice reaches the public, no heuristic."""
    names = {service.lower(): name for service, name in public_services.items()}
    return names.get(incident.service.lower(), ANONYMOUS)


def _hidden(incident: Incident) -> list[str]:
    return [s for s in incident.subjects if s.lower() != incident.service.lower()]


def _with_name(template: str, incident: Incident, name: str) -> str:
    """``template`` scrubbed of the incident's subjects and service, then ``{name}``
    filled in: a display name an operator chose is shown as given, even when it equals
    a subject; nothing else of the incident can come through."""
    hidden = [*incident.subjects, incident.service]
    return scrub(template, hidden).replace(_NAME, name)


def public_summary(incident: Incident, name: str | None = None) -> str:
    """A few plain sentences for the status page: when, how long, what kind of impact.

    No hostnames, IPs, label values, URLs, repository names, subjects or people:
    nothing but the facts named in the module docstring goes in. ``name`` is the
    service's public name (the status page's display name); without it (the draft's
    section 7, for an engineer to edit), ``public_name``'s reading of the service.
    """
    if name is not None:
        return _capital(_with_name(_summary(incident, _NAME), incident, name))
    # Belt and braces: the subjects must never appear, even if a service name equals one
    # of them in a way looks_internal cannot see.
    return _capital(scrub(_summary(incident, public_name(incident)), _hidden(incident)))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def public_title(incident: Incident, name: str) -> str:
    """``Checkout was unavailable``: the impact phrase with the public name, nothing more."""
    phrase = impact_phrase(incident, _NAME, ongoing=incident.resolved_at is None)
    text = _with_name(phrase, incident, name)
    return text[:1].upper() + text[1:]


def _summary(incident: Incident, name: str) -> str:
    start = _public_time(incident.started_at)
    if incident.resolved_at is None:
        text = (
            f"{ongoing_since(incident, name, start)}. "
            "We are working on it and will update this page when it is resolved."
        )
    else:
        impact = impact_phrase(incident, name)
        seconds = (incident.resolved_at - incident.started_at).total_seconds()
        text = (
            f"From {start} to {_public_time(incident.resolved_at)} "
            f"({public_duration(seconds)}), {impact}. The issue has been resolved."
        )
    return text
