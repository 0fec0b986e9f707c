"""Titles and timeline texts (projections.engine.texts): an alert is shown by its name and
where it fires, not by its whole label set; everything else by its subject."""

from __future__ import annotations

from dataclasses import replace

from ingest.signals import Signal
from projections.engine import texts
from tests.projections.test_engine_support import Log, sig, t

FULL = ('HighErrorRate{instance="10.42.3.17:8080", job="checkout-api", namespace="shop", '
        'service="checkout", severity="critical"}')


def alert(subject: str = FULL, state: str = "failing", *, summary: str = "",
          **labels: str) -> Signal:
    """An Alertmanager signal whose labels are its alertname (from the subject) and
    ``labels``."""
    signal = sig(subject, state, source="alertmanager", kind="alert", summary=summary)
    return with_labels(signal, {"alertname": subject.split("{")[0], **labels})


def with_labels(signal: Signal, labels: dict[str, str]) -> Signal:
    return replace(signal, labels=tuple(sorted(labels.items())))


def test_an_alert_title_names_the_alert_and_the_instance_it_fires_on() -> None:
    signal = alert(instance="10.42.3.17:8080", job="checkout-api", namespace="shop",
                   service="checkout", severity="critical")
    assert texts.title_for("checkout", signal) == "checkout: HighErrorRate on 10.42.3.17:8080 firing"


def test_an_alert_without_an_instance_is_shown_on_its_pod_host_or_job() -> None:
    assert texts.alert_name(alert("KubePodCrashLooping{…}", pod="checkout-7d9f",
                                  namespace="shop", job="kube-state-metrics")) == (
        "KubePodCrashLooping on checkout-7d9f")
    assert texts.alert_name(alert("NodeDown{…}", host="db-1", job="node")) == "NodeDown on db-1"
    assert texts.alert_name(alert("TargetDown{…}", job="checkout-api")) == (
        "TargetDown on checkout-api")


def test_an_alert_about_one_route_names_the_route_and_where_it_fires() -> None:
    signal = alert("OrdersLatencyHigh{…}", cluster="prod-eu-1", route="/v1/orders")
    assert texts.alert_name(signal) == "OrdersLatencyHigh for /v1/orders on prod-eu-1"


def test_an_alert_with_no_distinguishing_label_is_shown_by_its_name() -> None:
    assert texts.alert_name(alert("Watchdog{…}", severity="none")) == "Watchdog"


def test_an_alert_with_no_alertname_and_other_checks_are_shown_by_their_subject() -> None:
    assert texts.alert_name(sig("3f2a9c", source="alertmanager", kind="alert")) == "3f2a9c"
    assert texts.alert_name(sig("Checkout API")) == "Checkout API"
    assert texts.title_for("checkout", sig("Checkout API")) == "checkout: Checkout API down"


def test_a_summary_that_only_repeats_the_alertname_is_left_out() -> None:
    signal = alert(summary="HighErrorRate", instance="10.42.3.17:8080")
    assert texts.state_text(signal, "failing") == (
        "HighErrorRate on 10.42.3.17:8080 (alertmanager) firing")


def test_timeline_entries_show_the_alert_by_its_name_and_keep_the_subject() -> None:
    log = Log()
    firing = alert(summary="5xx ratio 7.2%", instance="10.42.3.17:8080", service="checkout")
    log.deliver(firing)
    log.deliver(with_labels(sig(FULL, "ok", source="alertmanager", kind="alert", at=t(5)),
                             dict(firing.labels)))
    incident = log.only()
    assert incident.title == "checkout: HighErrorRate on 10.42.3.17:8080 firing"
    assert [e.text for e in incident.timeline] == [
        "HighErrorRate on 10.42.3.17:8080 (alertmanager) firing: 5xx ratio 7.2%",
        "Detected: HighErrorRate on 10.42.3.17:8080 (alertmanager) notified",
        "HighErrorRate on 10.42.3.17:8080 (alertmanager) resolved",
    ]
    assert {e.subject for e in incident.timeline} == {FULL}
    assert incident.subjects == (FULL,)
