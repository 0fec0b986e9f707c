"""Human, blameless text for titles and timeline entries.

Entries name systems and checks, never people: deploy texts use the ref and the
environment only (no author, no commit message), acknowledgements say that the page was
acknowledged, not by whom.

Checks are shown by name (``alert_name``). A monitor, a cron check, a certificate or a
repository is its subject. An alert (Alertmanager, Grafana) is not: its subject is its
identity, ``alertname{label="value", ...}`` over every label, which nobody can read in a
title. It is shown as its ``alertname`` and at most two label values, each the first
one present of a fixed list:

1. what part of the system it is about (``for``): ``route``, ``handler``, ``path``,
   ``endpoint``, ``queue``, ``topic``, ``database``, ``mountpoint``, ``device``,
   ``container``;
2. where it fires (``on``): ``instance``, ``pod``, ``host``, ``hostname``, ``node``,
   ``job``, ``cluster``: the scrape target if there is one, else the most specific
   place named.

``HighErrorRate on 10.42.3.17:8080``, ``OrdersLatencyHigh for /v1/orders on
prod-eu-1``. Labels shared by every alert of a service (``service``, ``namespace``,
``severity``, ``team``) or that only repeat the place (``job`` next to ``instance``)
are left out: the subject, kept on every entry, still tells two alerts apart. An alert
without an ``alertname`` label is shown by its subject.
"""

from __future__ import annotations

from functools import lru_cache

from ingest.patterns import short_revision
from ingest.signals import Signal

_FAILING = {"uptime": "down", "cron": "down", "ssl": "certificate expired or invalid",
            "alert": "firing"}
_RECOVERED = {"uptime": "up again", "cron": "up again", "ssl": "certificate valid again",
              "alert": "resolved"}
_WARNING = {"ssl": "certificate expires soon"}
_DEPLOY_VERBS = {"started": "started", "succeeded": "succeeded", "failed": "failed"}
_ALERT_PART = ("route", "handler", "path", "endpoint", "queue", "topic", "database",
               "mountpoint", "device", "container")
_ALERT_PLACE = ("instance", "pod", "host", "hostname", "node", "job", "cluster")


def _first_label(labels: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = labels.get(key, "").strip()
        if value:
            return value
    return None


def alert_name(signal: Signal) -> str:
    """How a check is named in texts: an alert by its alertname and at most two
    distinguishing label values (the module's rule), anything else by its subject."""
    if signal.kind != "alert":
        return signal.subject
    return _alert_title(signal.labels) or signal.subject


# Texts name an alert several times per signal (its entry, its check, its service), and
# an alert's labels recur with every repeat: the title is a function of the labels alone.
@lru_cache(maxsize=65_536)
def _alert_title(label_pairs: tuple[tuple[str, str], ...]) -> str | None:
    labels = dict(label_pairs)
    name = labels.get("alertname", "").strip()
    if not name:
        return None
    part = _first_label(labels, _ALERT_PART)
    place = _first_label(labels, _ALERT_PLACE)
    return name + (f" for {part}" if part else "") + (f" on {place}" if place else "")


def _verb(signal: Signal, state: str) -> str:
    if state == "failing":
        return _FAILING.get(signal.kind, "failing")
    if state == "warning":
        return _WARNING.get(signal.kind, "warning")
    if state == "info":
        return "reported"
    return _RECOVERED.get(signal.kind, "recovered")


def _with_summary(text: str, signal: Signal) -> str:
    # An alert with no summary annotation is summarised by its alertname: already said.
    quiet = not signal.summary or signal.summary in (
        signal.subject, signal.label_map.get("alertname"))
    return text if quiet else f"{text}: {signal.summary}"


def check_name(signal: Signal) -> str:
    """``Checkout API (uptime-kuma)``: the check (``alert_name``) and the tool that runs
    it."""
    return f"{alert_name(signal)} ({signal.source})"


def state_text(signal: Signal, state: str) -> str:
    """``Checkout API (uptime-kuma) down: connect ECONNREFUSED``."""
    return _with_summary(f"{check_name(signal)} {_verb(signal, state)}", signal)


def period_start_text(signal: Signal) -> str:
    """The start of a failing period we only learned about once it had ended."""
    return _with_summary(
        f"{check_name(signal)} {_verb(signal, 'failing')} (reported once recovered)", signal
    )


def pending_text(signal: Signal) -> str:
    """A firing alert's start, dated back to when its rule's condition began to hold:
    ``HighErrorRate (alertmanager) pending: the rule waited for: 5m before firing``."""
    waited = signal.attribute_map.get("pending_for")
    how = f"the rule waited for: {waited} before firing" if waited else (
        "its rule's condition held from here until it fired")
    return _with_summary(f"{check_name(signal)} pending ({how})", signal)


def title_for(service: str, signal: Signal) -> str:
    """An incident's title, from the signal that opened it: what happened to the
    service, ``checkout: HighErrorRate on 10.42.3.17:8080 firing``."""
    name = alert_name(signal)
    what = f"{name} {_verb(signal, 'failing')}"
    return what if name == service else f"{service}: {what}"


def detected_text(signal: Signal) -> str:
    return f"Detected: {check_name(signal)} notified"


def ack_text(signal: Signal) -> str:
    return f"{check_name(signal)} page acknowledged"


def deploy_text(signal: Signal) -> str:
    """``Deployment of 4f2c9e1 to production succeeded``."""
    attributes = signal.attribute_map
    raw_ref = attributes.get("ref") or attributes.get("sha") or attributes.get("commit")
    ref = short_revision(raw_ref) if raw_ref else signal.subject
    env = attributes.get("environment")
    target = f" to {env}" if env else ""
    if signal.action == "pipeline_failed":
        return f"Pipeline for {ref}{target} failed"
    verb = _DEPLOY_VERBS.get(signal.action or "")
    return f"Deployment of {ref}{target}" + (f" {verb}" if verb else "")
