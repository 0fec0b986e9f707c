"""Prometheus Alertmanager: the ``webhook_config`` receiver, payload version 4.

Documented in Alertmanager's ``docs/configuration.md`` (``<webhook_config>``) and built by
``notify/webhook/webhook.go`` (``Message``: ``version``, ``groupKey``,
``truncatedAlerts``) around ``template.Data`` (``template/template.go``: ``receiver``,
``status``, ``alerts[]``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``,
``externalURL``). Grafana Alerting sends the same shape with a few additions, so
``grafana.py`` reuses :func:`signals_from_group` and overrides only what differs.

One signal per alert of the group, each alert judged on its own ``status``: a group may
mix firing and resolved alerts.

- subject: the alert's fingerprint (TIMELINE.md: "Alertmanager and Grafana, the alert
  (fingerprint; shown as alertname and its distinguishing labels)"). Both tools send it
  per alert (Alertmanager ``template.Alert.Fingerprint``; Grafana's ``fingerprint``): a
  hash of ALL the alert's labels, so two alerts that differ in any one label, even one
  we never show (``owner``, an e-mail address), are two subjects, and one's resolution
  never closes the other's failure. Without one in the payload, the same fingerprint is
  computed from all the labels (:func:`label_fingerprint`, Prometheus'
  ``model.LabelSet.Fingerprint``), so the identity is alertname + every label, sorted,
  and no label value that names a person is ever shown as a subject. How an alert is
  shown (alertname and its distinguishing labels) is the projections' ``alert_name``,
  from the labels, which the signal keeps (person labels left out).
- occurred_at: ``startsAt`` for a firing alert, ``endsAt`` for a resolved one; a resolved
  alert also carries ``started_at`` = ``startsAt``, so one first seen already resolved is
  a failing period seen after the fact. Go's zero time means unknown: a zero ``endsAt``
  on a resolved alert falls back to the receipt, and says so (``time_source``).
- notified_at: Alertmanager puts no send time in the payload: ``received_at``.
- service: the alert's ``service`` or ``app`` label; else the group labels written as
  sorted ``key=value`` pairs joined by commas (``alertname=HighErrorRate,cluster=eu-1``).
  We keep the key even for a single group label: ``payments`` alone could be a team or a
  namespace, and the ``[services]`` globs can still match ``team=payments``.
- ``truncatedAlerts`` (``max_alerts`` in the receiver): the alerts that were cut are not in
  the body, so they cannot become signals; every signal of such a delivery carries
  ``truncated_alerts`` so the timeline can say it saw only part of the group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, TimeSource
from ingest.sources._common import (
    clip,
    no_people,
    optional,
    parse_time,
    require,
    safe_labels,
    service_from_labels,
    severity_from_labels,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "alertmanager"

# Alert fields holding a URL worth a link, in the order the timeline shows them.
LINK_FIELDS: tuple[tuple[str, str], ...] = (
    ("generatorURL", "source"),
    ("dashboardURL", "dashboard"),
    ("panelURL", "panel"),
    ("silenceURL", "silence"),
    ("imageURL", "image"),
)
# Annotations holding a URL worth a link.
LINK_ANNOTATIONS: tuple[tuple[str, str], ...] = (("runbook_url", "runbook"),)
SUMMARY_ANNOTATIONS = ("summary", "description", "message")

# Extra attributes a source adds from one alert (Grafana: its value string).
ExtraAttributes = Callable[[dict[str, Any]], list[tuple[str, str]]]


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    return signals_from_group(body, delivery, source=SOURCE, notified_at=delivery.received_at)


def signals_from_group(
    body: Any,
    delivery: Delivery,
    *,
    source: str,
    notified_at: datetime,
    extra_attributes: ExtraAttributes | None = None,
) -> list[Signal]:
    """Signals for every alert of an Alertmanager-shaped notification."""
    alerts = require(body, "alerts", list)
    group_labels = optional(body, "groupLabels", dict) or {}
    group_key = optional(body, "groupKey", str)
    truncated = optional(body, "truncatedAlerts", int) or 0
    group_service = _group_service(group_labels)

    signals = []
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise MappingError(f"{where}: expected an object")
        attributes: list[tuple[str, str]] = []
        if group_key:
            attributes.append(("group_key", group_key))
        if truncated > 0:
            attributes.append(("truncated_alerts", str(truncated)))
        if extra_attributes is not None:
            attributes.extend(extra_attributes(alert))
        signals.append(
            _signal(
                alert,
                where,
                delivery,
                source=source,
                notified_at=notified_at,
                group_service=group_service,
                attributes=attributes,
            )
        )
    return signals


def _signal(
    alert: dict[str, Any],
    where: str,
    delivery: Delivery,
    *,
    source: str,
    notified_at: datetime,
    group_service: str | None,
    attributes: list[tuple[str, str]],
) -> Signal:
    status = require(alert, "status", str, where)
    if status not in ("firing", "resolved"):
        raise MappingError(f"{where}.status: expected firing or resolved, got {status[:20]!r}")
    labels = _string_map(require(alert, "labels", dict, where), f"{where}.labels")
    annotations = _string_map(
        optional(alert, "annotations", dict, where) or {}, f"{where}.annotations"
    )
    fingerprint = (optional(alert, "fingerprint", str, where) or "").strip()
    if not fingerprint and not labels:
        raise MappingError(f"{where}.labels: empty, and no fingerprint")
    subject = fingerprint or label_fingerprint(labels)

    starts_at = parse_time(alert.get("startsAt"))
    ends_at = parse_time(alert.get("endsAt"))
    started_at: datetime | None = None
    if status == "firing":
        occurred_at = starts_at
    else:
        occurred_at, started_at = ends_at, starts_at
    time_source: TimeSource = "source"
    if occurred_at is None:
        # No event time in the payload: the receipt is the best we know, and we say so.
        occurred_at, time_source = delivery.received_at, "receipt"

    if fingerprint:
        attributes = [("fingerprint", fingerprint), *attributes]
    shown = safe_labels(labels)
    return Signal(
        source=source,
        kind="alert",
        subject=subject,
        state="failing" if status == "firing" else "ok",
        occurred_at=occurred_at,
        notified_at=notified_at,
        service=service_from_labels(labels) or group_service,
        severity=severity_from_labels(labels),
        summary=_summary(annotations, labels, shown, subject),
        time_source=time_source,
        started_at=started_at,
        links=_links(alert, annotations),
        labels=shown,
        attributes=tuple(attributes),
    )


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint Alertmanager would send for these labels: prometheus/common
    ``model/signature.go`` ``labelSetToFingerprint`` (FNV-1a 64 over every label name and
    value, sorted by name, each followed by the 0xff separator byte), written as
    ``Fingerprint.String()`` does, 16 hex digits."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            digest = ((digest ^ byte) * _FNV_PRIME) & 0xFFFF_FFFF_FFFF_FFFF
    return f"{digest:016x}"


_FNV_OFFSET = 14695981039346656037  # prometheus/common model/fnv.go offset64
_FNV_PRIME = 1099511628211  # prime64


def alert_subject(labels: Mapping[str, str]) -> str:
    """Display only (never an identity): ``alertname{k="v", ...}`` over the other labels,
    sorted. Tool-internal ``__`` labels
    are no part of an alert's identity, and a label naming a person (``owner``, an e-mail
    address) stays out: the subject is shown on the timeline and in the draft."""
    return _subject(labels.get("alertname", ""), safe_labels(labels))


def _subject(name: str, shown: tuple[tuple[str, str], ...]) -> str:
    """:func:`alert_subject` from the alert's ``safe_labels`` (worked out once per alert)."""
    rest = [(k, v) for k, v in shown if k != "alertname"]
    if not rest:
        return name
    inner = ", ".join(f'{key}="{_escape(value)}"' for key, value in rest)
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _group_service(group_labels: Mapping[str, Any]) -> str | None:
    pairs = sorted(
        (str(k), str(v)) for k, v in group_labels.items() if isinstance(v, str) and v.strip()
    )
    return ",".join(f"{k}={v}" for k, v in pairs) or None


def _string_map(value: dict[str, Any], where: str) -> dict[str, str]:
    """Label and annotation values are strings in Alertmanager; anything else is a
    payload we do not understand."""
    for key, item in value.items():
        if not isinstance(item, str):
            raise MappingError(f"{where}.{key}: expected a string")
    return value


def _summary(annotations: Mapping[str, str], labels: Mapping[str, str],
             shown: tuple[tuple[str, str], ...], subject: str) -> str:
    """The first summary annotation, else the alertname, else the alert's labels as
    :func:`alert_subject` writes them (else its subject): worked out only when needed."""
    for key in SUMMARY_ANNOTATIONS:
        text = annotations.get(key, "").strip()
        if text:
            return clip(no_people(text))
    return clip(labels.get("alertname") or _subject("", shown) or subject)


def _links(alert: Mapping[str, Any], annotations: Mapping[str, str]) -> tuple[Link, ...]:
    links = []
    for field, title in LINK_FIELDS:
        url = alert.get(field)
        if isinstance(url, str) and url.strip():
            links.append(Link(url=url.strip(), title=title))
    for key, title in LINK_ANNOTATIONS:
        url = annotations.get(key, "").strip()
        if url.startswith(("http://", "https://")):
            links.append(Link(url=url, title=title))
    return tuple(links)
