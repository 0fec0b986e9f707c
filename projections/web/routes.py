"""The read and manual-event API (API.md), behind the API token (checked by the app)."""

from __future__ import annotations

import base64
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg
import orjson
from aiohttp import web
from pydantic import BaseModel, Field

from ingest.action_items import (
    ActionItemAdded,
    ActionItemCompleted,
    ActionItemDueDateSet,
    ActionItemEvent,
    parse_add_body,
    parse_item_event_body,
)
from ingest.delivery import stored_delivery
from ingest.errors import StoreUnavailable, WrongExpectedVersion
from ingest.keys import POOL, STORE
from ingest.manual import (
    IncidentAcknowledged,
    IncidentDeclared,
    IncidentImpactStartCorrected,
    IncidentMerged,
    IncidentResolved,
    ManualEvent,
    manual_event_from_json,
    manual_event_to_json,
    parse_declare_body,
    parse_event_body,
)
from ingest.signals import format_time
from ingest.sources import understand
from ingest.store import NewEvent
from projections.drafts.draft import build_draft
from projections.drafts.markdown import to_markdown
from projections.engine import action_items as items
from projections.engine.codec import incident_from_json, incident_to_json, stored_document
from projections.engine.facts import signal_from_json
from projections.engine.fold import Engine
from projections.engine.model import Incident
from projections.keys import ENGINE_CONFIG
from projections.web.keys import publication

# The short names clients may use (note, resolve, assign, ...) are the request bodies'
# ``type`` literals: ingest.manual.EVENT_ALIASES, ingest.action_items.ITEM_ALIASES.


# --- answers of the manual-event and action-item routes (/openapi.json's schemas) ------

class ErrorAnswer(BaseModel):
    """Any refusal. A 422 also names the field to fix."""

    error: str = Field(description="what is wrong, starting with the field's name")
    field: str | None = Field(None, description="the field to fix (422 answers)")


class ManualEventAnswer(BaseModel):
    incident: str = Field(description="the incident's id")
    event: int = Field(description="the event's position in the log")
    version: int = Field(description="the incident stream's version (send it as If-Match)")
    duplicate: bool = Field(description="true: this Idempotency-Key was already stored")


class ConflictAnswer(BaseModel):
    error: str
    version: int = Field(description="the incident stream's current version")


class ItemEventAnswer(BaseModel):
    item: str = Field(description="the action item's id (ai_…)")
    event: int = Field(description="the event's position in the log")
    version: int = Field(description="the item stream's version")
    duplicate: bool = Field(False, description="true: this Idempotency-Key was already stored")


class NotificationView(BaseModel):
    target: str
    attempt: int
    reason: str
    status_code: int | None
    error: str | None
    at: datetime
    position: int


class ActionItemView(BaseModel):
    id: str
    incident_id: str
    title: str
    owner: str | None
    due_date: date | None
    ticket_url: str | None
    status: Literal["open", "done"]
    created_at: datetime
    completed_at: datetime | None
    flags: list[str] = Field(description="what falls short, in plain words ('no owner', ...)")
    position: int
    notifications: list[NotificationView]


class ActionItemsAnswer(BaseModel):
    action_items: list[ActionItemView]


class ReviewAnswer(BaseModel):
    today: date
    open: list[ActionItemView]
    overdue: list[ActionItemView]
    unassigned: list[ActionItemView]
    due_beyond_14_days: list[ActionItemView]


def json_response(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json",
                        headers=headers)


def problem(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def invalid(message: str) -> web.Response:
    """422, naming the field the message starts with (``resolved_at: ...``)."""
    field, sep, _ = message.partition(": ")
    named = field if sep and " " not in field and field != "body" else None
    return json_response(ErrorAnswer(error=message, field=named).model_dump(), 422)


def parse_time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: not an RFC 3339 time",
                                 content_type="text/plain") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def limit_param(request: web.Request, default: int, most: int = 1000) -> int:
    raw = request.query.get("limit")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "limit: expected a whole number"}',
                                 content_type="application/json") from None
    return max(1, min(value, most))


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text='{"error": "body is not valid JSON"}',
                                 content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}',
                                 content_type="application/json")
    where = _nul_in(data)
    if where is not None:  # PostgreSQL's text and jsonb cannot hold U+0000
        raise web.HTTPUnprocessableEntity(
            text=orjson.dumps({"error": f"{where}: text must not contain U+0000"}).decode(),
            content_type="application/json")
    return data


def _nul_in(value: Any, path: str = "") -> str | None:
    """The path of the first string (value or key) holding U+0000, else None."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            found = _nul_in(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


# --- incidents -------------------------------------------------------------------------

async def list_incidents(request: web.Request) -> web.Response:
    clauses = ["merged_into IS NULL"]
    args: list[Any] = []
    status = request.query.get("status")
    if status:
        if status not in {"open", "resolved"}:
            return problem(400, "status: open or resolved")
        args.append(status)
        clauses.append(f"status = ${len(args)}")
    if request.query.get("service"):
        args.append(request.query["service"])
        clauses.append(f"service = ${len(args)}")
    for name, op in (("since", ">="), ("until", "<")):
        value = parse_time_param(request, name)
        if value is not None:
            args.append(value)
            clauses.append(f"started_at {op} ${len(args)}")
    limit = limit_param(request, 200)
    sql = (f"SELECT summary::text AS doc FROM incidents WHERE {' AND '.join(clauses)} "
           f"ORDER BY started_at DESC, id LIMIT {limit}")
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(sql, *args)
    return web.Response(
        body=b'{"incidents":[' + b",".join(r["doc"].encode() for r in rows) + b"]}",
        content_type="application/json")


# Documents served as stored (issue 11, item 5): an incident's stored document is read
# into the API's shape once per stored version, not through the dataclasses per request;
# the typed incident a draft needs is decoded once from it, and each rendered draft is
# kept beside it, keyed on every input of ``build_draft`` besides the incident.

# (action items' stored documents, draft date as asked, [status] public_services, format)
DraftKey = tuple[tuple[str, ...], date | None, tuple[tuple[str, str], ...], str]


class StoredIncident:
    """One stored version of an incident document, and what is derived from it on first
    use: the API's JSON, the typed incident, and the drafts rendered from it. Each is a
    function of the stored document (and, for a draft, of its key), so a kept value is
    the value a fresh computation gives."""

    __slots__ = ("_body", "_incident", "doc", "drafts", "version")
    MAX_DRAFTS = 16

    def __init__(self, doc: dict[str, Any], version: tuple[str, int]) -> None:
        self.version = version  # (xmin, jsonb_hash_extended(doc, 0)) of the row read
        self.doc = doc
        self._body: bytes | None = None
        self._incident: Incident | None = None
        self.drafts: OrderedDict[DraftKey, bytes] = OrderedDict()

    @property
    def body(self) -> bytes:
        """GET /v1/incidents/{id}'s answer."""
        if self._body is None:
            self._body = orjson.dumps(self.doc)
        return self._body

    @property
    def incident(self) -> Incident:
        if self._incident is None:
            self._incident = incident_from_json(self.doc)
        return self._incident

    def draft(self, key: DraftKey, render: Callable[[], bytes]) -> bytes:
        found = self.drafts.get(key)
        if found is None:
            found = self.drafts[key] = render()
            if len(self.drafts) > self.MAX_DRAFTS:
                self.drafts.popitem(last=False)
        else:
            self.drafts.move_to_end(key)
        return found


# The stored version is named by the row version's xmin (the transaction that wrote it;
# PostgreSQL keeps it when it freezes the row) and the 64-bit hash of the stored jsonb:
# both read without turning the document into text, and only a document whose two
# differ from the kept ones is sent. Both would have to repeat for a stale answer (a
# cluster restored to an earlier point and rewritten by the same transaction id, with
# a colliding hash). The timeline's rows change only with their incident's row (one
# batch writes both), so the row's version is the timeline's too.
_READ_VERSION = """
    SELECT i.xmin::text AS xmin, jsonb_hash_extended(i.doc, 0) AS hash
    FROM incidents i WHERE i.id = $1"""
# The version and the document together: one statement, one snapshot.
_READ_STORED = """
    SELECT row_xmin AS xmin, doc_hash AS hash, doc::text AS doc, timeline::text AS timeline
    FROM incident_documents WHERE id = $1"""


class StoredIncidents:
    """The last documents read, per incident id (least recently used out first). Each
    request asks PostgreSQL for the row's version; the document is read and decoded
    again only when that differs, so an answer never lags the read model, whatever
    rewrote the row (the projector, a rebuild)."""

    MAX_INCIDENTS = 32

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, StoredIncident] = OrderedDict()

    async def read(self, conn: asyncpg.Connection, incident_id: str) -> StoredIncident | None:
        kept = self._by_id.get(incident_id)
        version = await conn.fetchrow(_READ_VERSION, incident_id)
        if version is None:
            self._by_id.pop(incident_id, None)
            return None
        if kept is not None and kept.version == (version["xmin"], version["hash"]):
            self._by_id.move_to_end(incident_id)
            return kept
        stored = await conn.fetchrow(_READ_STORED, incident_id)
        if stored is None:
            self._by_id.pop(incident_id, None)
            return None
        found = self._by_id[incident_id] = StoredIncident(
            stored_document(stored["doc"], stored["timeline"]),
            (stored["xmin"], stored["hash"]))
        self._by_id.move_to_end(incident_id)
        if len(self._by_id) > self.MAX_INCIDENTS:
            self._by_id.popitem(last=False)
        return found


# One per application (each has its own database); the app is frozen once serving, so
# the caches live beside it rather than under an application key.
_STORED: weakref.WeakKeyDictionary[web.Application, StoredIncidents] = (
    weakref.WeakKeyDictionary())


def stored_incidents(app: web.Application) -> StoredIncidents:
    found = _STORED.get(app)
    if found is None:
        found = _STORED[app] = StoredIncidents()
    return found


async def stored_incident(request: web.Request, incident_id: str) -> StoredIncident | None:
    async with request.app[POOL].acquire() as conn:
        return await stored_incidents(request.app).read(conn, incident_id)


async def load_incident(request: web.Request, incident_id: str) -> dict[str, Any] | None:
    """The incident as the API answers it (read-only: the dict is shared)."""
    stored = await stored_incident(request, incident_id)
    return None if stored is None else stored.doc


async def incident_as_of(pool: asyncpg.Pool, request: web.Request, incident_id: str,
                         service: str, as_of: datetime) -> dict[str, Any] | None:
    """Replay what had been received by ``as_of`` for the incident's service: the
    deliveries (as their signals) and the engineers' manual events, in log order."""
    async with pool.acquire() as conn:
        deliveries = await conn.fetch(
            """SELECT transaction_id, position, received_at, signals::text FROM delivery_log
               WHERE services && ARRAY[$1]::text[] AND received_at <= $2""", service, as_of)
        manual = await conn.fetch(
            """SELECT transaction_id::text::bigint AS transaction_id, position, stream, type,
                      data::text, recorded_at FROM events
               WHERE stream LIKE 'incident-%' AND type LIKE 'incident.%' AND recorded_at <= $1""",
            as_of)
    engine = Engine(request.app[ENGINE_CONFIG])
    log = sorted([(r["transaction_id"], r["position"], "d", r) for r in deliveries]
                 + [(r["transaction_id"], r["position"], "m", r) for r in manual],
                 key=lambda t: (t[0], t[1]))
    for _, position, kind, row in log:
        if kind == "d":
            signals = [signal_from_json(s) for s in orjson.loads(row["signals"])]
            engine.apply_delivery(position, row["received_at"], signals)
        else:
            event = manual_event_from_json(row["type"], orjson.loads(row["data"]))
            engine.apply_manual(position, row["recorded_at"], event,
                                incident_id=row["stream"].removeprefix("incident-"))
    found = engine.incident(incident_id)
    return None if found is None else incident_to_json(found)


async def get_incident(request: web.Request) -> web.Response:
    incident_id = request.match_info["id"]
    stored = await stored_incident(request, incident_id)
    if stored is None:
        return problem(404, f"no incident {incident_id!r}")
    as_of = parse_time_param(request, "as_of")
    if as_of is None:
        return web.Response(body=stored.body, content_type="application/json",
                            headers={"ETag": f'"{stored.doc["version"]}"'})
    doc = await incident_as_of(request.app[POOL], request, incident_id,
                               stored.doc["service"], as_of)
    if doc is None:
        when = request.query["as_of"]
        return problem(404, f"incident {incident_id!r} was not known at {when}")
    return json_response(doc, ETag=f'"{doc["version"]}"')


async def incident_item_docs(conn: asyncpg.Connection, incident_id: str) -> tuple[str, ...]:
    """The stored documents of the incident's action items, in the draft's input order."""
    rows = await conn.fetch("SELECT doc::text FROM action_items WHERE incident_id = $1 "
                            "ORDER BY created_at, id", incident_id)
    return tuple(r["doc"] for r in rows)


async def get_postmortem(request: web.Request) -> web.Response:
    incident_id = request.match_info["id"]
    async with request.app[POOL].acquire() as conn:
        stored = await stored_incidents(request.app).read(conn, incident_id)
        item_docs = () if stored is None else await incident_item_docs(conn, incident_id)
    if stored is None:
        return problem(404, f"no incident {incident_id!r}")
    draft_date: date | None = None
    if request.query.get("draft_date"):
        try:
            draft_date = date.fromisoformat(request.query["draft_date"])
        except ValueError:
            return problem(400, "draft_date: expected YYYY-MM-DD")
    # Whether the status page shows it decides the draft's public-summary duty.
    public_services = publication(request.app).public_services
    wants_json = (request.query.get("format") == "json"
                  or "application/json" in request.headers.get("Accept", ""))

    def render() -> bytes:
        draft = build_draft(stored.incident,
                            [items.item_from_json(orjson.loads(doc)) for doc in item_docs],
                            draft_date, public_services)
        return orjson.dumps(draft.to_json()) if wants_json else to_markdown(draft).encode()

    # The draft is a function of the incident, its items, the draft date and the public
    # services alone (projections/drafts/draft.py: pure, no clock): the key holds all of them.
    key: DraftKey = (item_docs, draft_date, tuple(sorted(public_services.items())),
                     "json" if wants_json else "markdown")
    body = stored.draft(key, render)
    if wants_json:
        return web.Response(body=body, content_type="application/json")
    return web.Response(body=body, content_type="text/markdown", charset="utf-8")


# --- contradictions: what the API checks against the incident's current read model ----
# (docs/lifecycle.md lists them). Each is a 422 naming the field. The read model may lag
# the log by the projector's delay; an incident declared but not yet projected is read
# from its own stream (its declaration and manual events: all it has).

# A clock a little ahead of ours is not a contradiction; an hour ahead is.
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Known:
    """What the API checks an engineer's event against."""

    id: str
    started_at: datetime
    detected_at: datetime | None
    detected_by: str | None
    resolved_at: datetime | None
    merged_into: str | None


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


async def known_incident(request: web.Request, incident_id: str) -> Known | None:
    doc = await load_incident(request, incident_id)
    if doc is not None:
        started = _when(doc["started_at"])
        assert started is not None
        return Known(incident_id, started, _when(doc.get("detected_at")),
                     doc.get("detected_by"), _when(doc.get("resolved_at")),
                     doc.get("merged_into"))
    events = await request.app[STORE].read_stream(f"incident-{incident_id}")
    declared = [e for e in events if e.type == "incident.declared"]
    if not declared:
        return None
    # Not projected yet: the declaration and the events posted since, as the engine reads
    # them for an incident with no signal (TIMELINE.md: the four moments).
    first = declared[0]
    manual = [(e, manual_event_from_json(e.type, e.data)) for e in events]
    started = min((ev.started_at or e.recorded_at for e, ev in manual
                   if isinstance(ev, IncidentDeclared)), default=first.recorded_at)
    resolved: datetime | None = None
    for _, ev in manual:
        if isinstance(ev, IncidentImpactStartCorrected):
            started = ev.started_at
        if isinstance(ev, IncidentResolved):
            resolved = ev.resolved_at
    return Known(incident_id, started, first.recorded_at, "human", resolved, None)


def contradiction(event: ManualEvent, known: Known, now: datetime) -> str | None:
    """Why ``event`` cannot be true of the incident as known, as ``field: reason``."""
    for name in ("at", "resolved_at", "started_at"):
        value = getattr(event, name, None)
        if isinstance(value, datetime) and value > now + FUTURE_SLACK:
            return f"{name}: {format_time(value)} is in the future"
    if isinstance(event, IncidentResolved):
        if event.resolved_at < known.started_at:
            return (f"resolved_at: {format_time(event.resolved_at)} is before the incident "
                    f"started ({format_time(known.started_at)})")
        # A monitor reported it failing at detected_at, so it was not over before. Unless
        # the signals themselves show it over before anyone was told (a failure seen after
        # the fact, TIMELINE.md rule 4), or a person declared it afterwards.
        if (known.detected_by == "monitor" and known.detected_at is not None
                and event.resolved_at < known.detected_at
                and not (known.resolved_at is not None
                         and known.resolved_at < known.detected_at)):
            return (f"resolved_at: {format_time(event.resolved_at)} is before a monitor reported "
                    f"the incident failing ({format_time(known.detected_at)})")
    if isinstance(event, IncidentImpactStartCorrected) and known.resolved_at is not None \
            and event.started_at > known.resolved_at:
        return (f"started_at: {format_time(event.started_at)} is after the incident was resolved "
                f"({format_time(known.resolved_at)})")
    if isinstance(event, IncidentAcknowledged) and event.at < known.started_at:
        return (f"at: {format_time(event.at)} is before the incident started "
                f"({format_time(known.started_at)}); correct the start first")
    if isinstance(event, IncidentMerged) and event.other_id == known.id:
        return "other_id: an incident cannot be merged into itself"
    return None


def client_key(request: web.Request, scope: str) -> str | None:
    """The client's ``Idempotency-Key``, scoped to what it repeats: the stream it
    appends to, or the route that creates a new one (a retried declaration or new action
    item must find the first, whose id the retry did not know). Without one, the store
    makes a key before its first try (ingest.store.with_key)."""
    key = request.headers.get("Idempotency-Key")
    return f"api:{scope}:{key}" if key else None


async def append_manual(request: web.Request, incident_id: str, event: ManualEvent,
                        scope: str | None = None) -> web.Response:
    expected: int | None = None
    if request.headers.get("If-Match"):
        try:
            expected = int(request.headers["If-Match"].strip().strip('"').removeprefix("W/"))
        except ValueError:
            return problem(400, "If-Match: expected the incident's version number")
    stream = f"incident-{incident_id}"
    new = NewEvent(stream=stream, type=event.type, received_at=datetime.now(UTC),
                   data=manual_event_to_json(event),
                   idempotency_key=client_key(request, scope or stream))
    try:
        [appended] = await request.app[STORE].append(stream, [new], expected_version=expected)
    except WrongExpectedVersion as exc:
        return json_response(ConflictAnswer(error=str(exc), version=exc.actual).model_dump(),
                             409)
    except StoreUnavailable:
        return problem(503, "the event store is unavailable; retry later")
    answer = ManualEventAnswer(incident=appended.stream.removeprefix("incident-"),
                               event=appended.position, version=appended.stream_version,
                               duplicate=appended.duplicate)
    return json_response(answer.model_dump(), 201, ETag=f'"{appended.stream_version}"')


async def declare_incident(request: web.Request) -> web.Response:
    """POST /v1/incidents (body: ingest.manual.DeclareBody)."""
    data = await read_json(request)
    try:
        event = parse_declare_body(data, f"inc_{uuid.uuid4().hex[:16]}")
    except ValueError as exc:
        return invalid(str(exc))
    if event.started_at is not None and event.started_at > datetime.now(UTC) + FUTURE_SLACK:
        return invalid(f"started_at: {format_time(event.started_at)} is in the future")
    return await append_manual(request, event.incident_id, event, scope="declare")


async def post_incident_event(request: web.Request) -> web.Response:
    """POST /v1/incidents/{id}/events (body: ingest.manual.EventBody)."""
    incident_id = request.match_info["id"]
    data = await read_json(request)
    try:
        event = parse_event_body(data)
    except ValueError as exc:
        return invalid(str(exc))
    known = await known_incident(request, incident_id)
    if known is None:
        return problem(404, f"no incident {incident_id!r}")
    why = contradiction(event, known, datetime.now(UTC))
    if why is None and isinstance(event, IncidentMerged) \
            and await known_incident(request, event.other_id) is None:
        why = f"other_id: no incident {event.other_id!r}"
    if why is not None:
        return invalid(why)
    return await append_manual(request, incident_id, event)


# --- action items ----------------------------------------------------------------------

def item_contradiction(event: ActionItemEvent, known: Known | None, now: datetime
                       ) -> str | None:
    """Why an action-item event cannot be true of its incident, as ``field: reason``."""
    if isinstance(event, ActionItemCompleted) and event.completed_at is not None:
        if event.completed_at > now + FUTURE_SLACK:
            return f"completed_at: {format_time(event.completed_at)} is in the future"
        if known is not None and event.completed_at < known.started_at:
            return (f"completed_at: {format_time(event.completed_at)} is before its incident "
                    f"started ({format_time(known.started_at)})")
    if isinstance(event, ActionItemAdded | ActionItemDueDateSet) and known is not None \
            and event.due_date is not None \
            and event.due_date < known.started_at.astimezone(UTC).date():
        return (f"due_date: {event.due_date.isoformat()} is before its incident started "
                f"({known.started_at.astimezone(UTC).date().isoformat()})")
    return None


async def append_item_event(request: web.Request, event: ActionItemEvent,
                            scope: str | None = None) -> web.Response:
    stream = f"action-item-{event.item_id}"
    new = NewEvent(stream=stream, type=event.type, received_at=datetime.now(UTC),
                   data=event.model_dump(mode="json"),
                   idempotency_key=client_key(request, scope or stream))
    try:
        [appended] = await request.app[STORE].append(stream, [new])
    except StoreUnavailable:
        return problem(503, "the event store is unavailable; retry later")
    answer = ItemEventAnswer(item=appended.stream.removeprefix("action-item-"),
                             event=appended.position, version=appended.stream_version,
                             duplicate=appended.duplicate)
    return json_response(answer.model_dump(), 201)


async def add_action_item(request: web.Request) -> web.Response:
    """POST /v1/incidents/{id}/action-items (body: ingest.action_items.AddItemBody)."""
    incident_id = request.match_info["id"]
    known = await known_incident(request, incident_id)
    if known is None:
        return problem(404, f"no incident {incident_id!r}")
    data = await read_json(request)
    try:
        event = parse_add_body(data, f"ai_{uuid.uuid4().hex[:12]}", incident_id)
    except ValueError as exc:
        return invalid(str(exc))
    why = item_contradiction(event, known, datetime.now(UTC))
    if why is not None:
        return invalid(why)
    return await append_item_event(request, event, scope=f"incident-{incident_id}:add-item")


async def post_item_event(request: web.Request) -> web.Response:
    """POST /v1/action-items/{item_id}/events (body: ingest.action_items.ItemEventBody)."""
    data = await read_json(request)
    item_id = request.match_info["item_id"]
    try:
        event = parse_item_event_body(data, item_id)
    except ValueError as exc:
        return invalid(str(exc))
    # The log, not the read model (which may lag the item just added), says it exists.
    events = await request.app[STORE].read_stream(f"action-item-{item_id}")
    added = [e for e in events if e.type == "action_item.added"]
    if not added:
        return problem(404, f"no action item {item_id!r}")
    known = await known_incident(request, str(added[0].data["incident_id"]))
    why = item_contradiction(event, known, datetime.now(UTC))
    if why is not None:
        return invalid(why)
    return await append_item_event(request, event)


async def list_action_items(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch("SELECT doc::text FROM action_items ORDER BY created_at, id")
    all_items = [items.item_from_json(orjson.loads(r["doc"])) for r in rows]
    try:
        today = date.fromisoformat(request.query["today"]) if request.query.get("today") \
            else datetime.now(UTC).date()
    except ValueError:
        return problem(400, "today: expected YYYY-MM-DD")
    review = items.weekly_review(all_items, today)
    if request.match_info.get("view") == "review":
        return json_response(review.to_json())
    chosen = all_items
    if request.query.get("status") not in (None, "", "open", "done"):
        return problem(400, "status: open or done")
    if request.query.get("status"):
        chosen = [i for i in chosen if i.status == request.query["status"]]
    if request.query.get("incident"):
        chosen = [i for i in chosen if i.incident_id == request.query["incident"]]
    if request.query.get("overdue") == "true":
        overdue = {i.id for i in review.overdue}
        chosen = [i for i in chosen if i.id in overdue]
    if request.query.get("unassigned") == "true":
        chosen = [i for i in chosen if not i.owner]
    return json_response({"action_items": [i.to_json() for i in chosen]})


# --- the delivery log ------------------------------------------------------------------

async def list_deliveries(request: web.Request) -> web.Response:
    clauses: list[str] = ["true"]
    args: list[Any] = []
    for name in ("source", "outcome"):
        if request.query.get(name):
            args.append(request.query[name])
            clauses.append(f"d.{name} = ${len(args)}")
    since = parse_time_param(request, "since")
    if since is not None:
        args.append(since)
        clauses.append(f"d.received_at >= ${len(args)}")
    limit = limit_param(request, 100)
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT d.position, d.source, d.received_at, d.outcome, d.error, d.signal_count,
                       d.duplicate_of
                FROM delivery_log d WHERE {' AND '.join(clauses)}
                ORDER BY d.position DESC LIMIT {limit}""", *args)
    # Every receipt is listed: a copy (a retry, a redelivery) as a duplicate of the
    # delivery stored first, with that delivery's outcome and signal count.
    return json_response({"deliveries": [
        {"delivery": r["position"], "source": r["source"],
         "received_at": format_time(r["received_at"]),
         "outcome": r["outcome"], "error": r["error"], "signals": r["signal_count"],
         "duplicate": r["duplicate_of"] is not None, "duplicate_of": r["duplicate_of"]}
        for r in rows]})


async def get_delivery(request: web.Request) -> web.Response:
    try:
        position = int(request.match_info["id"])
    except ValueError:
        return problem(404, "no such delivery")
    if not 0 < position < 2**63:
        return problem(404, "no such delivery")
    store = request.app[STORE]
    event = await store.get(position)
    first = event
    if event is not None and event.type == "delivery.copy":
        # A copy's receipt: its own time and headers, the stored delivery's body.
        first = await store.get(event.data["first"])
    if event is None or first is None or first.type != "delivery.received":
        return problem(404, "no such delivery")
    understood = understand(stored_delivery(first))
    body = first.body or b""
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return json_response({
        "delivery": event.position,
        "source": event.data["source"],
        "received_at": format_time(event.received_at),
        "recorded_at": format_time(event.recorded_at),
        "headers": event.data.get("headers", {}),
        "imported": bool(event.metadata.get("imported")),
        "body": text,
        "body_base64": None if text is not None else base64.b64encode(body).decode(),
        "outcome": understood.outcome,
        "error": understood.error,
        "signals": [s.to_json() for s in understood.signals],
        "duplicate": first is not event,
        "duplicate_of": None if first is event else first.position,
    })


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/incidents", list_incidents),
        web.post("/v1/incidents", declare_incident),
        web.get("/v1/incidents/{id}", get_incident),
        web.get("/v1/incidents/{id}/postmortem", get_postmortem),
        web.post("/v1/incidents/{id}/events", post_incident_event),
        web.post("/v1/incidents/{id}/action-items", add_action_item),
        web.get("/v1/action-items", list_action_items),
        web.get("/v1/action-items/{view:review}", list_action_items),
        web.post("/v1/action-items/{item_id}/events", post_item_event),
        web.get("/v1/deliveries", list_deliveries),
        web.get("/v1/deliveries/{id}", get_delivery),
    ]
