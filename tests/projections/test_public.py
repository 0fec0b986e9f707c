"""The public summary (status page, Atom feed, draft section 7) and its scrubber."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from projections.drafts.public import (
    ANONYMOUS,
    INTERNAL,
    display_name,
    is_host_like,
    looks_internal,
    public_summary,
    public_title,
    scrub,
)
from projections.engine.model import Incident
from tests.projections.test_draft_scenarios import (
    SCENARIOS,
    checkout_outage,
    declared_outage,
    expired_certificate,
    missed_cron_run,
    p1_detection_gap,
)


@pytest.mark.parametrize(
    "text",
    [
        "api.example.com",
        "db-01.internal:5432",
        "checkout.prod.svc.cluster.local",
        "10.0.4.17",
        "10.0.4.17:9100",
        "192.168.0.0/16",
        "2001:db8::1",
        "::1",
        "[2001:db8::8a2e:370:7334]:443",
        "fe80::1%eth0",
        "https://checkout.example.com/health",
        "http://localhost:8080/metrics",
        "see grafana.acme.io for details",
        "oncall@acme.example",
    ],
)
def test_it_recognises_hosts_ips_urls_and_addresses(text: str) -> None:
    assert is_host_like(text)


@pytest.mark.parametrize(
    "text",
    ["checkout", "Checkout API", "payment-reconciliation", "2026-03-01 10:03 UTC",
     "10:03:00", "version 1.2", "p99 latency 4.8 s", "the orders service"],
)
def test_plain_names_times_and_figures_are_not_host_like(text: str) -> None:
    assert not is_host_like(text)


@pytest.mark.parametrize(
    "text", ["acme/checkout-service", 'HighErrorRate{job="checkout-api"}', "instance=db-01",
             "checkout:8080"],
)
def test_repositories_and_label_matchers_look_internal(text: str) -> None:
    assert looks_internal(text)


def test_the_scrubber_replaces_every_internal_detail_and_keeps_the_rest() -> None:
    text = ("Checkout API down on 10.0.4.17:9100 and 2001:db8::1, see "
            "https://grafana.acme.io/d/x?var=1 or db-01.internal; ask ops@acme.example")
    assert scrub(text, ["Checkout API"]) == (
        f"{INTERNAL} down on {INTERNAL} and {INTERNAL}, see {INTERNAL} or {INTERNAL}; "
        f"ask {INTERNAL}"
    )


def test_the_scrubber_replaces_secrets_as_whole_words_only() -> None:
    assert scrub("a rapid api outage", ["api"]) == f"a rapid {INTERNAL} outage"


def test_a_resolved_incident_says_when_how_long_and_what_kind_of_impact() -> None:
    assert public_summary(checkout_outage()) == (
        "From 2026-03-01 10:03 UTC to 2026-03-01 10:25 UTC (22 minutes), the checkout "
        "service was unavailable. The issue has been resolved."
    )


@pytest.mark.parametrize(
    ("incident", "impact"),
    [
        (expired_certificate(), "a certificate problem made the public-api service unreachable"),
        (missed_cron_run(), "scheduled processing in the payments service was delayed"),
        (p1_detection_gap(), "the orders service was degraded"),
        (declared_outage(), "the search service was disrupted"),
    ],
)
def test_the_impact_is_described_generically_by_kind(incident: Incident, impact: str) -> None:
    assert f", {impact}. " in public_summary(incident)


def test_an_open_incident_is_described_in_the_present() -> None:
    assert public_summary(p1_detection_gap(resolved=False)) == (
        "The orders service has been degraded since 2026-03-03 09:00 UTC. We are working on it "
        "and will update this page when it is resolved."
    )


def test_durations_are_rounded_to_minutes_for_readers() -> None:
    incident = missed_cron_run()
    assert "(1 hour 40 minutes)" in public_summary(incident)
    short = replace(incident, resolved_at=incident.started_at.replace(second=20))
    assert "(less than a minute)" in public_summary(short)


@pytest.mark.parametrize(
    "service", ["api.example.com", "10.0.4.17", "acme/checkout-service",
                'checkout{env="prod"}', "https://status.acme.io"],
)
def test_a_service_named_like_a_host_or_repository_is_not_named(service: str) -> None:
    incident = replace(checkout_outage(), service=service)
    text = public_summary(incident)
    assert "one of our services was unavailable" in text
    assert service not in text


def _secrets(incident: Incident) -> set[str]:
    """Every hostname, IP, URL, label value, subject and repository in the incident."""
    found: set[str] = set(incident.subjects)
    for entry in incident.timeline:
        found.add(entry.subject)
        found.update(url for url, _ in entry.links)
        # A time zone ("UTC") is how the summary states its times, not an internal detail.
        found.update(value for key, value in entry.attributes if key != "tz")
        found.update(re.findall(r'"([^"]+)"', entry.subject))  # label values
        found.update(re.findall(r"https?://\S+", entry.text))
        found.update(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", entry.text))
        found.update(re.findall(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b", entry.text))
    # The service name is the one fact the summary may use.
    return {s for s in found if s and s.lower() != incident.service.lower()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_public_summary_leaks_no_host_ip_url_label_value_or_subject(name: str) -> None:
    incident = SCENARIOS[name]()
    text = public_summary(incident)
    leaked = sorted(s for s in _secrets(incident) if s.lower() in text.lower())
    assert leaked == []
    assert not is_host_like(text)


def test_the_leak_test_knows_what_it_looks_for() -> None:
    secrets = _secrets(checkout_outage())
    assert {"10.0.4.17:9100", "checkout-api", "https://checkout.example.com/health",
            "acme/checkout-service", "Checkout API", "4f2c9e1b7a0d5c3e8f9a1b2c3d4e5f6a7b8c9d0e",
            "production"} <= secrets


# The status page (issue 12, item 6): publication is opt-in, and a service is named only
# by the display name an operator configured in [status] public_services.


@pytest.mark.parametrize("service", ["jenkins", "vpn-gw", "payments", "checkout"])
def test_the_status_page_names_no_service_an_operator_did_not_list(service: str) -> None:
    """"jenkins" and "vpn-gw" pass every host/identifier heuristic: only the list decides."""
    incident = replace(checkout_outage(), service=service)
    assert not looks_internal(service)  # the heuristic would have named it
    name = display_name(incident, {"orders": "Orders"})
    assert name == ANONYMOUS
    for text in (public_summary(incident, name), public_title(incident, name)):
        assert service not in text.lower()
        assert "one of our services was unavailable" in text.lower()


def test_a_listed_service_is_shown_by_its_display_name_whatever_its_case() -> None:
    incident = checkout_outage()  # service "checkout"
    name = display_name(incident, {"Checkout": "Online Shop"})
    assert name == "Online Shop"
    assert public_title(incident, name) == "Online Shop was unavailable"
    assert public_summary(incident, name) == (
        "From 2026-03-01 10:03 UTC to 2026-03-01 10:25 UTC (22 minutes), Online Shop "
        "was unavailable. The issue has been resolved."
    )


def test_a_display_name_is_shown_as_given_even_when_it_equals_a_subject() -> None:
    """The operator chose it for the public; the scrubber must not eat it."""
    incident = checkout_outage()
    assert "Checkout API" in incident.subjects
    assert public_title(incident, "Checkout API") == "Checkout API was unavailable"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_status_page_text_holds_no_subject_nor_the_service_name(name: str) -> None:
    incident = SCENARIOS[name]()
    shown = display_name(incident, {incident.service: "Our product"})
    for text in (public_summary(incident, shown), public_title(incident, shown)):
        for secret in {*_secrets(incident), *incident.subjects, incident.service}:
            assert not re.search(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", text,
                                 re.IGNORECASE), (secret, text)
        assert "Our product" in text
