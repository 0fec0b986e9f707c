"""``hindsight rebuild``, ``incidents``, ``incident``, ``deliveries`` and ``import``: the
projections in a terminal, against the configured database (the embedded PostgreSQL
under the data directory unless ``HINDSIGHT_DATABASE_URL`` is set).

``import FILE`` runs the import endpoint's own code (``ingest.webhooks.import_lines``
with an ``Ingestor`` built as ``serve`` builds it) directly against the database, so it
needs no running server and no API token: each line is authenticated with the source
credentials from the settings, deduplicated and stored with its recorded receipt time.
When no ``serve`` process leads the projection, it then folds the new deliveries into
the read models itself (a running ``serve`` would have done it live).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from hindsight.cli_output import Column, add_format_option, emit
from hindsight.settings import Settings
from projections.drafts.formats import UNKNOWN, duration, plural
from projections.engine.codec import READ_DOCUMENT, stored_document

IMPORT_CHUNK = 5000  # lines held in memory at once
MAX_SHARDS = 4  # rebuild processes: each reads the whole log, so more stop paying


def default_shards() -> int:
    return max(1, min(MAX_SHARDS, os.cpu_count() or 1))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rebuild = sub.add_parser(
        "rebuild", help="drop the read models and replay the whole event log (stop "
                        "`hindsight serve` first)",
        description="Drop the read models (incidents, timelines, latency, delivery log) and "
                    "replay the whole event log into them, as after changing [services] or "
                    "the reopen window. The server must be stopped first: a running "
                    "`hindsight serve` projects the same log, and rebuild refuses while it "
                    "does. Nothing in the event log changes.")
    rebuild.add_argument("--diff", action="store_true",
                         help="report the incidents and moments that changed")
    rebuild.add_argument("--batch-size", type=int, default=2000, metavar="N",
                         help="events read and folded per transaction (default 2000)")
    rebuild.add_argument("--shards", type=int, default=1, metavar="N",
                         help="fold the services in N processes (default 1; at most "
                              f"{MAX_SHARDS}, the number of cores here is "
                              f"{default_shards()}): each shard reads and decodes the whole "
                              "log, so it pays only where cores are idle. A log holding a "
                              "manual merge is folded in one process")
    rebuild.set_defaults(func=cmd_rebuild)

    listing = sub.add_parser("incidents", help="incidents, newest first",
                             description="Incidents, newest first. The table never cuts an "
                                         "id: columns are left out to fit the terminal "
                                         "instead (--format tsv or json has all).")
    listing.add_argument("--status", choices=("open", "resolved"),
                         help="only open or only resolved incidents")
    listing.add_argument("--service", help="only this service's incidents")
    listing.add_argument("--limit", type=int, default=50, metavar="N",
                         help="at most N incidents (default 50)")
    add_format_option(listing)
    listing.set_defaults(func=cmd_incidents)

    one = sub.add_parser("incident", help="one incident and its timeline")
    one.add_argument("incident_id", metavar="ID", help="the incident's id (`hindsight "
                                                       "incidents` lists them)")
    one.set_defaults(func=cmd_incident)

    deliveries = sub.add_parser("deliveries", help="what arrived, newest first")
    deliveries.add_argument("--source", help="only this source's deliveries (e.g. "
                                             "alertmanager)")
    deliveries.add_argument("--outcome", choices=("understood", "unmapped", "invalid",
                                                  "unsupported"),
                            help="only deliveries with this outcome")
    deliveries.add_argument("--limit", type=int, default=50, metavar="N",
                            help="at most N deliveries (default 50)")
    add_format_option(deliveries)
    deliveries.set_defaults(func=cmd_deliveries)

    imports = sub.add_parser("import", help="import recorded deliveries (JSON Lines), "
                                            "without a running server")
    imports.add_argument("file", metavar="FILE", help="JSON Lines file, or - for stdin")
    imports.set_defaults(func=cmd_import)


# --- plumbing ------------------------------------------------------------------------

Work = Callable[[str], Coroutine[Any, Any, int]]


async def _with_database(settings: Settings, work: Work) -> int:
    """Run ``work(url)`` against the configured database, migrated."""
    from hindsight.database import configured_database, connect
    from hindsight.migrations import migrate

    async with configured_database(settings) as url:
        conn = await connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return await work(url)


def _run(settings: Settings, work: Work) -> int:
    return asyncio.run(_with_database(settings, work))


def _console(stderr: bool = False) -> Console:
    """Rich output; a fixed width when not a terminal, so piped output is not cut."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 160, soft_wrap=False)


def _time(text: str | None) -> str:
    return UNKNOWN if text is None else text


# --- rebuild ---------------------------------------------------------------------------

def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hindsight.app import engine_config_from
    from hindsight.database import connect, create_pool
    from ingest.store import EventStore
    from projections.runtime import rebuild as rb
    from projections.runtime.projector import RestoredFromAnotherCluster

    out, err = _console(), _console(stderr=True)

    async def work(url: str) -> int:
        conn = await connect(url)
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            store = EventStore(pool, notify=False)
            before = await rb.snapshot(conn) if args.diff else {}
            total = await rb.log_size(conn)
            with Progress(TextColumn("replaying the log"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("events"), TimeElapsedColumn(), TimeRemainingColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("rebuild", total=total)
                try:
                    replayed = await rb.rebuild(
                        conn, store, engine_config_from(settings),
                        batch_size=args.batch_size,
                        progress=lambda n: bar.advance(task, n),
                        shards=max(1, min(MAX_SHARDS, args.shards)), dsn=url)
                except (rb.ProjectorRunning, rb.WriteFailed,
                        RestoredFromAnotherCluster) as exc:
                    err.print(f"hindsight: cannot rebuild: {exc}", style="red", highlight=False)
                    return 1
            after = await rb.snapshot(conn)
        finally:
            await pool.close()
            await conn.close()
        out.print(f"rebuilt from {plural(replayed.events, 'event')} in {replayed.seconds:.2f} s "
                  f"({replayed.per_second:,.0f} events/s); {plural(len(after), 'incident')}",
                  highlight=False)
        if args.diff:
            _print_diff(out, rb.diff(before, after))
        return 0

    return _run(settings, work)


def _print_diff(out: Console, changes: Any) -> None:
    from projections.runtime.rebuild import describe

    if changes.empty:
        out.print("no incident changed", highlight=False)
        return
    out.print(f"{len(changes.added)} added, {len(changes.removed)} removed, "
              f"{len(changes.changed)} changed", highlight=False)
    for inc_id in changes.added:
        out.print(f"  + {inc_id}", highlight=False)
    for inc_id in changes.removed:
        out.print(f"  - {inc_id}", highlight=False)
    for change in changes.changed:
        out.print(f"  ~ {change.incident_id}", highlight=False)
        for name, (was, now) in change.fields.items():
            out.print(f"      {name}: {describe(was)} -> {describe(now)}", highlight=False)


# --- read commands -----------------------------------------------------------------------

def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    from hindsight.database import connect

    async def work(url: str) -> int:
        clauses, values = ["merged_into IS NULL"], []
        for name in ("status", "service"):
            if getattr(args, name):
                values.append(getattr(args, name))
                clauses.append(f"{name} = ${len(values)}")
        conn = await connect(url)
        try:
            rows = await conn.fetch(
                f"""SELECT doc::text AS doc FROM incidents
                    WHERE {' AND '.join(clauses)}
                    ORDER BY started_at DESC, id LIMIT {int(args.limit)}""", *values)
        finally:
            await conn.close()
        docs = [orjson.loads(row["doc"]) for row in rows]
        columns = (Column("id", keep=True), Column("service", drop=9),
                   Column("sev", drop=5), Column("status", drop=8),
                   Column("started", drop=7), Column("detected", drop=1),
                   Column("resolved", drop=2), Column("latency", drop=6, right=True),
                   Column("duration", drop=3, right=True), Column("verdict", drop=4),
                   Column("title", wrap=True))
        cells = [[doc["id"], doc["service"], doc["severity"], doc["status"],
                  _time(doc["started_at"]), _time(doc["detected_at"]),
                  _time(doc["resolved_at"]), duration(doc["detection_latency_seconds"]),
                  duration(doc["duration_seconds"]), doc["detection_verdict"], doc["title"]]
                 for doc in docs]
        records = [{k: doc.get(k) for k in (
            "id", "service", "severity", "status", "started_at", "detected_at",
            "acknowledged_at", "resolved_at", "detection_latency_seconds",
            "duration_seconds", "detected_by", "detection_verdict", "title")} for doc in docs]
        emit(args.format, title=f"{plural(len(rows), 'incident')} (times UTC)",
             columns=columns, cells=cells, records=records)
        return 0

    return _run(settings, work)


MARKERS = {"started": "STARTED", "detected": "DETECTED", "acknowledged": "ACKED",
           "resolved": "RESOLVED", "deploy": "deploy", "note": "note"}


def cmd_incident(args: argparse.Namespace, settings: Settings) -> int:
    from hindsight.database import connect

    async def work(url: str) -> int:
        conn = await connect(url)
        try:
            row = await conn.fetchrow(READ_DOCUMENT, args.incident_id)
        finally:
            await conn.close()
        if row is None:
            _console(stderr=True).print(f"hindsight: no incident {args.incident_id!r}",
                                        highlight=False)
            return 1
        doc = stored_document(row["doc"], row["timeline"])
        out = _console()
        out.print(f"[bold]{doc['title']}[/bold]  ({doc['id']})", highlight=False)
        if doc.get("merged_into"):
            out.print(f"merged into {doc['merged_into']}", highlight=False)
        out.print(f"service {doc['service']} · {doc['severity']} · {doc['status']} · "
                  f"detected by {doc['detected_by']} · verdict {doc['detection_verdict']}",
                  highlight=False)
        for name in ("started_at", "detected_at", "acknowledged_at", "resolved_at"):
            out.print(f"  {name.removesuffix('_at'):<13} {_time(doc[name])}", highlight=False)
        out.print(f"  detection latency {duration(doc['detection_latency_seconds'])}, "
                  f"duration {duration(doc['duration_seconds'])}", highlight=False)
        cells = []
        for entry in doc["timeline"]:
            text = entry["text"]
            if entry.get("repeats"):
                text += f" (repeated {entry['repeats']}×)"
            if entry.get("candidate_factor"):
                text += " [candidate factor]"
            cells.append([entry["at"], MARKERS.get(entry["marker"] or "", ""),
                          entry["source"], entry["subject"], entry["state"], text])
        columns = (Column("at", keep=True), Column("moment", keep=True),
                   Column("source", drop=2), Column("subject", drop=1, wrap=True),
                   Column("state", drop=3), Column("what", wrap=True))
        sys.stdout.flush()
        emit("table", title="timeline (times UTC, exact)", columns=columns, cells=cells,
             records=[])
        return 0

    return _run(settings, work)


def cmd_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    from hindsight.database import connect
    from ingest.signals import format_time

    async def work(url: str) -> int:
        clauses, values = ["true"], []
        for name in ("source", "outcome"):
            if getattr(args, name):
                values.append(getattr(args, name))
                clauses.append(f"{name} = ${len(values)}")
        conn = await connect(url)
        try:
            rows = await conn.fetch(
                f"""SELECT position, received_at, source, outcome, signal_count, error
                    FROM delivery_log WHERE {' AND '.join(clauses)}
                    ORDER BY position DESC LIMIT {int(args.limit)}""", *values)
        finally:
            await conn.close()
        columns = (Column("delivery", keep=True, right=True), Column("received", drop=3),
                   Column("source", drop=4), Column("outcome", drop=5),
                   Column("signals", drop=2, right=True), Column("error", wrap=True))
        cells = [[str(r["position"]), format_time(r["received_at"]), r["source"],
                  r["outcome"], str(r["signal_count"]), r["error"] or ""] for r in rows]
        records = [{"delivery": r["position"], "received_at": format_time(r["received_at"]),
                    "source": r["source"], "outcome": r["outcome"],
                    "signals": r["signal_count"], "error": r["error"]} for r in rows]
        emit(args.format, title=plural(len(rows), "delivery", "deliveries"),
             columns=columns, cells=cells, records=records)
        return 0

    return _run(settings, work)


# --- import ------------------------------------------------------------------------------

def _chunks(path: str) -> Any:
    stream = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    try:
        chunk: list[bytes] = []
        for line in stream:
            chunk.append(line)
            if len(chunk) >= IMPORT_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from hindsight.app import credentials, engine_config_from
    from hindsight.database import connect, create_pool
    from ingest.group_commit import GroupCommitter
    from ingest.store import EventStore
    from ingest.webhooks import Ingestor, IngestSettings, import_lines
    from projections.runtime import rebuild as rb

    if args.file != "-" and not Path(args.file).is_file():
        print(f"hindsight: no such file: {args.file}", file=sys.stderr)
        return 2
    out, err = _console(), _console(stderr=True)

    async def work(url: str) -> int:
        pool = await create_pool(url, min_size=1, max_size=8)
        store = EventStore(pool)
        committer = GroupCommitter(store, max_wait=settings.group_commit_wait_ms / 1000)
        committer.start()
        ingestor = Ingestor(committer, IngestSettings(
            credentials=credentials(settings), max_body_bytes=settings.max_body_bytes,
            tolerance_seconds=settings.signature_tolerance_seconds))
        counts: dict[tuple[int, bool, bool], int] = {}  # (status, stored, duplicate)
        refused: list[dict[str, Any]] = []
        offset = 0
        try:
            for chunk in _chunks(args.file):
                results = await import_lines(ingestor, chunk)
                for r in results:
                    r["line"] += offset
                    key = (r["status"], r["delivery"] is not None, bool(r["duplicate"]))
                    counts[key] = counts.get(key, 0) + 1
                    if r["status"] >= 300:
                        refused.append(r)
                offset += len(chunk)
        finally:
            await committer.close()
        stored = sum(n for (_, kept, dup), n in counts.items() if kept and not dup)
        unmapped = sum(n for (st, kept, dup), n in counts.items() if kept and not dup
                       and st in (400, 422))
        again = sum(n for (_, kept, dup), n in counts.items() if dup)
        rejected = sum(n for (_, kept, _dup), n in counts.items() if not kept)
        lines = plural(sum(counts.values()), "line")
        out.print(f"{lines}: {stored:,} stored ({unmapped:,} of them "
                  f"not understood), {again:,} already stored, {rejected:,} refused",
                  highlight=False)
        for r in refused[:20]:
            out.print(f"  line {r['line']}: {r['status']} {r['error'] or ''}", highlight=False)
        conn = await connect(url)
        try:
            replayed = await rb.catch_up(conn, store, engine_config_from(settings))
            out.print(f"projected {plural(replayed.events, 'event')}", highlight=False)
        except rb.ProjectorRunning:
            err.print("a running `hindsight serve` projects them", highlight=False)
        finally:
            await conn.close()
            await pool.close()
        return 1 if any(r["delivery"] is None for r in refused) else 0

    return _run(settings, work)
