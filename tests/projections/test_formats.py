"""One way to write durations and times (projections.drafts.formats), the same in the
dashboard's JavaScript (static/dashboard/assets/format.js)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from projections.drafts.formats import (
    UNKNOWN,
    duration,
    exact_seconds,
    plural,
    prose_time,
    table_time,
)

FORMAT_JS = (Path(__file__).resolve().parents[2] / "projections" / "web" / "static" / "dashboard"
             / "assets" / "format.js")


@pytest.mark.parametrize(("seconds", "text"), [
    (3121, "52 min 1 s"),
    (3645, "1 h 45 s"),          # no "0 min": only units that are not zero
    (3600, "1 h"),
    (259_200 + 7200, "3 d 2 h"),
    (45, "45 s"),
    (0, "0 s"),
    (0.118, "0.118 s"),          # under half a second: three significant digits
    (0.00012, "0.00012 s"),
    (434.5, "7 min 15 s"),       # halves up, in every view
    (60.675, "1 min 1 s"),
    (3040.4, "50 min 40 s"),
    (-5, "−5 s"),
    (None, UNKNOWN),
])
def test_a_duration_is_written_one_way(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_the_exact_figure_keeps_the_fraction() -> None:
    assert (exact_seconds(434.5), exact_seconds(130.0)) == ("434.5 s", "130 s")


def test_prose_times_are_to_the_second_and_tables_keep_the_source_precision() -> None:
    """TIMELINE.md: timestamps keep the precision the source gave (tables, JSON);
    sentences name the second."""
    at = datetime(2025, 3, 14, 14, 4, 50, 118000, tzinfo=UTC)
    assert prose_time(at) == "2025-03-14T14:04:50Z"
    assert prose_time(at.replace(microsecond=500000)) == "2025-03-14T14:04:51Z"
    assert table_time(at) == "2025-03-14T14:04:50.118Z"


def test_plurals_agree_with_their_count() -> None:
    assert [plural(n, "incident") for n in (0, 1, 2)] == [
        "0 incidents", "1 incident", "2 incidents"]
    assert plural(1, "delivery", "deliveries") == "1 delivery"


SAMPLES = [0, 0.118, 0.4, 0.5, 1.5, 2.5, 59.5, 60, 434.5, 2218.604, 3040.4, 3599.5, 3645,
           86399.5, 266_400 + 7200 + 59, -5, -0.25]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run format.js")
def test_the_dashboard_writes_durations_as_the_cli_and_drafts_do() -> None:
    script = (f"const f = require({json.dumps(str(FORMAT_JS))});"
              f"process.stdout.write(JSON.stringify({json.dumps(SAMPLES)}.map(f.duration)"
              ".concat([f.duration(null), f.plural(1, 'incident'), f.plural(3, 'incident')])))")
    found = json.loads(subprocess.run(["node", "-e", script], check=True,  # noqa: S603, S607
                                      capture_output=True, text=True).stdout)
    assert found == [*(duration(s) for s in SAMPLES), UNKNOWN, "1 incident", "3 incidents"]
