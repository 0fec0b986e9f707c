"""GET /openapi.json: the HTTP contract (API.md) as an OpenAPI 3.1 document.

One entry per route in ``OPERATIONS``. ``document(app)`` keeps the operations the
application registered; ``undocumented(app)`` lists registered routes the document lacks:
a test asserts it is empty, so a new route cannot be forgotten here.

The bodies of the manual-event and action-item routes, and their answers, are generated
from the pydantic models the handlers validate and answer with (``MODELS``): one source
of truth, so the document cannot drift from what the server accepts. Requests there are
strict (a misspelt field is a 422); answers name the fields clients rely on and allow
more, so adding a field is not a breaking change; removing or retyping one is. The other
schemas are written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from ingest.action_items import ITEM_ALIASES, ITEM_EVENT_BODY, AddItemBody
from ingest.manual import EVENT_ALIASES, EVENT_BODY, DeclareBody
from ingest.sources import SOURCES
from projections.web.routes import (
    ActionItemsAnswer,
    ConflictAnswer,
    ErrorAnswer,
    ItemEventAnswer,
    ManualEventAnswer,
    ReviewAnswer,
)

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _bad_request(description: str) -> dict[str, Any]:
    # aiohttp's HTTPBadRequest from a malformed query parameter answers in plain text.
    return {"description": description, "content": {
        JSON: {"schema": _ref("Error")}, "text/plain": {"schema": {"type": "string"}}}}


def _text(media: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _path(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"]}
SINCE = _query("since", "RFC 3339 time: only from then on", TIME)
UNTIL = _query("until", "RFC 3339 time: only before then", TIME)
UNAUTHORIZED = _error("missing or wrong API token")
UNAVAILABLE = _error("the event store is unavailable: retry later")
API_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"queryToken": []}]
OPEN: list[dict[str, list[str]]] = []
ANY_JSON_OBJECT: Schema = {"type": "object"}

REF_TEMPLATE = "#/components/schemas/{model}"
# name in components/schemas -> (model or adapter, mode): requests are read as the
# handlers validate them, answers as they are serialised.
MODELS: dict[str, tuple[type[BaseModel] | TypeAdapter[Any], JsonSchemaMode]] = {
    "Error": (ErrorAnswer, "serialization"),
    "DeclareBody": (DeclareBody, "validation"),
    "EventBody": (EVENT_BODY, "validation"),
    "ManualEventAnswer": (ManualEventAnswer, "serialization"),
    "Conflict": (ConflictAnswer, "serialization"),
    "AddItemBody": (AddItemBody, "validation"),
    "ItemEventBody": (ITEM_EVENT_BODY, "validation"),
    "ItemEventAnswer": (ItemEventAnswer, "serialization"),
    "ActionItems": (ActionItemsAnswer, "serialization"),
    "Review": (ReviewAnswer, "serialization"),
}


def model_schemas() -> dict[str, Schema]:
    """``MODELS`` as JSON Schemas, the models they refer to beside them."""
    out: dict[str, Schema] = {}
    for name, (model, mode) in MODELS.items():
        adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
        schema = adapter.json_schema(ref_template=REF_TEMPLATE, mode=mode)
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    return out


SCHEMAS: dict[str, Schema] = {
    "WebhookAnswer": {
        "type": "object", "required": ["delivery", "duplicate"],
        "properties": {"delivery": {"type": "integer"}, "duplicate": {"type": "boolean"},
                       "signals": {"type": "array", "items": ANY_JSON_OBJECT},
                       "error": {"type": "string"}}},
    "ImportAnswer": {
        "type": "object", "required": ["results"],
        "properties": {"results": {"type": "array", "items": {
            "type": "object", "required": ["line", "status"],
            "properties": {"line": {"type": "integer"}, "status": {"type": "integer"},
                           "delivery": {"type": ["integer", "null"]},
                           "duplicate": {"type": "boolean"},
                           "error": {"type": ["string", "null"]}}}}}},
    "IncidentSummary": {
        "type": "object", "required": ["id", "title", "service", "severity", "status",
                                       "started_at"],
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string"},
            "service": {"type": "string"},
            "severity": {"enum": ["P1", "P2", "P3", "P4"]},
            "status": {"enum": ["open", "resolved"]},
            "started_at": TIME, "detected_at": NULLABLE_TIME,
            "acknowledged_at": NULLABLE_TIME, "resolved_at": NULLABLE_TIME,
            "detection_latency_seconds": {"type": ["number", "null"]},
            "duration_seconds": {"type": ["number", "null"]},
            "detected_by": {"type": ["string", "null"]},
            "detection_verdict": {"type": ["string", "null"]}}},
    "Incident": {"allOf": [_ref("IncidentSummary"), {
        "type": "object", "required": ["timeline"],
        "properties": {"timeline": {"type": "array", "items": _ref("TimelineEntry")}}}]},
    "TimelineEntry": {
        "type": "object", "required": ["at", "marker", "kind"],
        "properties": {"at": TIME, "received_at": NULLABLE_TIME,
                       "marker": {"type": ["string", "null"]},
                       "source": {"type": ["string", "null"]}, "kind": {"type": "string"},
                       "subject": {"type": ["string", "null"]},
                       "state": {"type": ["string", "null"]},
                       "text": {"type": ["string", "null"]}}},
    "DeliverySummary": {
        "type": "object", "required": ["delivery", "source", "received_at", "outcome"],
        "properties": {"delivery": {"type": "integer"}, "source": {"type": "string"},
                       "received_at": TIME, "outcome": {"type": "string"},
                       "error": {"type": ["string", "null"]},
                       "signals": {"type": "integer"}}},
    "Delivery": {
        "type": "object",
        "required": ["delivery", "source", "received_at", "recorded_at", "headers", "outcome",
                     "signals"],
        "properties": {"delivery": {"type": "integer"}, "source": {"type": "string"},
                       "received_at": TIME, "recorded_at": TIME,
                       "headers": {"type": "object"}, "imported": {"type": "boolean"},
                       "body": {"type": ["string", "null"]},
                       "body_base64": {"type": ["string", "null"]},
                       "outcome": {"type": "string"}, "error": {"type": ["string", "null"]},
                       "signals": {"type": "array", "items": ANY_JSON_OBJECT}}},
    "LatencyRow": {
        "type": "object", "required": ["group", "incidents"],
        "properties": {"group": {"type": ["string", "null"]},
                       "incidents": {"type": "integer"},
                       "p50_seconds": {"type": ["number", "null"]},
                       "p90_seconds": {"type": ["number", "null"]},
                       "max_seconds": {"type": ["number", "null"]},
                       "p1_over_5m": {"type": ["integer", "null"]},
                       "over_30m": {"type": ["integer", "null"]}}},
}

INCIDENT_ID = _path("id", "incident id (inc_…)")


def _body(name: str) -> Schema:
    return {"required": True, "content": {JSON: {"schema": _ref(name)}}}


CONTRADICTION = ("Contradictory input is a 422 naming the field (docs/lifecycle.md "
                 "lists the checks).")

OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/v1/webhooks/{source}": {
        "post": {
            "summary": "Receive a webhook delivery from a monitoring tool",
            "description": "Authenticated per source (token, or the tool's signature). "
                           "Every 2xx, 400 and 422 is sent only after the delivery is "
                           "committed; a retry answers as the first delivery did.",
            "security": OPEN,
            "parameters": [
                _path("source", "the monitoring tool", {"enum": list(SOURCES)}),
                _query("token", "the source's token, for tools that cannot set headers")],
            "requestBody": {"required": False, "content": {
                JSON: {"schema": {}},
                "application/x-www-form-urlencoded": {"schema": ANY_JSON_OBJECT}}},
            "responses": {
                "200": _json(_ref("WebhookAnswer"), "a retry of a stored delivery"),
                "202": _json(_ref("WebhookAnswer"), "understood and stored"),
                "400": _json(_ref("WebhookAnswer"), "authentic, not valid JSON or form: stored"),
                "401": _error("missing or wrong credential or signature"),
                "404": _error("unknown or disabled source"),
                "408": _error("the request body stopped arriving"),
                "413": _error("body over the limit (default 1 MiB)"),
                "415": _json(_ref("WebhookAnswer"), "authentic, unsupported content type: stored"),
                "422": _json(_ref("WebhookAnswer"), "authentic, parsed, not mappable: stored"),
                "503": UNAVAILABLE}},
    },
    "/v1/deliveries/import": {
        "post": {
            "summary": "Import recorded deliveries (JSON Lines, one delivery a line)",
            "requestBody": {"required": True, "content": {
                "text/plain": {"schema": {"type": "string"}}}},
            "responses": {"200": _json(_ref("ImportAnswer"), "one result per line"),
                          "401": UNAUTHORIZED, "408": _error("the request body stopped arriving"),
                          "413": _text("text/plain", "body over 256 MiB"),
                          "503": UNAVAILABLE}},
    },
    "/v1/incidents": {
        "get": {
            "summary": "Incidents, newest first",
            "parameters": [_query("status", "open or resolved", {"enum": ["open", "resolved"]}),
                           _query("service", "one service"), SINCE, UNTIL,
                           _query("limit", "at most this many (≤ 1000)",
                                  {"type": "integer", "minimum": 1, "maximum": 1000})],
            "responses": {
                "200": _json({"type": "object", "required": ["incidents"], "properties": {
                    "incidents": {"type": "array", "items": _ref("IncidentSummary")}}},
                    "incident summaries"),
                "400": _bad_request("a malformed parameter"), "401": UNAUTHORIZED}},
        "post": {
            "summary": "Declare an incident (detected by a human)",
            "description": "An Idempotency-Key header makes a retry answer as the first. "
                           + CONTRADICTION,
            "requestBody": _body("DeclareBody"),
            "responses": {"201": _json(_ref("ManualEventAnswer"), "declared"),
                          "400": _error("body is not a JSON object"), "401": UNAUTHORIZED,
                          "409": _json(_ref("Conflict"), "If-Match does not match"),
                          "422": _error("the declaration is not valid (names the field)"),
                          "503": UNAVAILABLE}},
    },
    "/v1/incidents/{id}": {
        "get": {
            "summary": "One incident with its timeline",
            "parameters": [INCIDENT_ID,
                           _query("as_of", "RFC 3339 time: the incident as known then", TIME)],
            "responses": {"200": _json(_ref("Incident"), "the incident"),
                          "400": _bad_request("a malformed parameter"), "401": UNAUTHORIZED,
                          "404": _error("no such incident (at that time)")}},
    },
    "/v1/incidents/{id}/postmortem": {
        "get": {
            "summary": "The postmortem draft (Markdown, or JSON sections)",
            "parameters": [INCIDENT_ID,
                           _query("format", "json for the sections as JSON", {"enum": ["json"]}),
                           _query("draft_date", "YYYY-MM-DD", {"type": "string",
                                                               "format": "date"})],
            "responses": {
                "200": {"description": "the draft", "content": {
                    "text/markdown": {"schema": {"type": "string"}},
                    JSON: {"schema": ANY_JSON_OBJECT}}},
                "400": _error("a malformed parameter"), "401": UNAUTHORIZED,
                "404": _error("no such incident")}},
    },
    "/v1/incidents/{id}/events": {
        "post": {
            "summary": "Add a manual event: " + ", ".join(EVENT_ALIASES),
            "description": "``type`` is the short name or the full event type "
                           f"({', '.join(EVENT_ALIASES.values())}). If-Match makes the "
                           "append conditional on the incident's version; an "
                           "Idempotency-Key header makes a retry answer as the first. "
                           + CONTRADICTION,
            "parameters": [INCIDENT_ID],
            "requestBody": _body("EventBody"),
            "responses": {"201": _json(_ref("ManualEventAnswer"), "stored"),
                          "400": _error("body is not a JSON object, or a bad If-Match"),
                          "401": UNAUTHORIZED, "404": _error("no such incident"),
                          "409": _json(_ref("Conflict"), "If-Match does not match"),
                          "422": _error("the event is not valid or contradicts the "
                                        "incident (names the field)"),
                          "503": UNAVAILABLE}},
    },
    "/v1/incidents/{id}/action-items": {
        "post": {
            "summary": "Add an action item to an incident",
            "description": "An Idempotency-Key header makes a retry answer as the first "
                           "(the same item). " + CONTRADICTION,
            "parameters": [INCIDENT_ID],
            "requestBody": _body("AddItemBody"),
            "responses": {"201": _json(_ref("ItemEventAnswer"), "added"),
                          "400": _error("body is not a JSON object"), "401": UNAUTHORIZED,
                          "404": _error("no such incident"),
                          "422": _error("the item is not valid (names the field)"),
                          "503": UNAVAILABLE}},
    },
    "/v1/action-items": {
        "get": {
            "summary": "Action items",
            "parameters": [_query("status", "open or done", {"enum": ["open", "done"]}),
                           _query("incident", "one incident"),
                           _query("overdue", "true: only overdue ones", {"enum": ["true"]}),
                           _query("unassigned", "true: only those with no owner",
                                  {"enum": ["true"]}),
                           _query("today", "YYYY-MM-DD (default: today)",
                                  {"type": "string", "format": "date"})],
            "responses": {
                "200": _json(_ref("ActionItems"), "action items"),
                "400": _error("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/action-items/review": {
        "get": {
            "summary": "The weekly review of action items",
            "parameters": [_query("today", "YYYY-MM-DD (default: today)",
                                  {"type": "string", "format": "date"})],
            "responses": {"200": _json(_ref("Review"), "the review"),
                          "400": _error("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/action-items/{item_id}/events": {
        "post": {
            "summary": "Assign, set a due date, link a ticket, complete",
            "description": "``type`` is the short name or the full event type "
                           f"({', '.join(ITEM_ALIASES.values())}). An Idempotency-Key "
                           "header makes a retry answer as the first. " + CONTRADICTION,
            "parameters": [_path("item_id", "action item id (ai_…)")],
            "requestBody": _body("ItemEventBody"),
            "responses": {"201": _json(_ref("ItemEventAnswer"), "stored"),
                          "400": _error("body is not a JSON object"), "401": UNAUTHORIZED,
                          "404": _error("no such action item"),
                          "422": _error("the event is not valid (names the field)"),
                          "503": UNAVAILABLE}},
    },
    "/v1/deliveries": {
        "get": {
            "summary": "What arrived, newest first",
            "parameters": [
                _query("source", "one source"),
                _query("outcome", "understood, unmapped, invalid",
                       {"enum": ["understood", "unmapped", "invalid", "unsupported"]}),
                SINCE,
                _query("limit", "at most this many (≤ 1000)",
                       {"type": "integer", "minimum": 1, "maximum": 1000})],
            "responses": {
                "200": _json({"type": "object", "required": ["deliveries"], "properties": {
                    "deliveries": {"type": "array", "items": _ref("DeliverySummary")}}},
                    "deliveries"),
                "400": _bad_request("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/deliveries/{id}": {
        "get": {
            "summary": "One delivery: raw body and headers kept, what was made of it",
            "parameters": [_path("id", "delivery number", {"type": "integer", "minimum": 1,
                                                           "maximum": 2**63 - 1})],
            "responses": {"200": _json(_ref("Delivery"), "the delivery"),
                          "401": UNAUTHORIZED, "404": _error("no such delivery")}},
    },
    "/v1/detection-latency": {
        "get": {
            "summary": "Detection latency by week, month, service, source or severity",
            "parameters": [_query("group_by", "the grouping", {"enum": [
                "week", "month", "service", "source", "severity"]}), SINCE, UNTIL],
            "responses": {
                "200": _json({"type": "object", "required": ["rows"], "properties": {
                    "rows": {"type": "array", "items": _ref("LatencyRow")}}}, "rows"),
                "400": _bad_request("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/detection-latency/worst": {
        "get": {
            "summary": "The incidents detected slowest",
            "parameters": [_query("limit", "1 to 100 (default 10)",
                                  {"type": "integer", "minimum": 1, "maximum": 100}),
                           SINCE, UNTIL],
            "responses": {
                "200": _json({"type": "object", "required": ["incidents"], "properties": {
                    "incidents": {"type": "array", "items": ANY_JSON_OBJECT}}}, "incidents"),
                "400": _bad_request("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/status": {
        "get": {"summary": "Public status: incidents users saw, public summary only",
                "security": OPEN,
                "responses": {"200": _json(ANY_JSON_OBJECT, "the status")}},
    },
    "/status": {
        "get": {"summary": "The public status page", "security": OPEN,
                "responses": {"200": _text("text/html", "HTML")}},
    },
    "/status/feed.atom": {
        "get": {"summary": "The public status as an Atom feed", "security": OPEN,
                "responses": {"200": _text("application/atom+xml", "Atom")}},
    },
    "/status/style.css": {
        "get": {"summary": "The public status page's style sheet", "security": OPEN,
                "responses": {"200": _text("text/css", "CSS")}},
    },
    "/dashboard": {
        "get": {"summary": "The detection-latency dashboard (its API calls need a token)",
                "security": OPEN, "responses": {"200": _text("text/html", "HTML")}},
    },
    "/dashboard/assets/{filename}": {
        "get": {"summary": "The dashboard's scripts and styles", "security": OPEN,
                "parameters": [_path("filename", "asset file name")],
                "responses": {"200": {"description": "the file"},
                              "403": {"description": "outside the asset folder"},
                              "404": {"description": "no such file"}}},
    },
    **{path: {"get": {"summary": summary + " (a page; its API calls need a token)",
                      "security": OPEN,
                      **({"parameters": [_path("id", "incident id")]} if "{id}" in path else {}),
                      "responses": {"200": _text("text/html", "HTML")}}}
       for path, summary in (
           ("/incidents", "Incidents, filtered by status, service, severity and period"),
           ("/incidents/new", "Declare an incident"),
           ("/incidents/{id}", "An incident: its four moments, timeline and forms"),
           ("/incidents/{id}/draft", "An incident's postmortem draft as HTML"),
           ("/action-items", "Action items and the weekly review"))},
    "/assets/incidents/{filename}": {
        "get": {"summary": "The incident pages' scripts and styles", "security": OPEN,
                "parameters": [_path("filename", "asset file name")],
                "responses": {"200": {"description": "the file"},
                              "403": {"description": "outside the asset folder"},
                              "404": {"description": "no such file"}}},
    },
    "/setup": {
        "get": {"summary": "Each enabled source's setup (a page; its API calls need a token)",
                "security": OPEN, "responses": {"200": _text("text/html", "HTML")}},
    },
    "/setup/guides/{source}.md": {
        "get": {"summary": "A source's setup guide (docs/sources/<source>.md), read-only",
                "security": OPEN,
                "parameters": [_path("source", "source name",
                                     {"type": "string", "pattern": "^[a-z0-9_-]+$"})],
                "responses": {"200": _text("text/markdown", "Markdown"),
                              "404": {"description": "no such source or guide"}}},
    },
    "/assets/setup/{filename}": {
        "get": {"summary": "The setup page's script", "security": OPEN,
                "parameters": [_path("filename", "asset file name")],
                "responses": {"200": {"description": "the file"},
                              "403": {"description": "outside the asset folder"},
                              "404": {"description": "no such file"}}},
    },
    "/v1/sources": {
        "get": {"summary": "Each enabled source: webhook URL, authentication (never a "
                           "secret), guide, last delivery and counts by outcome",
                "security": API_SECURITY,
                "responses": {
                    "200": _json({"type": "object", "required": ["sources"], "properties": {
                        "sources": {"type": "array", "items": {
                            "type": "object",
                            "required": ["source", "webhook_url", "authentication",
                                         "guide", "last_delivery_at", "deliveries"],
                            "properties": {
                                "source": {"type": "string"},
                                "webhook_url": {"type": "string"},
                                "authentication": {"type": "string"},
                                "guide": {"type": "string"},
                                "last_delivery_at": {"type": ["string", "null"]},
                                "deliveries": {"type": "object", "additionalProperties": {
                                    "type": "integer", "minimum": 1}}}}}}},
                        "the enabled sources"),
                    "401": UNAUTHORIZED}},
    },
    "/healthz": {
        "get": {"summary": "Liveness: the process answers", "security": OPEN,
                "responses": {"200": _json({"type": "object", "required": ["status"],
                                            "properties": {"status": {"const": "ok"}}},
                                           "alive")}},
    },
    "/readyz": {
        "get": {"summary": "Readiness: the database answers and migrations are applied",
                "security": OPEN,
                "responses": {
                    "200": _json({"type": "object", "required": ["status"]}, "ready"),
                    "503": _json({"type": "object", "required": ["status"]},
                                 "database unreachable or migrations pending")}},
    },
    "/metrics": {
        "get": {"summary": "Prometheus metrics (docs/operations.md lists them)",
                "security": OPEN, "responses": {"200": _text("text/plain", "exposition")}},
    },
    "/openapi.json": {
        "get": {"summary": "This document", "security": OPEN,
                "responses": {"200": _json(ANY_JSON_OBJECT, "OpenAPI 3.1")}},
    },
}


# Grafana may be set to PUT its webhooks: the same operation.
OPERATIONS["/v1/webhooks/{source}"]["put"] = OPERATIONS["/v1/webhooks/{source}"]["post"]


def route_paths(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, OpenAPI path) for every registered route but the implicit HEADs."""
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        info = route.resource.get_info()
        if "prefix" in info:  # a static folder
            yield route.method.lower(), f"{info['prefix']}/{{filename}}"
            continue
        path = info.get("path") or info["formatter"]
        pattern = info.get("pattern")
        if pattern is not None:
            # A parameter whose regex is one literal word is that word ({view:review}).
            for name, literal in re.findall(r"\(\?P<(\w+)>([\w-]+)\)", pattern.pattern):
                path = path.replace(f"{{{name}}}", literal)
        yield route.method.lower(), path


def undocumented(app: web.Application) -> list[str]:
    return sorted(f"{method.upper()} {path}" for method, path in route_paths(app)
                  if method not in OPERATIONS.get(path, {}))


def document(app: web.Application | None = None) -> dict[str, Any]:
    registered = None if app is None else set(route_paths(app))
    paths: dict[str, Any] = {}
    for path, operations in OPERATIONS.items():
        kept = {method: op for method, op in operations.items()
                if registered is None or (method, path) in registered}
        if kept:
            paths[path] = kept
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hindsight", "version": "1",
                 "description": "Incident timelines, detection latency and postmortem "
                                "drafts from monitoring webhooks. See API.md."},
        "security": API_SECURITY,
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **model_schemas()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "an [api] token (or a source's token on webhooks)"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"}}},
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app))
