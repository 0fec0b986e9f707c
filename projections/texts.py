"""Human, blameless text for titles and timeline entries.

Entries name systems and checks, never people: deploy texts use the ref and the
environment only (no author, no commit message), acknowledgements say that the page was
acknowledged, not by whom.
"""

from __future__ import annotations

import re

from ingest.signals import Signal

_FAILING = {"uptime": "down", "cron": "down", "ssl": "certificate expired or invalid",
            "alert": "firing"}
_RECOVERED = {"uptime": "up again", "cron": "up again", "ssl": "certificate valid again",
              "alert": "resolved"}
_WARNING = {"ssl": "certificate expires soon"}
_DEPLOY_VERBS = {"started": "started", "succeeded": "succeeded", "failed": "failed"}
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def _verb(signal: Signal, state: str) -> str:
    if state == "failing":
        return _FAILING.get(signal.kind, "failing")
    if state == "warning":
        return _WARNING.get(signal.kind, "warning")
    if state == "info":
        return "reported"
    return _RECOVERED.get(signal.kind, "recovered")


def _with_summary(text: str, signal: Signal) -> str:
    return f"{text}: {signal.summary}" if signal.summary else text


def check_name(signal: Signal) -> str:
    """``Checkout API (uptime-kuma)``: the check and the tool that runs it."""
    return f"{signal.subject} ({signal.source})"


def state_text(signal: Signal, state: str) -> str:
    """``Checkout API (uptime-kuma) down: connect ECONNREFUSED``."""
    return _with_summary(f"{check_name(signal)} {_verb(signal, state)}", signal)


def period_start_text(signal: Signal) -> str:
    """The start of a failing period we only learned about once it had ended."""
    return _with_summary(
        f"{check_name(signal)} {_verb(signal, 'failing')} (reported once recovered)", signal
    )


def title_for(service: str, signal: Signal) -> str:
    """An incident's title, from the signal that opened it."""
    what = f"{signal.subject} {_verb(signal, 'failing')}"
    return what if signal.subject == service else f"{service}: {what}"


def detected_text(signal: Signal) -> str:
    return f"Detected: {check_name(signal)} notified"


def ack_text(signal: Signal) -> str:
    return f"{check_name(signal)} page acknowledged"


def short_ref(ref: str) -> str:
    return ref[:7] if _FULL_SHA.match(ref) else ref


def deploy_text(signal: Signal) -> str:
    """``Deployment of 4f2c9e1 to production succeeded``."""
    attributes = signal.attribute_map
    raw_ref = attributes.get("ref") or attributes.get("sha") or attributes.get("commit")
    ref = short_ref(raw_ref) if raw_ref else signal.subject
    env = attributes.get("environment")
    target = f" to {env}" if env else ""
    if signal.action == "pipeline_failed":
        return f"Pipeline for {ref}{target} failed"
    verb = _DEPLOY_VERBS.get(signal.action or "")
    return f"Deployment of {ref}{target}" + (f" {verb}" if verb else "")
