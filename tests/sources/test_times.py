"""How every adapter's times are written out (ingest.signals.format_time).

TIMELINE.md: "Timestamps keep the precision the source gave; every time we emit is
RFC 3339 in UTC (``Z``)." RFC 3339 section 5.6 (``time-secfrac = "." 1*DIGIT``) allows
any number of fractional digits, so a time is written with the fewest digits that state
it exactly: digits the source never sent are not invented.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from ingest.delivery import Delivery
from ingest.signals import format_time
from ingest.sources import alertmanager

RECEIVED = datetime(2025, 3, 14, 10, 0, 1, tzinfo=UTC)


def alert_starting_at(starts_at: str) -> Delivery:
    """An Alertmanager webhook (docs/configuration.md ``<webhook_config>``) whose alert
    started at ``starts_at``, as Go's RFC 3339 (nano) formatting writes it."""
    body = {"version": "4", "status": "firing", "receiver": "hindsight", "groupLabels": {},
            "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate"},
                        "annotations": {}, "startsAt": starts_at,
                        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0a1b2c3d4e5f6a7b"}]}
    return Delivery(source="alertmanager", body=orjson.dumps(body), received_at=RECEIVED)


@pytest.mark.parametrize(
    ("sent", "emitted"),
    [
        ("2025-03-14T10:00:00.5Z", "2025-03-14T10:00:00.5Z"),
        ("2025-03-14T10:00:00Z", "2025-03-14T10:00:00Z"),
        ("2025-03-14T10:00:00.123Z", "2025-03-14T10:00:00.123Z"),
        ("2025-03-14T10:00:00.123456Z", "2025-03-14T10:00:00.123456Z"),
        # Go writes nanoseconds; a datetime holds microseconds: the rest is truncated.
        ("2025-03-14T10:00:00.123456789Z", "2025-03-14T10:00:00.123456Z"),
        ("2025-03-14T12:00:00.25+02:00", "2025-03-14T10:00:00.25Z"),
    ],
)
def test_a_source_time_is_emitted_with_the_digits_it_was_sent_with(sent: str,
                                                                   emitted: str) -> None:
    [signal] = alertmanager.parse(alert_starting_at(sent))

    assert signal.to_json()["occurred_at"] == emitted


def test_half_a_second_is_not_written_as_six_digits() -> None:
    """Issue 10: a source time of .5 s was emitted as .500000."""
    assert format_time(datetime(2025, 3, 14, 10, 0, 0, 500000, tzinfo=UTC)) == (
        "2025-03-14T10:00:00.5Z")


@pytest.mark.parametrize("micro", [0, 1, 10, 500000, 120000, 999999, 123450])
def test_every_emitted_time_reads_back_as_the_same_instant(micro: int) -> None:
    value = datetime(2025, 3, 14, 12, 0, 0, micro, tzinfo=timezone(timedelta(hours=2)))
    text = format_time(value)

    seconds, _, fraction = text.removesuffix("Z").partition(".")
    assert text.endswith("Z")
    assert seconds == "2025-03-14T10:00:00"
    assert fraction == f"{micro:06d}".rstrip("0")
    assert datetime.fromisoformat(text) == value
