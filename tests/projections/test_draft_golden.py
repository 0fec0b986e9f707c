"""Golden drafts: the full Markdown and JSON of two scenarios, kept as reviewed files.

Each incident is what the real adapters and engine make of recorded deliveries in each
tool's documented format (issue 10: goldens are built from adapter output, never from
hand-built incidents): the checkout outage of the documented fixtures, and an orders
latency alert notified 14 minutes late beside an error-budget alert that notified first.

A change to a draft shows as a diff here. After reading a changed draft and judging it
right, rewrite the files with ``HINDSIGHT_UPDATE_GOLDEN=1 pytest tests/projections``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.delivery import Delivery, keep_headers
from projections.drafts.draft import Draft, build_draft
from projections.drafts.markdown import to_markdown
from projections.engine.fold import EngineConfig
from projections.engine.model import Incident
from tests.api.test_postmortem import CHECKOUT_OUTAGE, SERVICES
from tests.projections.test_draft_scenarios import checkout_action_items, t
from tests.scenarios.payloads import Alert, Recorded, alertmanager
from tests.sources.folding import fold

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HINDSIGHT_UPDATE_GOLDEN") == "1"

def only_incident(*deliveries: Delivery | tuple[str, str]) -> Incident:
    engine = fold(*deliveries, config=EngineConfig(services=SERVICES))
    [incident] = engine.incidents()
    return incident


def checkout_draft() -> Draft:
    """A team that lists checkout on its status page ([status] public_services)."""
    fixtures = [(source, name) for source, name in (n.split("/") for n in CHECKOUT_OUTAGE)]
    incident = only_incident(*fixtures)
    items = [dataclasses.replace(item, incident_id=incident.id)
             for item in checkout_action_items()]
    return build_draft(incident, items, public_services={"checkout": "Checkout"})


def delivered(recorded: Recorded) -> Delivery:
    return Delivery(recorded.source, recorded.body, recorded.received_at,
                    keep_headers(recorded.headers))


def p1_detection_gap_draft() -> Draft:
    """Latency rises at 09:00 but its alert (a long ``for`` and group_wait) notifies only
    at 09:14:30; the error-budget alert, starting at 09:10:30, notifies first at 09:12 and
    repeats until it resolves at 09:36; latency resolves at 09:40. Not on the status
    page."""
    def group(received: str, burn_end: str | None = None, latency_end: str | None = None,
              only: str | None = None) -> Delivery:
        alerts = [
            Alert("orders-api-0:8080", t("2026-03-03T09:00:00"),
                  None if latency_end is None else t(latency_end),
                  alertname="OrdersLatencyHigh", service="orders", severity="critical"),
            Alert("orders-api-0:8080", t("2026-03-03T09:10:30"),
                  None if burn_end is None else t(burn_end),
                  alertname="OrdersErrorBudgetBurn", service="orders", severity="critical"),
        ]
        chosen = [a for a in alerts if only is None or a.alertname == only]
        return delivered(alertmanager(chosen, t(received)))

    incident = only_incident(
        group("2026-03-03T09:12:00", only="OrdersErrorBudgetBurn"),
        group("2026-03-03T09:14:30"),
        group("2026-03-03T09:19:30"),  # a repeat: both still firing
        group("2026-03-03T09:36:30", burn_end="2026-03-03T09:36:00"),
        group("2026-03-03T09:40:30", burn_end="2026-03-03T09:36:00",
              latency_end="2026-03-03T09:40:00"),
    )
    return build_draft(incident, [])


DRAFTS: dict[str, Callable[[], Draft]] = {
    "checkout_outage": checkout_draft,
    "p1_detection_gap": p1_detection_gap_draft,
}


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"{path.name} (golden)", tofile=f"{path.name} (built)"))
        pytest.fail(f"the draft differs from {path}:\n{diff}", pytrace=False)


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_the_markdown_draft_matches_its_golden_file(name: str) -> None:
    _compare(GOLDEN / f"{name}.md", to_markdown(DRAFTS[name]()))


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_the_json_draft_matches_its_golden_file(name: str) -> None:
    text = json.dumps(DRAFTS[name]().to_json(), indent=2, ensure_ascii=False) + "\n"
    _compare(GOLDEN / f"{name}.json", text)
