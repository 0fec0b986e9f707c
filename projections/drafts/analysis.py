"""What the draft says about an incident, derived from its facts only (TIMELINE.md).

Every function here is pure and reads only the Incident value: the timeline rows with
the four moments marked, the contributing-factor candidates, the detection analysis, the
suggested action items and the summary sentences. Wording names systems, checks and
roles; factors are phrased as conditions of the system, never as someone's mistake.
Entry attributes are read by known key only, so a raw label (which could name a person)
never reaches the draft.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta

from ingest.patterns import short_revision
from projections.drafts.model import DetectionAnalysis, DraftActionItem, Factor, TimelineRow
from projections.drafts.public import impact_phrase
from projections.drafts.text import human_duration, prose_time, seconds
from projections.engine.action_items import MAX_DUE_DAYS
from projections.engine.model import Incident, Marker, TimelineEntry

P1_TARGET = timedelta(minutes=5)
CRITICAL_AFTER = timedelta(minutes=30)

_KIND_NOUN = {
    "uptime": "uptime check",
    "cron": "cron check",
    "ssl": "certificate check",
    "alert": "alert",
    "deploy": "deploy",
    "manual": "manual event",
}
# What makes each kind of monitor slow to notify, and what to change.
_SLOW_BECAUSE = {
    "alert": "its group_wait, the rule's for duration and the evaluation interval",
    "cron": "its grace period",
    "uptime": "its check interval and retries before it reports down",
    "ssl": "how often the certificate is checked",
}
_SOONER_BY = {
    "alert": "shorten its group_wait and the rule's for duration",
    "cron": "shorten its grace period",
    "uptime": "shorten its check interval and retries",
    "ssl": "warn 14 days before expiry",
}
_DEPLOY_VERBS = {
    "succeeded": "finished",
    "started": "started",
    "failed": "failed",
    "pipeline_failed": "failed in its pipeline",
}


def kind_noun(kind: str) -> str:
    return _KIND_NOUN.get(kind, kind or "check")


def _attr(entry: TimelineEntry, *keys: str) -> str | None:
    attributes = dict(entry.attributes)
    for key in keys:
        value = attributes.get(key, "").strip()
        if value:
            return value
    return None


def _entries(incident: Incident) -> list[TimelineEntry]:
    return sorted(incident.timeline, key=lambda e: (e.at, e.position))


# --- 2. Timeline --------------------------------------------------------------------


def _moments(incident: Incident) -> dict[Marker, datetime | None]:
    return {
        "started": incident.started_at,
        "detected": incident.detected_at,
        "acknowledged": incident.acknowledged_at,
        "resolved": incident.resolved_at,
    }


def _claims(incident: Incident, entries: list[TimelineEntry]) -> dict[int, Marker]:
    """Which entry (by index in ``entries``) carries each of the four moments.

    A moment is placed on an entry only when the entry sits at that moment's exact time:
    first one the engine marked, else the entry the moment comes from (the first failing
    report for ``started``, the last recovery for ``resolved``, an on-call acknowledgement).
    Otherwise the draft adds a row of its own, so every moment shows at its true time.
    """
    claims: dict[int, Marker] = {}
    for name, when in _moments(incident).items():
        if when is None:
            continue
        # By index, not log position: the engine's "detected" entry shares its
        # delivery's position with the failure it reports.
        at_time = [(i, e) for i, e in enumerate(entries) if e.at == when and i not in claims]
        marked = [i for i, e in at_time if e.marker == name]
        if name == "started":
            fallback = [i for i, e in at_time if e.state == "failing"][:1]
        elif name == "resolved":
            fallback = [i for i, e in at_time if e.state == "ok"][-1:]
        elif name == "acknowledged":
            fallback = [i for i, e in at_time if e.action == "acknowledged"][:1]
        else:
            fallback = []  # detection is a notification time, not a state change
        chosen = (marked or fallback)[:1]
        if chosen:
            claims[chosen[0]] = name
    return claims


def subject_shown(incident: Incident, subject: str) -> str:
    """A subject as the timeline shows it: an alert by its alertname and distinguishing
    labels, never by its fingerprint (TIMELINE.md: the subject is the fingerprint,
    "shown as alertname and its distinguishing labels")."""
    return next((e.name for e in incident.timeline if e.subject == subject and e.name),
                subject)


def _moment_text(name: Marker, incident: Incident) -> str:
    if name == "started":
        return "Impact started"
    if name == "detected":
        if incident.detected_by == "human":
            return "Detected: declared by an engineer"
        if incident.first_detector:
            return ("Detected: first notification received, from "
                    f"{subject_shown(incident, incident.first_detector)}")
        return "Detected: first notification received"
    if name == "acknowledged":
        return "Acknowledged"
    return "Resolved"


def timeline_rows(incident: Incident) -> tuple[TimelineRow, ...]:
    """Every entry in time order (ties by log position), the four moments marked, deploys
    and engineers' notes in place, and a row for each moment no entry sits at."""
    entries = _entries(incident)
    claims = _claims(incident, entries)
    keyed: list[tuple[tuple[datetime, int, int], TimelineRow]] = []
    for index, entry in enumerate(entries):
        moment: Marker | None = claims.get(index)
        if moment is None and entry.marker in ("deploy", "note"):
            moment = entry.marker
        elif moment is None and entry.kind == "deploy":
            moment = "deploy"
        keyed.append((
            (entry.at, 1, entry.position),
            TimelineRow(
                number=0,
                at=entry.at,
                moment=moment,
                source=entry.source,
                kind=entry.kind,
                subject=shown(entry),
                state=entry.state,
                text=entry.text or f"{kind_noun(entry.kind)} {entry.state}",
                repeats=entry.repeats,
                last_repeat_at=entry.last_repeat_at,
                received_at=entry.received_at,
                entry_index=index,
            ),
        ))
    claimed = set(claims.values())
    for order, (name, when) in enumerate(_moments(incident).items()):
        if when is None or name in claimed:
            continue
        # A start sorts before the entries of its second; later moments after them.
        rank = 0 if name == "started" else 2
        keyed.append((
            (when, rank, order),
            TimelineRow(number=0, at=when, moment=name, source="", kind="", subject="",
                        state="", text=_moment_text(name, incident), from_log=False),
        ))
    keyed.sort(key=lambda pair: pair[0])
    return tuple(
        replace(row, number=number) for number, (_, row) in enumerate(keyed, start=1)
    )


# --- 3. Contributing factors ----------------------------------------------------------


def _row_of(incident: Incident, rows: Iterable[TimelineRow], entry: TimelineEntry) -> TimelineRow:
    """The row showing ``entry``: rows keep their entry's index in ``_entries``, which
    sorts the incident's own entry objects, so identity finds it."""
    index = next(i for i, e in enumerate(_entries(incident)) if e is entry)
    return next(r for r in rows if r.entry_index == index)


def _first_failing(incident: Incident) -> dict[str, TimelineEntry]:
    """Each failing subject's first failing entry, in time order (deploys are changes,
    not checks, whatever state a failed one carries)."""
    first: dict[str, TimelineEntry] = {}
    for entry in _entries(incident):
        if entry.state == "failing" and entry.kind != "deploy" and entry.subject not in first:
            first[entry.subject] = entry
    return first


def _deploy_factors(incident: Incident, rows: tuple[TimelineRow, ...]) -> list[Factor]:
    latest: dict[tuple[str, str | None, str | None], TimelineEntry] = {}
    for entry in _entries(incident):
        # TIMELINE.md rule 7: deploys before the start are the candidates; those during
        # the incident (a rollback, a fix) stay in the timeline only.
        if entry.kind != "deploy" or entry.at > incident.started_at:
            continue
        ref = _attr(entry, "ref", "sha", "commit", "revision")
        environment = _attr(entry, "environment", "env")
        # Started then finished: the event closest to impact says the most.
        latest[(entry.subject, ref, environment)] = entry
    factors = []
    for (subject, ref, environment), entry in latest.items():
        before = human_duration((incident.started_at - entry.at).total_seconds())
        verb = _DEPLOY_VERBS.get(entry.action or "", "ran")
        what = f"Deployment of {short_revision(ref)}" if ref else f"A deployment of {subject}"
        where = f" to {environment}" if environment else ""
        when = "as impact began" if entry.at == incident.started_at else f"{before} before impact"
        origin = f" ({subject})" if ref else ""
        statement = f"{what}{where} {verb} {when}{origin}."
        target = environment or "the environment"
        if entry.action in ("failed", "pipeline_failed"):
            # A failed run may not have reached anything: ask what it left behind.
            why = (
                f"The pipeline failed for this change: did any part of it reach {target}, "
                "and did the failure leave the system in a state that contributed?"
            )
        else:
            why = (
                f"The deploy pipeline allowed this change to reach {target}: did it "
                "contribute, and which check in the pipeline could have stopped it?"
            )
        row = _row_of(incident, rows, entry)
        factors.append(Factor("deploy", statement, why, row.number, row.at))
    return factors


def _certificate_factors(incident: Incident, rows: tuple[TimelineRow, ...]) -> list[Factor]:
    factors = []
    for subject, entry in _first_failing(incident).items():
        if entry.kind != "ssl":
            continue
        expiry = _attr(entry, "expires_at", "not_after") or prose_time(entry.at)
        statement = (
            f"The certificate for {subject} expired at {expiry}; "
            "no renewal replaced it before then."
        )
        why = (
            "Why did certificate renewal not complete before expiry, and why did no "
            "expiry warning lead to a renewal in time?"
        )
        row = _row_of(incident, rows, entry)
        factors.append(Factor("certificate", statement, why, row.number, row.at))
    return factors


def _cron_factors(incident: Incident, rows: tuple[TimelineRow, ...]) -> list[Factor]:
    factors = []
    for subject, entry in _first_failing(incident).items():
        if entry.kind != "cron":
            continue
        details = []
        schedule = _attr(entry, "schedule", "period", "timeout")
        if schedule:
            zone = _attr(entry, "tz", "timezone")
            details.append(f"schedule {schedule}" + (f" {zone}" if zone else ""))
        last_ping = _attr(entry, "last_ping")
        if last_ping:
            details.append(f"last ping {last_ping}")
        down_at = _attr(entry, "down_at")
        if down_at:
            details.append(f"reported down at {down_at}")
        extra = f" ({'; '.join(details)})" if details else ""
        due = prose_time(entry.at)
        statement = f"The scheduled job {subject} missed its run due at {due}{extra}."
        why = "Why did the job not run, or not report success, by its deadline?"
        if _attr(entry, "hung_run"):  # it sent /start and never finished (healthchecks)
            statement = (f"The scheduled job {subject} started a run (failing from {due}) "
                         f"that did not finish within its grace period{extra}.")
            why = "Why did the run not finish, and why did nothing stop or report it?"
        row = _row_of(incident, rows, entry)
        factors.append(Factor("missed_run", statement, why, row.number, row.at))
    return factors


def _detection_factors(incident: Incident, rows: tuple[TimelineRow, ...]) -> list[Factor]:
    first = _first_failing(incident)
    late = incident.late_detector
    if late and late in first:
        entry = first[late]
        delay = human_duration((entry.received_at - entry.at).total_seconds())
        statement = (
            f"The {kind_noun(entry.kind)} {subject_shown(incident, late)} failed at "
            f"{prose_time(entry.at)} but its "
            f"first report arrived {delay} later, at {prose_time(entry.received_at)}."
        )
        slow = _SLOW_BECAUSE.get(entry.kind, "its notification settings")
        why = f"Why does this monitor take {delay} to notify (consider {slow})?"
        row = _row_of(incident, rows, entry)
        return [Factor("late_monitor", statement, why, row.number, row.at)]
    detected = next((r for r in rows if r.moment == "detected"), None)
    if incident.detected_at is None or detected is None:
        return []
    latency = incident.detected_at - incident.started_at
    if incident.detected_by == "human":
        statement = (
            "No monitor reported a failure before the incident was declared at "
            f"{prose_time(incident.detected_at)}"
            + (f", {human_duration(latency.total_seconds())} after impact began."
               if latency > timedelta(0) else ".")
        )
        why = "Why did no check cover what users experienced?"
        return [Factor("no_monitor", statement, why, detected.number, detected.at)]
    if incident.detection_verdict != "ok":
        detector = incident.first_detector
        source = f" from {subject_shown(incident, detector)}" if detector else ""
        took = human_duration(latency.total_seconds())
        statement = f"The first notification{source} arrived {took} after impact began."
        kind = first[detector].kind if detector in first else ""
        hint = _SLOW_BECAUSE.get(kind)
        why = (
            f"Why did the first notification take {took} (consider {hint})?" if hint
            else "Why did no monitor notify sooner, and which check would have?"
        )
        return [Factor("late_monitor", statement, why, detected.number, detected.at)]
    return []


def contributing_factors(incident: Incident, rows: tuple[TimelineRow, ...]) -> tuple[Factor, ...]:
    """The candidates the log shows, in timeline order: deploys before impact, expired
    certificates, missed cron runs, and a monitor that notified late (or none at all)."""
    order = {"deploy": 0, "certificate": 1, "missed_run": 2, "late_monitor": 3, "no_monitor": 4}
    found = [
        *_deploy_factors(incident, rows),
        *_certificate_factors(incident, rows),
        *_cron_factors(incident, rows),
        *_detection_factors(incident, rows),
    ]
    return tuple(sorted(found, key=lambda f: (f.row, order[f.kind], f.statement)))


# --- 5. Detection time analysis -------------------------------------------------------


def shown(entry: TimelineEntry) -> str:
    """The subject as texts show it: an alert by its alertname, not its label set."""
    return entry.name or entry.subject


def _first_report(incident: Incident, entry: TimelineEntry) -> datetime:
    """When the subject's failure first reached us: its earliest failing report, which
    need not be the entry with the earliest failure time (a late report of an earlier
    failure, e.g. a missed cron run computed after the fact, moves the start only)."""
    return min(
        (e.received_at for e in incident.timeline
         if e.subject == entry.subject and e.state == "failing" and e.kind != "deploy"),
        default=entry.received_at,
    )


def _detector_text(incident: Incident, entry: TimelineEntry) -> str:
    received = _first_report(incident, entry)
    after = human_duration((received - incident.started_at).total_seconds())
    # An alert's pending period (TIMELINE.md rule 8), named as a cron grace period is.
    waited = _attr(entry, "pending_for")
    pending = f" (the rule waited `for: {waited}` before firing)" if waited else ""
    return (
        f"{shown(entry)} ({kind_noun(entry.kind)}, {entry.source}): failing from "
        f"{prose_time(entry.at)}{pending}, first report received at "
        f"{prose_time(received)}, {after} after impact began"
    )


def _would_catch_sooner(incident: Incident) -> str:
    if incident.late_detector:
        late = subject_shown(incident, incident.late_detector)
        return f"{late}, which failed first but notified last"
    if not {e.kind for e in incident.timeline if e.state == "failing"} & {"uptime", "cron", "ssl"}:
        return f"an uptime check for {incident.service}, which does not exist yet"
    if incident.first_detector:
        return f"{subject_shown(incident, incident.first_detector)}, if it notified sooner"
    return "a check that does not exist yet"


def detection_analysis(incident: Incident) -> DetectionAnalysis:
    latency = incident.detection_latency_seconds
    if latency is None and incident.detected_at is not None:
        latency = (incident.detected_at - incident.started_at).total_seconds()
    latency_text = None if latency is None else human_duration(latency)
    if incident.detection_verdict == "critical":
        if incident.detected_by == "human":
            verdict_text = (
                "critical: detected by a human, with no monitor signal before the "
                "declaration: we most likely learned of it from users."
            )
        else:
            verdict_text = (
                f"critical: detected after more than 30 minutes ({latency_text}): "
                "we most likely learned of it from users."
            )
    elif incident.detection_verdict == "gap":
        verdict_text = (
            f"gap: a P1 detected after more than 5 minutes ({latency_text}) is a monitoring "
            f"gap: the monitor that would have caught it sooner is {_would_catch_sooner(incident)}."
        )
    else:
        target = "5 minutes for a P1" if incident.severity == "P1" else "30 minutes"
        verdict_text = f"ok: detected within the target ({target})."

    first = _first_failing(incident)
    if incident.detected_by == "human" and not first:
        first_text = "No monitor: an engineer declared the incident."
    elif incident.first_detector and incident.first_detector in first:
        first_text = _detector_text(incident, first[incident.first_detector])
    elif incident.first_detector:
        first_text = subject_shown(incident, incident.first_detector)
    else:
        first_text = "Not recorded."

    fired_last: str | None = None
    if incident.late_detector and incident.late_detector in first:
        fired_last = incident.late_detector
        fired_text = (
            _detector_text(incident, first[fired_last])
            + ": it failed first but notified last"
        )
    elif len(first) > 1:
        last = max(first.values(), key=lambda e: (e.received_at, e.position))
        fired_last = last.subject
        fired_text = _detector_text(incident, last)
    elif first:
        fired_text = f"Only {shown(next(iter(first.values())))} reported the failure."
    else:
        fired_text = "No monitor reported the failure."
    if notified_after_recovery(incident):
        verdict_text += f" Notified after recovery: {_after_recovery(incident)}."
    return DetectionAnalysis(
        detected_by=incident.detected_by,
        started_at=incident.started_at,
        detected_at=incident.detected_at,
        latency_seconds=latency,
        latency=latency_text,
        verdict=incident.detection_verdict,
        verdict_text=verdict_text,
        first_detector=incident.first_detector,
        first_detector_text=first_text,
        fired_last=fired_last,
        fired_last_text=fired_text,
    )


# --- 4. Suggested action items ---------------------------------------------------------


def suggested_items(incident: Incident, draft_date: date) -> tuple[DraftActionItem, ...]:
    """Concrete items the detection analysis calls for, due at the 14-day bound."""
    due = draft_date + timedelta(days=MAX_DUE_DAYS)
    first = _first_failing(incident)
    failing_kinds = {e.kind for e in first.values()}
    found: list[tuple[str, str]] = []  # (title, reason)

    def latency_words() -> str:
        if incident.detected_at is None:
            return "late"
        return human_duration((incident.detected_at - incident.started_at).total_seconds())

    if incident.detected_by == "human":
        found.append((
            f"Add an uptime check for {incident.service}",
            "No monitor reported this incident before an engineer declared it.",
        ))
    late = incident.late_detector
    if late and late in first:
        entry = first[late]
        found.append((
            f"Alert on {subject_shown(incident, late)} sooner: "
            f"{_SOONER_BY.get(entry.kind, 'shorten its delay')}",
            f"It failed first but its first report arrived "
            f"{human_duration((entry.received_at - entry.at).total_seconds())} after it failed.",
        ))
    elif incident.detected_by == "monitor" and incident.detection_verdict != "ok":
        detector = incident.first_detector
        if detector and detector in first:
            kind = first[detector].kind
            found.append((
                f"Alert on {subject_shown(incident, detector)} sooner: "
                f"{_SOONER_BY.get(kind, 'shorten its delay')}",
                f"The first notification came {latency_words()} after impact began.",
            ))
        # Only for what users reach through an endpoint: a late cron or certificate
        # check is fixed in that check, not by adding an uptime check next to it.
        if not failing_kinds & {"uptime", "cron", "ssl"}:
            found.append((
                f"Add an uptime check for {incident.service}",
                "No uptime check covers this service; one would report an outage "
                "within minutes.",
            ))
    for subject, entry in first.items():
        if entry.kind == "ssl":
            found.append((
                f"Warn 14 days before the certificate for {subject} expires",
                "The certificate expired before a renewal replaced it.",
            ))
    unique = dict.fromkeys(found)  # keeps order, drops repeats
    return tuple(
        DraftActionItem(title=title, owner=None, due_date=due, status="open",
                        origin="suggested", reason=reason)
        for title, reason in unique
    )


# --- 1. Summary ------------------------------------------------------------------------


def _service_phrase(service: str) -> str:
    return f"the {service}" if service.lower().endswith("service") else f"the {service} service"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def notified_after_recovery(incident: Incident) -> bool:
    """Whether the first notification came only once the impact had ended (a failure seen
    after the fact, TIMELINE.md rule 4): nobody was paged while it lasted."""
    return (incident.resolved_at is not None and incident.detected_at is not None
            and incident.detected_by == "monitor"
            and incident.detected_at >= incident.resolved_at)


def _after_recovery(incident: Incident) -> str:
    assert incident.detected_at is not None
    assert incident.resolved_at is not None
    late = human_duration((incident.detected_at - incident.resolved_at).total_seconds())
    when = "as it recovered" if incident.detected_at == incident.resolved_at else (
        f"{late} after it recovered")
    return (f"the first notification arrived only {when}, at "
            f"{prose_time(incident.detected_at)}: nobody was paged during the impact")


def summary_sentences(incident: Incident, *, published: bool = False) -> tuple[str, str, str]:
    """What happened, how long, what users saw: three sentences from facts. Users are
    said to have likely seen it only when the status page shows it (``published``): a
    severity alone does not make a back-office job's failure something users saw."""
    service = _service_phrase(incident.service)
    first = _first_failing(incident)
    checks = [f"{shown(e)} ({kind_noun(e.kind)})" for e in first.values()]
    if not checks:
        what = (
            f"{_capital(service)} had a {incident.severity} incident, declared by an "
            "engineer; no monitor reported a failure."
        )
    else:
        listed = checks[:5] + ([f"{len(checks) - 5} more"] if len(checks) > 5 else [])
        failed = "one check reported a failure" if len(checks) == 1 else (
            f"{len(checks)} checks reported failures")
        what = (
            f"{_capital(service)} had a {incident.severity} incident in which "
            f"{failed}: {_and(listed)}."
        )

    detected = ""
    if notified_after_recovery(incident):
        detected = f"; {_after_recovery(incident)}"
    elif incident.detected_at is not None:
        latency = human_duration((incident.detected_at - incident.started_at).total_seconds())
        detected = f", and it was detected {latency} after it began"
    if incident.resolved_at is None:
        how_long = (
            f"Impact began at {prose_time(incident.started_at)} and the incident was still "
            f"open when this draft was built{detected}."
        )
    else:
        duration = (incident.resolved_at - incident.started_at).total_seconds()
        exact = seconds(duration)
        lasted = human_duration(duration)
        how_long = (
            f"Impact lasted {lasted}{'' if lasted == exact else f' ({exact})'}, from "
            f"{prose_time(incident.started_at)} to {prose_time(incident.resolved_at)}"
            f"{detected}."
        )

    public_checks = [s for s, e in first.items() if e.kind == "uptime"]
    impact = impact_phrase(incident, service)
    if public_checks:
        noun = "check" if len(public_checks) == 1 else "checks"
        users = f"Users were affected: {impact} (public-facing {noun}: {_and(public_checks)})."
    elif published:
        users = (
            f"Users were likely affected ({incident.severity}, shown on the status page): "
            f"{impact}; confirm what they saw."
        )
    else:
        users = (f"{_capital(impact)}; no public-facing check failed: add what users saw, "
                 "if anything.")
    return what, how_long, users
