"""AWS CloudWatch alarms, delivered by an Amazon SNS HTTPS subscription.

The body is an SNS message (Amazon SNS Developer Guide, "Parsing message formats",
https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html), signed and
checked before this adapter runs (ingest/auth.py ``check_sns``). A ``Notification``'s
``Message`` is a string holding the alarm's JSON, as CloudWatch publishes it to the
topic named in the alarm's actions (AWS's own test payload,
aws/aws-lambda-go ``events/testdata/cloudwatch-alarm-sns-payload-single-metric.json``):
``AlarmName``, ``AlarmDescription``, ``AWSAccountId``, ``NewStateValue``,
``NewStateReason``, ``StateChangeTime`` (``2015-06-03T17:43:27.123+0000``), ``Region``
(a display name such as ``US East (N. Virginia)``), ``AlarmArn``, ``OldStateValue`` and
``Trigger`` (``MetricName``, ``Namespace``, ``Statistic``, ``Dimensions``, ``Period``,
``EvaluationPeriods``, ``DatapointsToAlarm``, ``ComparisonOperator``, ``Threshold``...).

Mapping (kind ``alert``; subject ``<account>/<region>/<alarm name>``, the region's code
from ``AlarmArn`` when it has one, else ``Region`` as sent; TIMELINE.md "subject"):

- ``ALARM`` → ``failing`` at ``StateChangeTime``;
- ``OK`` → ``ok`` at ``StateChangeTime``;
- ``INSUFFICIENT_DATA`` → ``warning``: the alarm cannot evaluate (its metric stopped
  arriving, or it was just created). That is not a recovery (TIMELINE.md rule 3: only
  ``ok`` recovers, a warning leaves a failing subject failing), nor a failure of its own
  (whether missing data means breached is the alarm's ``TreatMissingData``, which turns
  it into ALARM when it does); it is a risk worth listing (rule 6).
- ``SubscriptionConfirmation`` and ``UnsubscribeConfirmation`` → no signal (the
  confirmation itself is made by ingest, after the answer: ingest/sns.py).

``notified_at`` is the SNS ``Timestamp`` (when SNS published it; retries keep it).
CloudWatch sends no severity: the source's ``default_severity`` applies.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, State
from ingest.sources._common import clip, optional, parse_time, require

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

_STATES: dict[str, State] = {"ALARM": "failing", "OK": "ok", "INSUFFICIENT_DATA": "warning"}
_CONFIRMATIONS = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})
_TRIGGER_FACTS = (
    ("MetricName", "metric"), ("Namespace", "namespace"), ("Statistic", "statistic"),
    ("Period", "period_seconds"), ("EvaluationPeriods", "evaluation_periods"),
    ("DatapointsToAlarm", "datapoints_to_alarm"), ("ComparisonOperator", "comparison"),
    ("Threshold", "threshold"), ("TreatMissingData", "treat_missing_data"),
)


def parse(delivery: Delivery) -> list[Signal]:
    envelope = delivery.json()
    kind = require(envelope, "Type", str)
    if kind in _CONFIRMATIONS:
        return []
    if kind != "Notification":
        raise MappingError(f"Type: {kind[:40]!r} is not an Amazon SNS message type")
    text = require(envelope, "Message", str)
    try:
        alarm = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise MappingError("Message: not a CloudWatch alarm (not JSON)") from None
    if not isinstance(alarm, dict):
        raise MappingError("Message: not a CloudWatch alarm (not an object)")
    name = require(alarm, "AlarmName", str, "Message")
    value = require(alarm, "NewStateValue", str, "Message")
    state = _STATES.get(value)
    if state is None:
        raise MappingError(f"Message.NewStateValue: unknown state {value[:40]!r}")
    account = optional(alarm, "AWSAccountId", str, "Message") or ""
    arn = optional(alarm, "AlarmArn", str, "Message")
    region_name = optional(alarm, "Region", str, "Message")
    region = _region_code(arn) or region_name or ""
    subject = "/".join([account, region, name]) if account or region else name
    changed = parse_time(alarm.get("StateChangeTime"))
    published = parse_time(envelope.get("Timestamp"))
    reason = optional(alarm, "NewStateReason", str, "Message") or ""
    summary = clip(f"CloudWatch alarm {name} is {value}" + (f": {reason}" if reason else ""))
    trigger: dict[str, Any] = (alarm["Trigger"] if isinstance(alarm.get("Trigger"), dict)
                               else {})
    attributes: dict[str, Any] = {
        "alarm_arn": arn,
        "account": account or None,
        "region": region_name,
        "old_state": optional(alarm, "OldStateValue", str, "Message"),
        "new_state": value,
        "description": optional(alarm, "AlarmDescription", str, "Message"),
        "topic_arn": optional(envelope, "TopicArn", str),
        "message_id": optional(envelope, "MessageId", str),
    }
    for key, attribute in _TRIGGER_FACTS:
        fact = trigger.get(key)
        if isinstance(fact, str | int | float) and not isinstance(fact, bool) and fact != "":
            attributes[attribute] = str(fact)
    return [
        Signal(
            source=delivery.source,
            kind="alert",
            subject=subject,
            state=state,
            occurred_at=changed or published or delivery.received_at,
            notified_at=published or delivery.received_at,
            time_source="source" if changed or published else "receipt",
            summary=summary,
            action={"failing": "triggered", "ok": "resolved"}.get(state),
            links=_console_link(arn, name),
            labels=_dimensions(trigger.get("Dimensions")),
            attributes=tuple(sorted((k, clip(str(v))) for k, v in attributes.items() if v)),
        )
    ]


def _region_code(arn: str | None) -> str | None:
    """``arn:aws:cloudwatch:us-east-1:123456789012:alarm:Name`` → ``us-east-1``."""
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


def _dimensions(value: Any) -> tuple[tuple[str, str], ...]:
    """The metric's dimensions (``[{"name": ..., "value": ...}]``) as labels."""
    if not isinstance(value, list):
        return ()
    pairs = {}
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            pairs[item["name"]] = str(item.get("value", ""))
    return tuple(sorted(pairs.items()))


def _console_link(arn: str | None, name: str) -> tuple[Link, ...]:
    parts = (arn or "").split(":")
    if len(parts) < 5 or parts[1] not in ("aws", "aws-cn"):
        return ()
    region = parts[3]
    host = ("console.amazonaws.cn" if parts[1] == "aws-cn"
            else f"{region}.console.aws.amazon.com")
    url = (f"https://{host}/cloudwatch/home?region={region}"
           f"#alarmsV2:alarm/{quote(name, safe='')}")
    return (Link(url=url, title="CloudWatch alarm"),)
