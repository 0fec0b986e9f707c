"""Listings in a terminal: one table renderer and ``--format table|json|tsv`` for every
listing command (``incidents``, ``deliveries``, ``review``, ``latency``).

A table never cuts an identifier. When a table is wider than the terminal, the free-text
column (a title, an error) wraps first, down to ``MIN_WRAP`` characters; then whole
columns are left out, the least useful first, and the title line says which. A column
marked ``keep`` (an id) is never cut, wrapped or left out: copy it from the table into
the next command. Output that is not a terminal (a pipe, a file) is never narrowed.

``json`` prints the records with full precision (seconds as numbers, times as RFC 3339
with the source's precision); ``tsv`` prints one header line and one line per row, with
tabs and line breaks inside cells replaced by spaces, for ``cut`` and spreadsheets.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

FORMATS = ("table", "json", "tsv")
MIN_WRAP = 16
GAP = "  "


@dataclass(frozen=True)
class Column:
    name: str
    drop: int = 0        # when too wide, left out in increasing order; 0: never
    wrap: bool = False   # free text: wraps to what is left
    right: bool = False  # numbers and durations
    keep: bool = False   # an identifier: never cut, wrapped or left out


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default; fits the terminal without cutting ids), json "
                             "(full precision) or tsv (tab-separated, one header line)")


def terminal_width(out: TextIO) -> int | None:
    """The terminal's width, or None (no limit) when ``out`` is not a terminal."""
    isatty = getattr(out, "isatty", None)
    if isatty is None or not isatty():
        return None
    return shutil.get_terminal_size().columns


def _fit(columns: Sequence[Column], natural: list[int],
         width: int | None) -> tuple[list[int], list[int]]:
    """The indexes of the columns shown and their widths."""
    shown = list(range(len(columns)))
    while True:
        widths = {i: natural[i] for i in shown}
        total = sum(widths.values()) + len(GAP) * (len(shown) - 1)
        if width is None or total <= width:
            return shown, [widths[i] for i in shown]
        for i in shown:
            if columns[i].wrap and widths[i] > MIN_WRAP:
                spare = total - width
                widths[i] = max(MIN_WRAP, widths[i] - spare)
                total = sum(widths.values()) + len(GAP) * (len(shown) - 1)
        if total <= width:
            return shown, [widths[i] for i in shown]
        droppable = [i for i in shown if columns[i].drop and not columns[i].keep]
        if not droppable:
            return shown, [widths[i] for i in shown]  # wider than the terminal, never cut
        shown.remove(min(droppable, key=lambda i: columns[i].drop))


def render_table(title: str, columns: Sequence[Column], cells: Sequence[Sequence[str]],
                 width: int | None) -> str:
    natural = [max([len(c.name), *(len(row[i]) for row in cells)])
               for i, c in enumerate(columns)]
    shown, widths = _fit(columns, natural, width)
    left_out = [columns[i].name for i in range(len(columns)) if i not in shown]
    lines = [title + (f" (left out to fit: {', '.join(left_out)}; --format tsv has all)"
                      if left_out else "")]

    def line(parts: list[list[str]]) -> list[str]:
        height = max(len(p) for p in parts)
        out = []
        for k in range(height):
            texts = []
            for (i, w), part in zip(zip(shown, widths, strict=True), parts, strict=True):
                text = part[k] if k < len(part) else ""
                texts.append(text.rjust(w) if columns[i].right else text.ljust(w))
            out.append(GAP.join(texts).rstrip())
        return out

    lines += line([[columns[i].name] for i in shown])
    lines.append(GAP.join("-" * w for w in widths))
    for row in cells:
        parts = []
        for i, w in zip(shown, widths, strict=True):
            text = row[i]
            if columns[i].wrap and len(text) > w:
                parts.append(textwrap.wrap(text, w) or [""])
            else:
                parts.append([text])
        lines += line(parts)
    return "\n".join(lines) + "\n"


def _tsv_cell(text: str) -> str:
    return " ".join(text.replace("\t", " ").split()) if text else ""


def render_tsv(columns: Sequence[Column], cells: Sequence[Sequence[str]]) -> str:
    lines = ["\t".join(c.name for c in columns)]
    lines += ["\t".join(_tsv_cell(cell) for cell in row) for row in cells]
    return "\n".join(lines) + "\n"


def render_json(records: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps(list(records), option=orjson.OPT_INDENT_2).decode() + "\n"


def emit(fmt: str, *, title: str, columns: Sequence[Column],
         cells: Sequence[Sequence[str]], records: Sequence[Mapping[str, Any]],
         out: TextIO | None = None, width: int | None = None) -> None:
    """Print a listing in ``fmt``. ``cells`` are the table's texts (one per column),
    ``records`` the same rows for ``json``."""
    stream = out or sys.stdout
    if fmt == "json":
        stream.write(render_json(records))
    elif fmt == "tsv":
        stream.write(render_tsv(columns, cells))
    else:
        stream.write(render_table(title, columns, cells,
                                  width if width is not None else terminal_width(stream)))
