"""The postmortem draft: sections, facts, flags, blamelessness and determinism."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from markdown_it import MarkdownIt

from projections.drafts.draft import PREAMBLE, Draft, build_draft
from projections.drafts.markdown import EDIT_MARK, to_markdown
from projections.drafts.public import public_summary
from projections.drafts.text import human_duration
from projections.engine.model import Incident
from tests.projections.test_draft_scenarios import (
    ORDERS_LATENCY,
    SCENARIOS,
    checkout_action_items,
    checkout_outage,
    declared_outage,
    entry,
    expired_certificate,
    missed_cron_run,
    p1_detection_gap,
    t,
)

HEADINGS = [
    "## 1. Summary",
    "## 2. Timeline",
    "## 3. Contributing factors",
    "## 4. Action items",
    "## 5. Detection time analysis",
    "## 6. Review cadence",
    "## 7. Public summary",
]


def checkout_draft() -> Draft:
    return build_draft(checkout_outage(), checkout_action_items())


def render_html(markdown: str) -> str:
    html: str = MarkdownIt("commonmark").enable("table").render(markdown)
    return html


def section(draft: Draft, key: str) -> dict[str, Any]:
    sections: list[dict[str, Any]] = draft.to_json()["sections"]
    return next(s for s in sections if s["id"] == key)


# --- Structure ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_seven_sections_come_in_the_documented_order(name: str) -> None:
    draft = build_draft(SCENARIOS[name](), [])
    headings = [line for line in to_markdown(draft).splitlines() if line.startswith("## ")]
    assert headings == HEADINGS
    assert [s["id"] for s in draft.to_json()["sections"]] == [
        "summary", "timeline", "contributing_factors", "action_items", "detection",
        "review_cadence", "public_summary",
    ]


def test_the_blameless_preamble_comes_first() -> None:
    markdown = to_markdown(checkout_draft())
    first_section = markdown.index("## 1. Summary")
    assert markdown.index("reasonable decisions with the information they had") < first_section
    assert "the fix is in the system" in PREAMBLE
    assert checkout_draft().to_json()["preamble"] == PREAMBLE


def test_the_summary_is_three_sentences_of_facts_marked_for_editing() -> None:
    draft = checkout_draft()
    assert draft.summary == (
        "The checkout service had a P1 incident in which 2 checks reported failures: "
        'Checkout API (uptime check) and HighErrorRate{instance="10.0.4.17:9100", '
        'job="checkout-api"} (alert).',
        "Impact lasted 22 min (1320 s), from 2026-03-01T10:03:00Z to 2026-03-01T10:25:00Z, "
        "and it was detected 2 s after it began.",
        "Users were affected: the checkout service was unavailable (public-facing check: "
        "Checkout API).",
    )
    markdown = to_markdown(draft)
    assert f"_Draft — edit these three sentences before sharing._ {EDIT_MARK}" in markdown
    assert section(draft, "summary")["editable"] is True


def test_a_declared_outage_summary_says_no_monitor_reported_it() -> None:
    what, _, _ = build_draft(declared_outage(), []).summary
    assert what == ("The search service had a P2 incident, declared by an engineer; "
                    "no monitor reported a failure.")


def test_an_incident_users_did_not_see_says_so() -> None:
    assert build_draft(missed_cron_run(), []).summary[2] == (
        "Scheduled processing in the payments service was delayed; no public-facing check "
        "failed: add what users saw, if anything."
    )


# --- Published or not (TIMELINE.md section 6: a public summary for incidents users saw;
# the status page publishes only what [status] public_services lists or an engineer marks)


def back_office_p1() -> Incident:
    """A 2 a.m. back-office cron job, P1: ``public`` by severity, but its service is not
    one the status page lists."""
    return replace(missed_cron_run(), severity="P1", public=True)


def test_a_p1_back_office_job_is_not_told_users_saw_it() -> None:
    draft = build_draft(back_office_p1(), [], public_services={"checkout": "Checkout"})
    markdown = to_markdown(draft)
    assert "users saw this incident" not in markdown
    assert "Users were likely affected" not in " ".join(draft.summary)
    assert draft.review.public_summary_due is False
    assert section(draft, "public_summary")["published"] is False
    assert "- Public status-page summary: not due: the status page does not show" in markdown
    assert "_Not published: the status page does not show this incident." in markdown


def test_an_incident_of_a_listed_service_has_its_public_summary_due() -> None:
    draft = build_draft(back_office_p1(), [], public_services={"Payments": "Payments"})
    markdown = to_markdown(draft)
    assert draft.review.public_summary_due is True
    assert "- Public status-page summary: **due**: the status page shows this incident" in (
        markdown)
    assert "_Not published" not in markdown
    assert draft.summary[2].startswith("Users were likely affected (P1, shown on the status ")


def test_an_incident_an_engineer_marked_public_is_published_whatever_its_service() -> None:
    marked = replace(back_office_p1(), marked_public=True)
    assert build_draft(marked, []).review.public_summary_due is True


def test_an_incident_nothing_shows_users_saw_says_so_in_the_review() -> None:
    markdown = to_markdown(build_draft(missed_cron_run(), [], public_services={"payments": "P"}))
    assert ("- Public status-page summary: not due: nothing shows that users saw this "
            "incident.") in markdown


# --- Notified only after it recovered (TIMELINE.md rule 4: a failing period seen after
# the fact was notified when received) -----------------------------------------------------


def seen_after_recovery() -> Incident:
    """A three-minute failure Alertmanager first reported already resolved, two minutes
    after it ended."""
    base = missed_cron_run()
    started, resolved = t("2026-03-02T02:00:00"), t("2026-03-02T02:03:00")
    detected = t("2026-03-02T02:05:00")
    return replace(base, started_at=started, resolved_at=resolved, detected_at=detected,
                   detection_latency_seconds=300.0, duration_seconds=180.0,
                   detection_verdict="ok")


def test_an_incident_notified_only_after_it_recovered_is_headlined_so() -> None:
    draft = build_draft(seen_after_recovery(), [])
    expected = ("the first notification arrived only 2 min after it recovered, at "
                "2026-03-02T02:05:00Z: nobody was paged during the impact")
    assert draft.summary[1].endswith(f"; {expected}.")
    assert draft.detection.verdict_text.endswith(f" Notified after recovery: {expected}.")


def test_an_incident_notified_during_its_impact_has_no_such_headline() -> None:
    draft = build_draft(missed_cron_run(), [])
    assert "nobody was paged" not in to_markdown(draft)


# --- Tense and times in prose --------------------------------------------------------------


def test_an_open_incident_public_summary_is_in_the_present_perfect() -> None:
    text = build_draft(p1_detection_gap(resolved=False), []).public_summary
    assert text.startswith("The orders service has been degraded since 2026-03-03 09:00 UTC.")
    assert not text.startswith("Since")


def test_prose_gives_times_to_the_second_and_the_timeline_keeps_them_exact() -> None:
    """Prose to the second; the timeline table keeps the source's precision (TIMELINE.md:
    timestamps keep the precision the source gave)."""
    precise = t("2026-03-02T03:00:05.118")
    incident = replace(missed_cron_run(), detected_at=precise,
                       detection_latency_seconds=3605.118)
    markdown = to_markdown(build_draft(incident, []))
    prose = [line for line in markdown.splitlines() if not line.startswith("|")]
    assert not any(re.search(r"\d{2}:\d{2}:\d{2}\.\d", line) for line in prose), prose
    assert "to detection at 2026-03-02T03:00:05Z" in markdown
    assert "| 2026-03-02T03:00:05.118Z | **detected** |" in markdown


# --- Timeline -----------------------------------------------------------------------------


def test_the_timeline_lists_every_entry_at_its_exact_time_with_the_moments_marked() -> None:
    draft = checkout_draft()
    rows = [(r.number, r.at.strftime("%H:%M:%S"), r.moment, r.subject) for r in draft.timeline]
    assert rows == [
        (1, "10:00:50", "deploy", "acme/checkout-service"),
        (2, "10:03:00", "started", "Checkout API"),
        (3, "10:03:02", "detected", "Checkout API"),
        (4, "10:03:30", None, 'HighErrorRate{instance="10.0.4.17:9100", job="checkout-api"}'),
        (5, "10:05:00", "acknowledged", "checkout"),
        (6, "10:12:00", "note", "checkout"),
        (7, "10:14:30", "deploy", "acme/checkout-service"),
        (8, "10:20:00", None, "Checkout API"),
        (9, "10:25:00", "resolved", 'HighErrorRate{instance="10.0.4.17:9100", job="checkout-api"}'),
    ]
    markdown = to_markdown(draft)
    for entry_ in checkout_outage().timeline:
        assert entry_.at.strftime("| %Y-%m-%dT%H:%M:%SZ |") in markdown
    assert "| 3 | 2026-03-01T10:03:02Z | **detected** | uptime-kuma | `Checkout API` |" in markdown


def test_repeats_are_summarised_not_listed() -> None:
    assert "(×4 repeats until 10:24:00Z)" in to_markdown(checkout_draft())
    gap = build_draft(p1_detection_gap(), [])
    assert "(×14 repeats until 09:38:00Z)" in to_markdown(gap)
    row = section(gap, "timeline")["rows"][1]
    assert (row["repeats"], row["last_repeat_at"]) == (14, "2026-03-03T09:38:00Z")


def test_a_moment_no_entry_sits_at_gets_its_own_row() -> None:
    """The engine may mark an entry at another time, or not at all: the draft still shows
    each of the four moments at the incident's own time."""
    incident = checkout_outage()
    bare = replace(incident, timeline=tuple(
        replace(e, marker=None) for e in incident.timeline if e.marker != "detected"))
    rows = build_draft(bare, []).timeline
    moments = {r.moment: (r.at, r.from_log) for r in rows if r.moment in
               ("started", "detected", "acknowledged", "resolved")}
    assert moments == {
        "started": (incident.started_at, True),  # the first failing report at that time
        "detected": (incident.detected_at, False),
        "acknowledged": (incident.acknowledged_at, True),  # PagerDuty's acknowledgement
        "resolved": (incident.resolved_at, True),  # the last recovery
    }
    added = next(r for r in rows if not r.from_log)
    assert added.text == "Detected: first notification received, from Checkout API"


def test_a_corrected_start_before_every_entry_is_the_first_row() -> None:
    incident = replace(checkout_outage(), started_at=checkout_outage().started_at.replace(
        minute=1))
    rows = build_draft(incident, []).timeline
    started = next(r for r in rows if r.moment == "started")
    assert (started.number, started.text, started.from_log) == (2, "Impact started", False)


def test_text_from_the_log_cannot_break_the_table_or_inject_html() -> None:
    incident = checkout_outage()
    hostile = entry("2026-03-01T10:10:00", position=108, source="native", kind="alert",
                    subject="a|b`c", state="failing",
                    text="<script>alert(1)</script> | x | [link](javascript:alert(1)) *bold*")
    incident = replace(incident, timeline=(*incident.timeline, hostile))
    html = render_html(to_markdown(build_draft(incident, [])))
    assert "<script>" not in html
    assert 'href="javascript' not in html
    table = html[html.index("<table>"):html.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)
    assert all(row.count("<td") == 6 for row in rows[1:])
    assert "<code>a|b`c</code>" in table


# --- Contributing factors -----------------------------------------------------------------


def test_a_deploy_before_impact_is_a_candidate_with_its_ref_environment_and_lead() -> None:
    factors = checkout_draft().factors
    assert len(factors) == 1  # the rollback at 10:14:30 came after the start
    deploy = factors[0]
    assert deploy.kind == "deploy"
    assert deploy.statement == (
        "Deployment of 4f2c9e1 to production finished 2 min 10 s before impact "
        "(acme/checkout-service)."
    )
    assert (deploy.row, deploy.at.strftime("%H:%M:%S")) == (1, "10:00:50")
    assert deploy.why.startswith("The deploy pipeline allowed this change to reach production")
    assert "From timeline #1 (2026-03-01T10:00:50Z): Deployment of 4f2c9e1" in (
        to_markdown(checkout_draft()))


def test_an_expired_certificate_is_a_candidate_with_its_expiry() -> None:
    (factor,) = build_draft(expired_certificate(), []).factors
    assert factor.kind == "certificate"
    assert factor.statement == (
        "The certificate for api.example.com expired at 2026-03-10T00:00:00Z; "
        "no renewal replaced it before then."
    )


def test_a_missed_cron_run_is_a_candidate_with_its_deadline_and_the_late_alert_another() -> None:
    missed, late = build_draft(missed_cron_run(), []).factors
    assert missed.kind == "missed_run"
    assert missed.statement == (
        "The scheduled job payment-reconciliation missed its run due at 2026-03-02T02:00:00Z "
        "(schedule 0 2 * * * UTC; last ping 2026-03-01T02:00:41Z; reported down at "
        "2026-03-02T03:00:00Z)."
    )
    assert missed.row == 1
    assert late.kind == "late_monitor"
    assert late.statement == (
        "The first notification from payment-reconciliation arrived 1 h 5 s after impact began."
    )
    assert "grace period" in late.why


def test_a_monitor_that_notified_late_is_a_candidate() -> None:
    (factor,) = build_draft(p1_detection_gap(), []).factors
    assert factor.kind == "late_monitor"
    assert factor.statement == (
        f"The alert {ORDERS_LATENCY} failed at 2026-03-03T09:00:00Z but its first report "
        "arrived 14 min 30 s later, at 2026-03-03T09:14:30Z."
    )
    assert factor.row == 1


def test_an_outage_no_monitor_saw_is_a_candidate_of_its_own() -> None:
    (factor,) = build_draft(declared_outage(), []).factors
    assert factor.kind == "no_monitor"
    assert factor.statement == (
        "No monitor reported a failure before the incident was declared at "
        "2026-03-05T14:20:00Z, 28 min after impact began."
    )


BLAME_WORDS = re.compile(
    r"\b(blame|mistake|fault|careless|forgot|human error|should have|failed to)\b", re.I
)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_draft_phrases_anything_as_someones_mistake(name: str) -> None:
    markdown = to_markdown(build_draft(SCENARIOS[name](), []))
    assert BLAME_WORDS.findall(markdown) == []


def test_no_person_from_a_payload_attribute_reaches_the_draft() -> None:
    """Attributes are read by known key only: an author or actor never gets printed."""
    incident = checkout_outage()
    deploy = replace(incident.timeline[0], attributes=(
        *incident.timeline[0].attributes, ("author", "jdoe"), ("actor", "mona-lisa"),
        ("sender", "octocat@acme.example")))
    incident = replace(incident, timeline=(deploy, *incident.timeline[1:]))
    draft = build_draft(incident, [])
    text = to_markdown(draft) + json.dumps(draft.to_json())
    for person in ("jdoe", "mona-lisa", "octocat"):
        assert person not in text


# --- Action items -------------------------------------------------------------------------


def test_recorded_items_are_flagged_against_the_draft_date() -> None:
    items = section(checkout_draft(), "action_items")["items"]
    flags = {item["id"]: item["flags"] for item in items}
    assert flags == {
        "ai_1": [],
        "ai_2": ["no owner", "no due date", "vague: 'improve monitoring' is not an action item"],
        "ai_3": ["due more than 14 days after the draft date"],
        "ai_4": [],
    }
    markdown = to_markdown(checkout_draft())
    assert ("- [ ] Improve monitoring — owner: _(owner to assign)_\n"
            "  - ⚠ no owner\n  - ⚠ no due date\n"
            "  - ⚠ vague: 'improve monitoring' is not an action item\n") in markdown
    assert "- [x] Roll back 4f2c9e1 by 2026-03-01 — owner: checkout team; done" in markdown


def test_a_later_draft_date_moves_the_fourteen_day_bound() -> None:
    draft = build_draft(checkout_outage(), checkout_action_items(), date(2026, 4, 20))
    ai_3 = next(i for i in draft.action_items if i.item_id == "ai_3")
    assert ai_3.flags == ()


@pytest.mark.parametrize(
    ("incident", "title", "due"),
    [
        (p1_detection_gap(), f"Alert on {ORDERS_LATENCY} sooner: shorten its group_wait "
                             "and the rule's for duration", date(2026, 3, 17)),
        (declared_outage(), "Add an uptime check for search", date(2026, 3, 19)),
        (missed_cron_run(), "Alert on payment-reconciliation sooner: shorten its grace period",
         date(2026, 3, 16)),
        (expired_certificate(), "Warn 14 days before the certificate for api.example.com "
                                "expires", date(2026, 3, 24)),
    ],
)
def test_the_detection_analysis_suggests_concrete_items_due_within_fourteen_days(
    incident: Incident, title: str, due: date
) -> None:
    draft = build_draft(incident, [])
    suggested = [i for i in draft.action_items if i.origin == "suggested"]
    assert [(i.title, i.due_date, i.owner, i.flags) for i in suggested] == [
        (title, due, None, ())
    ]
    assert f"- [ ] {title} by {due.isoformat()} — owner: _(owner to assign)_; suggested: " in (
        to_markdown(draft))


def test_no_suggestion_when_detection_was_within_target() -> None:
    assert [i for i in checkout_draft().action_items if i.origin == "suggested"] == []


def test_a_suggestion_already_recorded_is_not_repeated() -> None:
    incident = declared_outage()
    recorded = replace(checkout_action_items()[0], incident_id=incident.id,
                       title="add an uptime check for search")
    titles = [i.title for i in build_draft(incident, [recorded]).action_items]
    assert titles == ["add an uptime check for search"]


# --- Detection, review cadence, public summary --------------------------------------------


def test_the_detection_analysis_of_a_p1_gap_names_the_late_monitor() -> None:
    detection = build_draft(p1_detection_gap(), []).detection
    assert (detection.latency_seconds, detection.latency) == (720.0, "12 min")
    assert detection.verdict == "gap"
    assert detection.verdict_text == (
        "gap: a P1 detected after more than 5 minutes (12 min) is a monitoring gap: the "
        f"monitor that would have caught it sooner is {ORDERS_LATENCY}, which failed first "
        "but notified last."
    )
    assert detection.first_detector_text.startswith("OrdersErrorBudgetBurn")
    assert detection.fired_last == ORDERS_LATENCY
    assert detection.fired_last_text.endswith("it failed first but notified last")
    assert "- **Detection latency:** 12 min (720 s), from impact at 2026-03-03T09:00:00Z" in (
        to_markdown(build_draft(p1_detection_gap(), [])))


@pytest.mark.parametrize(
    ("incident", "text"),
    [
        (declared_outage(), "critical: detected by a human, with no monitor signal before "
                            "the declaration: we most likely learned of it from users."),
        (missed_cron_run(), "critical: detected after more than 30 minutes (1 h 5 s): we most "
                            "likely learned of it from users."),
        (checkout_outage(), "ok: detected within the target (5 minutes for a P1)."),
        (expired_certificate(), "ok: detected within the target (30 minutes)."),
    ],
)
def test_the_verdict_is_explained(incident: Incident, text: str) -> None:
    assert build_draft(incident, []).detection.verdict_text == text


def test_the_first_detector_and_the_one_that_fired_last_are_named() -> None:
    detection = checkout_draft().detection
    assert detection.first_detector_text == (
        "Checkout API (uptime check, uptime-kuma): failing from 2026-03-01T10:03:00Z, first "
        "report received at 2026-03-01T10:03:02Z, 2 s after impact began"
    )
    assert detection.fired_last == 'HighErrorRate{instance="10.0.4.17:9100", job="checkout-api"}'


def test_the_review_cadence_gives_exact_utc_deadlines_and_the_public_summary_duty() -> None:
    listed = build_draft(checkout_outage(), checkout_action_items(),
                         public_services={"checkout": "Checkout"})
    assert section(listed, "review_cadence") == {
        "id": "review_cadence", "number": 6, "title": "Review cadence",
        "engineering_by": "2026-03-02T10:25:00Z", "stakeholders_by": "2026-03-03T10:25:00Z",
        "public_summary_due": True,
    }
    markdown = to_markdown(build_draft(missed_cron_run(), []))
    assert "- Share with engineering by **2026-03-03T03:40:12Z** (resolution + 24 h)." in markdown
    assert "- Public status-page summary: not due" in markdown


def test_an_open_incident_gets_its_deadlines_when_resolved() -> None:
    draft = build_draft(p1_detection_gap(resolved=False), [])
    assert (draft.review.engineering_by, draft.review.stakeholders_by) == (None, None)
    assert "within 24 h of resolution (when resolved)" in to_markdown(draft)
    assert draft.draft_date == date(2026, 3, 3)  # the start date, not today
    assert draft.summary[1] == (
        "Impact began at 2026-03-03T09:00:00Z and the incident was still open when this "
        "draft was built, and it was detected 12 min after it began."
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_section_seven_is_the_status_page_summary(name: str) -> None:
    incident = SCENARIOS[name]()
    draft = build_draft(incident, [])
    assert draft.public_summary == public_summary(incident)
    assert section(draft, "public_summary")["text"] == public_summary(incident)
    seventh = to_markdown(draft).split("## 7. Public summary\n\n", 1)[1]
    assert seventh.endswith(f"> {public_summary(incident)}\n")


# --- Dates, determinism, rendering --------------------------------------------------------


def test_the_draft_date_defaults_to_the_resolution_date() -> None:
    incident = missed_cron_run()
    assert incident.resolved_at is not None
    incident = replace(incident, resolved_at=incident.resolved_at.replace(day=3))
    assert build_draft(incident, []).draft_date == date(2026, 3, 3)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_inputs_give_the_same_bytes(name: str) -> None:
    first = build_draft(SCENARIOS[name](), checkout_action_items())
    second = build_draft(SCENARIOS[name](), list(reversed(checkout_action_items())))
    assert to_markdown(first).encode() == to_markdown(second).encode()
    assert json.dumps(first.to_json()) == json.dumps(second.to_json())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_markdown_renders_with_a_table_of_every_row(name: str) -> None:
    draft = build_draft(SCENARIOS[name](), checkout_action_items())
    html = render_html(to_markdown(draft))
    assert html.count("<table>") == 1
    assert html.count("<tr>") == len(draft.timeline) + 1  # and the header
    assert html.count("<h2>") == 7
    assert "<blockquote>" in html


def test_the_json_is_plain_data() -> None:
    data = checkout_draft().to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["incident"]["id"] == "inc_7f3a9c2e41d0"
    assert data["draft_date"] == "2026-03-01"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (2, "2 s"), (130, "2 min 10 s"), (720, "12 min"), (3605, "1 h 5 s"),
     (90061, "1 d 1 h 1 min 1 s"), (0.25, "0.25 s")],
)
def test_durations_read_as_an_engineer_writes_them(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
