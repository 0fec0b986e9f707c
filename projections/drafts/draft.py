"""The postmortem draft (TIMELINE.md, "The postmortem draft"): pure, no I/O, no clock.

``build_draft(incident, action_items)`` pre-fills the seven sections from facts the log
holds; ``markdown.to_markdown(draft)`` and ``Draft.to_json()`` render the same content.
The same inputs give the same bytes: the draft date is an input (by default the
resolution date, else the start date), and every list is built in a defined order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, timedelta

from projections.drafts.analysis import (
    contributing_factors,
    detection_analysis,
    suggested_items,
    summary_sentences,
    timeline_rows,
)
from projections.drafts.model import Draft, DraftActionItem, ReviewCadence
from projections.drafts.public import is_published, public_summary
from projections.engine.action_items import ActionItem, item_flags
from projections.engine.model import Incident

PREAMBLE = (
    "Everyone involved made reasonable decisions with the "
    "information they had at the time; the fix is in the system, not in people. This "
    "draft names systems, checks and roles, never individuals, and every fact in it comes "
    "from the event log, with exact times in UTC."
)

ENGINEERING_REVIEW = timedelta(hours=24)
STAKEHOLDER_REVIEW = timedelta(hours=48)


def default_draft_date(incident: Incident) -> date:
    """The UTC date of the resolution, else of the start: never today's date."""
    moment = incident.resolved_at or incident.started_at
    return moment.astimezone(UTC).date()


def _recorded(items: Sequence[ActionItem], draft_date: date) -> list[DraftActionItem]:
    # Flags are re-evaluated against the draft date: the 14-day bound is the draft's.
    ordered = sorted(items, key=lambda i: (i.created_at, i.position, i.id))
    return [
        DraftActionItem(
            title=item.title,
            owner=item.owner,
            due_date=item.due_date,
            status=item.status,
            origin="recorded",
            flags=item_flags(item.title, item.owner, item.due_date, status=item.status,
                             reference=draft_date, reference_name="the draft date"),
            item_id=item.id,
            ticket_url=item.ticket_url,
        )
        for item in ordered
    ]


def build_draft(
    incident: Incident,
    action_items: Sequence[ActionItem],
    draft_date: date | None = None,
    public_services: Mapping[str, str] | None = None,
) -> Draft:
    """The postmortem draft of ``incident`` with its recorded ``action_items`` (the
    caller chooses which: those of this incident and of incidents merged into it).

    ``public_services`` is ``[status] public_services``: with it the draft knows whether
    the status page shows the incident (``public.is_published``), and only then calls a
    public summary due and says users likely saw it. Without it, only an incident an
    engineer marked public counts as published."""
    when = draft_date or default_draft_date(incident)
    published = is_published(incident, public_services or {})
    recorded = _recorded(action_items, when)
    # A suggestion the team already recorded (same title) is not repeated.
    taken = {item.title.strip().casefold() for item in recorded}
    suggested = [s for s in suggested_items(incident, when) if s.title.casefold() not in taken]
    rows = timeline_rows(incident)
    resolved = incident.resolved_at
    return Draft(
        incident=incident,
        draft_date=when,
        preamble=PREAMBLE,
        summary=summary_sentences(incident, published=published),
        timeline=rows,
        factors=contributing_factors(incident, rows),
        action_items=(*recorded, *suggested),
        detection=detection_analysis(incident),
        review=ReviewCadence(
            engineering_by=None if resolved is None else resolved + ENGINEERING_REVIEW,
            stakeholders_by=None if resolved is None else resolved + STAKEHOLDER_REVIEW,
            public_summary_due=published,
            users_saw=incident.public,
        ),
        public_summary=public_summary(incident),
    )
