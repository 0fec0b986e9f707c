"""GET /openapi.json: the HTTP contract (API.md) as an OpenAPI 3.1 document.

Written by hand, one entry per route in ``OPERATIONS``. ``document(app)`` keeps the
operations the application registered; ``undocumented(app)`` lists registered routes the
document lacks: a test asserts it is empty, so a new route cannot be forgotten here.
Schemas name the fields clients rely on and allow more (``additionalProperties``), so
adding a field is not a breaking change; removing or retyping one is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ingest.sources import SOURCES

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

SCHEMAS: dict[str, Schema] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}}},
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
    "ManualEventAnswer": {
        "type": "object", "required": ["incident", "event", "version", "duplicate"],
        "properties": {"incident": {"type": "string"}, "event": {"type": "integer"},
                       "version": {"type": "integer"}, "duplicate": {"type": "boolean"}}},
    "Conflict": {"type": "object", "required": ["error", "version"],
                 "properties": {"error": {"type": "string"}, "version": {"type": "integer"}}},
    "ItemEventAnswer": {
        "type": "object", "required": ["item", "event", "version"],
        "properties": {"item": {"type": "string"}, "event": {"type": "integer"},
                       "version": {"type": "integer"}}},
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
ITEM_BODY = {"required": True, "content": {JSON: {"schema": ANY_JSON_OBJECT}}}

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
            "requestBody": ITEM_BODY,
            "responses": {"201": _json(_ref("ManualEventAnswer"), "declared"),
                          "400": _error("body is not a JSON object"), "401": UNAUTHORIZED,
                          "409": _json(_ref("Conflict"), "If-Match does not match"),
                          "422": _error("the declaration is not valid"),
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
            "summary": "Add a manual event: note, severity, impact start, acknowledge, "
                       "resolve, merge, public",
            "parameters": [INCIDENT_ID],
            "requestBody": ITEM_BODY,
            "responses": {"201": _json(_ref("ManualEventAnswer"), "stored"),
                          "400": _error("body is not a JSON object, or a bad If-Match"),
                          "401": UNAUTHORIZED, "404": _error("no such incident"),
                          "409": _json(_ref("Conflict"), "If-Match does not match"),
                          "422": _error("the event is not valid"), "503": UNAVAILABLE}},
    },
    "/v1/incidents/{id}/action-items": {
        "post": {
            "summary": "Add an action item to an incident",
            "parameters": [INCIDENT_ID],
            "requestBody": ITEM_BODY,
            "responses": {"201": _json(_ref("ItemEventAnswer"), "added"),
                          "400": _error("body is not a JSON object"), "401": UNAUTHORIZED,
                          "404": _error("no such incident"),
                          "422": _error("the item is not valid"), "503": UNAVAILABLE}},
    },
    "/v1/action-items": {
        "get": {
            "summary": "Action items",
            "parameters": [_query("status", "one status"), _query("incident", "one incident"),
                           _query("overdue", "true: only overdue ones", {"enum": ["true"]}),
                           _query("today", "YYYY-MM-DD (default: today)",
                                  {"type": "string", "format": "date"})],
            "responses": {
                "200": _json({"type": "object", "required": ["action_items"], "properties": {
                    "action_items": {"type": "array", "items": ANY_JSON_OBJECT}}},
                    "action items"),
                "400": _error("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/action-items/review": {
        "get": {
            "summary": "The weekly review of action items",
            "parameters": [_query("today", "YYYY-MM-DD (default: today)",
                                  {"type": "string", "format": "date"})],
            "responses": {"200": _json(ANY_JSON_OBJECT, "the review"),
                          "400": _error("a malformed parameter"), "401": UNAUTHORIZED}},
    },
    "/v1/action-items/{item_id}/events": {
        "post": {
            "summary": "Assign, set a due date, link a ticket, complete",
            "parameters": [_path("item_id", "action item id (ai_…)")],
            "requestBody": ITEM_BODY,
            "responses": {"201": _json(_ref("ItemEventAnswer"), "stored"),
                          "400": _error("body is not a JSON object"), "401": UNAUTHORIZED,
                          "404": _error("no such action item"),
                          "422": _error("the event is not valid"), "503": UNAVAILABLE}},
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
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "an [api] token (or a source's token on webhooks)"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"}}},
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app))
