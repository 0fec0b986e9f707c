"""Which service a signal belongs to (TIMELINE.md "service"): the ``[services]`` mapping
on a signal's names, through the engine as the projector runs it, with the real
Alertmanager and Grafana fixtures.

An alert's subject is its fingerprint (TIMELINE.md, "Subjects, per source":
"Alertmanager and Grafana, the alert (fingerprint; shown as alertname and its
distinguishing labels)"): a hash nobody writes a pattern for. Patterns are also tried on
how the alert is shown, so ``HighErrorRate*`` still means the HighErrorRate alerts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery
from ingest.sources.alertmanager import label_fingerprint
from projections.engine.fold import Engine, EngineConfig
from projections.engine.services import ServiceMap
from tests.fixtures import load_fixture
from tests.helpers import signed_headers
from tests.projections.test_engine_support import sig
from tests.scenarios.harness import only_incident, settle
from tests.sources.folding import fold

# The two alerts of tests/fixtures/alertmanager/firing.json, by fingerprint.
EDC7 = "edc7efd6ab2dbe0f"  # HighErrorRate on 10.42.3.17:8080
A2BD = "a2bd7146b43d80d8"  # HighErrorRate on 10.42.5.9:8080


def services_by_subject(engine: Engine) -> dict[str, str]:
    return {subject: incident.service for incident in engine.incidents()
            for subject in incident.subjects}


def fold_with(services: Mapping[str, Sequence[str]], *items: Delivery | tuple[str, str]
              ) -> Engine:
    return fold(*items, config=EngineConfig(services=services))


def test_a_glob_on_the_alert_name_maps_alertmanager_alerts() -> None:
    """TIMELINE.md "service": the configured mapping wins over the payload's ``service``
    label (``checkout`` in the fixture); the pattern is written against the alert's name,
    as it is shown, not its fingerprint."""
    engine = fold_with({"payments": ["higherrorrate*"]}, ("alertmanager", "firing"))
    assert services_by_subject(engine) == {EDC7: "payments", A2BD: "payments"}


def test_a_glob_on_the_alert_name_maps_grafana_alerts() -> None:
    """Grafana sends Alertmanager's shape with a ``fingerprint`` per alert (its webhook
    notifier docs); its alerts are matched on their shown names the same way."""
    engine = fold_with({"storage": ["DiskIOSaturation on pg-orders-*"]},
                       ("grafana", "grouped_firing"))
    assert set(services_by_subject(engine).values()) == {"storage"}
    assert len(services_by_subject(engine)) == 2
    # Without the mapping, the payload's own label decides.
    assert set(services_by_subject(fold(("grafana", "grouped_firing"))).values()) == {
        "orders-db"}


def test_patterns_written_against_the_labels_still_match() -> None:
    """Before fingerprints, an alert's subject was ``alertname{label="value", ...}``;
    that form is one of the names tried, so a configuration written for it keeps its
    meaning."""
    engine = fold_with({"edge": ['HighErrorRate{instance="10.42.5.9:8080"*']},
                       ("alertmanager", "firing"))
    assert services_by_subject(engine) == {EDC7: "checkout", A2BD: "edge"}


def test_an_exact_name_beats_any_glob_and_the_subject_comes_first() -> None:
    """``ServiceMap``'s order: an exact pattern beats any glob (on any name); among
    exact patterns, and then among globs, the subject is tried before the shown names."""
    exact_shown = fold_with({"a": ["HighErrorRate*"], "b": ["HighErrorRate on 10.42.3.17:8080"]},
                            ("alertmanager", "firing"))
    assert services_by_subject(exact_shown) == {EDC7: "b", A2BD: "a"}
    exact_subject = fold_with({"a": ["HighErrorRate on 10.42.3.17:8080"], "z": [EDC7]},
                              ("alertmanager", "firing"))
    assert services_by_subject(exact_subject)[EDC7] == "z"
    glob_subject = fold_with({"a": ["higherrorrate*"], "b": ["edc7*"]},
                             ("alertmanager", "firing"))
    assert services_by_subject(glob_subject) == {EDC7: "b", A2BD: "a"}


def test_other_subjects_are_matched_as_before() -> None:
    """A monitor's subject is its name (TIMELINE.md, "Subjects, per source"): nothing
    else is tried, and an alert-like pattern does not reach it."""
    services = ServiceMap({"web": ["checkout*"], "alerts": ["HighErrorRate*"]})
    assert services.service_of(sig("Checkout API", service=None)) == "web"
    assert services.service_of(sig("HighErrorRate API", service=None)) == "alerts"
    assert services.service_of(sig("Inventory", service=None)) == "Inventory"


def _ungrouped(labels_per_alert: Sequence[Mapping[str, str]], status: str = "firing",
               offset: timedelta = timedelta(0)) -> Delivery:
    """tests/fixtures/alertmanager/firing.json as a route without ``group_by`` sends it
    (Alertmanager docs, ``<route>``: no ``group_by`` and ``groupLabels`` is empty) for
    alerts without a ``service`` or ``app`` label; each alert's ``fingerprint`` is the one
    Alertmanager computes over its labels."""
    fixture = load_fixture("alertmanager", "firing").delivery()
    body: dict[str, Any] = orjson.loads(fixture.body)
    template = body["alerts"][0]
    alerts = []
    for labels in labels_per_alert:
        alert = dict(template, labels=dict(labels), fingerprint=label_fingerprint(labels),
                     status=status)
        if status == "resolved":
            alert["endsAt"] = "2025-03-14T10:20:12.345Z"
        alerts.append(alert)
    body.update(alerts=alerts, groupLabels={}, commonLabels={}, status=status,
                groupKey="{}:{}")
    return dataclasses.replace(fixture, body=orjson.dumps(body),
                               received_at=fixture.received_at + offset)


ON_17 = {"alertname": "HighErrorRate", "instance": "10.42.3.17:8080", "job": "checkout-api",
         "severity": "critical"}


def test_an_alert_named_by_nothing_belongs_to_the_service_named_as_it_is_shown() -> None:
    """TIMELINE.md "service": with no mapping, no ``service``/``app`` label and no group
    labels, "else the subject"; an alert's subject is "shown as alertname and its
    distinguishing labels", so its service is that shown name, never the fingerprint."""
    engine = fold(_ungrouped([ON_17]))
    (incident,) = engine.incidents()
    assert incident.service == "HighErrorRate on 10.42.3.17:8080"
    assert incident.subjects == (label_fingerprint(ON_17),)


def test_alerts_shown_alike_share_the_service_but_stay_two_subjects() -> None:
    """Two alerts that differ only in a label nobody is shown (``owner``) are one thing to
    users (one service, one incident) but two subjects (TIMELINE.md: the fingerprint is
    the identity): one's resolution does not resolve the incident while the other still
    fails (rule 3: it resolves when every subject that failed in it is ok)."""
    mine, yours = dict(ON_17, owner="ana"), dict(ON_17, owner="bo")
    engine = fold(_ungrouped([mine, yours]),
                  _ungrouped([mine], status="resolved", offset=timedelta(minutes=20)))
    (incident,) = engine.incidents()
    assert incident.service == "HighErrorRate on 10.42.3.17:8080"
    assert set(incident.subjects) == {label_fingerprint(mine), label_fingerprint(yours)}
    assert incident.resolved_at is None
    both = fold(_ungrouped([mine, yours]),
                _ungrouped([mine, yours], status="resolved", offset=timedelta(minutes=20)))
    assert both.incidents()[0].resolved_at is not None


@pytest.mark.parametrize("name", ["HIGHERRORRATE on 10.42.3.17:8080", "higherrorrate*"])
def test_patterns_are_case_insensitive_on_shown_names(name: str) -> None:
    """API.md ``[services]``: case-insensitive globs."""
    engine = fold_with({"payments": [name]}, ("alertmanager", "firing"))
    assert services_by_subject(engine)[EDC7] == "payments"


async def test_the_running_server_maps_alerts_by_their_shown_names(make_client: Any) -> None:
    """The same rule through ``serve``'s settings (``[services]``), the webhook and the
    projector: the fixture's two HighErrorRate alerts land in the configured service,
    and the incident's title names the alert as it is shown."""
    client = await make_client(projector=True, services={"payments": ["HighErrorRate*"]})
    fixture = load_fixture("alertmanager", "firing")
    response = await client.post("/v1/webhooks/alertmanager", data=fixture.body,
                                 headers=signed_headers("alertmanager", fixture.body,
                                                        fixture.headers))
    assert response.status == 202, await response.text()
    await settle(client)
    found = await only_incident(client)
    assert found["service"] == "payments"
    assert found["title"].startswith("payments: HighErrorRate on ")
