"""The draft as GitHub-flavoured Markdown, meant to read well raw and rendered.

Text that came from the log goes through ``md`` (escaped, one line) or ``code``
(identifiers), so a monitor's summary can never break the table or inject HTML.
"""

from __future__ import annotations

import re

from projections.drafts.model import SECTION_TITLES, Draft, DraftActionItem, TimelineRow
from projections.drafts.text import code, format_time, md, prose_time, seconds, time_of_day

EDIT_MARK = "<!-- edit -->"
_MOMENTS = ("started", "detected", "acknowledged", "resolved")
_FACTOR_HEADINGS = {
    "deploy": "a deploy shortly before impact",
    "certificate": "an expired certificate",
    "missed_run": "a missed cron run",
    "late_monitor": "a monitor that notified late",
    "no_monitor": "no monitor reported it",
}
_NONE = "—"  # a row the draft adds for a moment has no source or subject


def _moment(row: TimelineRow) -> str:
    if row.moment in _MOMENTS:
        return f"**{row.moment}**"  # the four moments stand out; deploys and notes do not
    return row.moment or ""


def _what(row: TimelineRow) -> str:
    text = md(row.text)
    if row.repeats:
        until = ""
        # Alertmanager repeats carry the alert's own start: an "until" no later than the
        # entry itself would say nothing, so only a later last repeat is named.
        if row.last_repeat_at is not None and row.last_repeat_at > row.at:
            until = f" until {time_of_day(row.last_repeat_at, relative_to=row.at)}"
        noun = "repeat" if row.repeats == 1 else "repeats"
        text += f" (×{row.repeats} {noun}{until})"
    return text


def _timeline(draft: Draft) -> list[str]:
    lines = [
        "Every entry in time order, exact times in UTC. The four moments are in bold; "
        "repeated reports of a failure already shown are counted, not listed.",
        "",
        "| # | Time (UTC) | Moment | Source | Subject | What happened |",
        "|--:|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {row.number} | {format_time(row.at)} | {_moment(row)} | {md(row.source) or _NONE} "
        f"| {code(row.subject) or _NONE} | {_what(row)} |"
        for row in draft.timeline
    )
    return lines


def _factors(draft: Draft) -> list[str]:
    lines = [
        "Not one root cause. For each candidate the log shows, ask \"why?\" until the answer "
        "is a condition of the system that can change (5 Whys). Remove candidates that did "
        "not contribute; add what the log cannot show.",
        "",
    ]
    if not draft.factors:
        lines += [
            "The log shows no candidate: no deploy before impact, no expired certificate, "
            "no missed run, no late monitor.",
            "",
            "1. Why did the first failing check fail? _…_",
            "2. Why? _…_",
            "3. Why? _…_",
            "4. Why? _…_",
            "5. Why? _…_",
        ]
        return lines
    for index, factor in enumerate(draft.factors, start=1):
        lines += [
            f"### Candidate {index}: {_FACTOR_HEADINGS[factor.kind]}",
            "",
            f"From timeline #{factor.row} ({prose_time(factor.at)}): {md(factor.statement)}",
            "",
            f"1. {md(factor.why)} _…_",
            "2. Why? _…_",
            "3. Why? _…_",
            "4. Why? _…_",
            "5. Why? _…_",
            "",
        ]
    return lines[:-1]


def _item(item: DraftActionItem) -> list[str]:
    box = "x" if item.status == "done" else " "
    due = f" by {item.due_date.isoformat()}" if item.due_date else ""
    owner = md(item.owner) if item.owner else "_(owner to assign)_"
    parts = [f"owner: {owner}"]
    if item.origin == "suggested":
        parts.append(f"suggested: {md(item.reason)}")
    if item.ticket_url:
        url = item.ticket_url
        # An autolink reads best raw and rendered; anything that could end one early
        # is shown as escaped text instead.
        parts.append(f"ticket: <{url}>" if not re.search(r"[\s<>]", url) else md(url))
    if item.status == "done":
        parts.append("done")
    lines = [f"- [{box}] {md(item.title)}{due} — {'; '.join(parts)}"]
    lines += [f"  - ⚠ {md(flag)}" for flag in item.flags]
    return lines


def _action_items(draft: Draft) -> list[str]:
    lines = [
        "Specific, assigned, due within 14 days of the draft date "
        f"({draft.draft_date.isoformat()}). Flagged items need fixing before the review.",
        "",
    ]
    if not draft.action_items:
        return [*lines, "_No action items yet._"]
    for item in draft.action_items:
        lines += _item(item)
    return lines


def _detection(draft: Draft) -> list[str]:
    d = draft.detection
    if d.latency_seconds is None:
        latency = "unknown: no detection time recorded"
    else:
        exact = seconds(d.latency_seconds)
        latency = d.latency if d.latency == exact else f"{d.latency} ({exact})"
    detected = prose_time(d.detected_at) if d.detected_at else "not yet"
    return [
        f"- **Detection latency:** {latency}, from impact at {prose_time(d.started_at)} "
        f"to detection at {detected} (detected by {d.detected_by}).",
        f"- **Verdict:** {md(d.verdict_text)}",
        f"- **Detected first:** {md(d.first_detector_text)}",
        f"- **Fired last:** {md(d.fired_last_text)}",
    ]


def _review(draft: Draft) -> list[str]:
    r = draft.review
    if r.engineering_by is None or r.stakeholders_by is None:
        lines = [
            "- Share with engineering: within 24 h of resolution (when resolved).",
            "- Share with stakeholders: within 48 h of resolution (when resolved).",
        ]
    else:
        lines = [
            f"- Share with engineering by **{prose_time(r.engineering_by)}** "
            "(resolution + 24 h).",
            f"- Share with stakeholders by **{prose_time(r.stakeholders_by)}** "
            "(resolution + 48 h).",
        ]
    if r.public_summary_due:
        lines.append("- Public status-page summary: **due**: the status page shows this "
                     "incident; publish section 7 there.")
    elif r.users_saw:
        lines.append("- Public status-page summary: not due: the status page does not show "
                     "this incident (its service is not in `[status] public_services` and "
                     "no engineer marked it public).")
    else:
        lines.append("- Public status-page summary: not due: nothing shows that users saw "
                     "this incident.")
    return lines


def to_markdown(draft: Draft) -> str:
    incident = draft.incident
    sections: dict[str, list[str]] = {
        "summary": [f"_Draft — edit these three sentences before sharing._ {EDIT_MARK}", "",
                    " ".join(md(s) for s in draft.summary)],
        "timeline": _timeline(draft),
        "contributing_factors": _factors(draft),
        "action_items": _action_items(draft),
        "detection": _detection(draft),
        "review_cadence": _review(draft),
        "public_summary": [
            *([] if draft.review.public_summary_due else [
                "_Not published: the status page does not show this incident. Edit this "
                "text only if you decide to publish it._", ""]),
            f"> {md(draft.public_summary)}"],
    }
    lines = [
        f"# Postmortem draft: {md(incident.title)}",
        "",
        f"> **Blameless review.** {md(draft.preamble)}",
        "",
        f"- **Incident:** {code(incident.id)}",
        f"- **Service:** {md(incident.service)}",
        f"- **Severity:** {incident.severity}",
        f"- **Status:** {incident.status}",
        f"- **Draft date:** {draft.draft_date.isoformat()}",
    ]
    for number, (key, title) in enumerate(SECTION_TITLES, start=1):
        lines += ["", f"## {number}. {title}", "", *sections[key]]
    return "\n".join(lines) + "\n"
