"""The layout shows the data's path and no import runs back up (issue 11, item 1;
docs/architecture.md, "Where things are"): ``hindsight`` composes ``ingest`` and
``projections``; ``ingest`` imports neither; the read side never imports ``hindsight``;
inside ``projections``, ``web → drafts → engine``, ``runtime → engine`` and
``reactions → engine``, never back, and nothing but the composition root imports
``reactions``. Every import counts, including those inside functions and under
``TYPE_CHECKING``: a deferred import is still an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Room -> the rooms (and top-level packages) its modules may import.
ALLOWED: dict[str, set[str]] = {
    "ingest": {"ingest"},
    "projections.engine": {"ingest", "projections.engine"},
    "projections.runtime": {"ingest", "projections.engine", "projections.runtime",
                            "projections.keys"},
    "projections.drafts": {"ingest", "projections.engine", "projections.drafts"},
    "projections.web": {"ingest", "projections.engine", "projections.drafts",
                        "projections.web", "projections.keys"},
    "projections.reactions": {"ingest", "projections.engine", "projections.reactions"},
    "projections.keys": {"projections.engine"},
}


def _room(module: str) -> str | None:
    for room in sorted(ALLOWED, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    if module.startswith(("hindsight", "projections")):
        return module.split(".")[0]
    return None


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "projections":  # ``from projections import engine``
                names.extend(f"projections.{alias.name}" for alias in node.names)
            else:
                names.append(node.module)
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _arrows() -> list[tuple[str, str]]:
    arrows = []
    for package in ("ingest", "projections"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            arrows.extend((module, imported) for imported in _imports(path))
    return arrows


def test_no_import_runs_back_up() -> None:
    wrong = []
    for module, imported in _arrows():
        source, target = _room(module), _room(imported)
        if source is None or target is None or source not in ALLOWED:
            continue
        if target not in ALLOWED[source]:
            wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_the_rule_catches_an_arrow_back_up() -> None:
    """The check itself can fail: an engine module importing the web room, a draft
    importing the runtime, and the read side importing the composition root are wrong."""
    assert "projections.web" not in ALLOWED[_room("projections.engine.fold") or ""]
    assert "projections.runtime" not in ALLOWED[_room("projections.drafts.draft") or ""]
    assert _room("hindsight.app") not in ALLOWED[_room("projections.web.routes") or ""]


def test_only_the_composition_root_imports_the_reactions() -> None:
    importers = {module for module, imported in _arrows()
                 if imported.startswith("projections.reactions")
                 and not module.startswith("projections.reactions")}
    assert importers == set()


def test_the_read_side_is_in_rooms_not_one_flat_folder() -> None:
    flat = sorted(p.name for p in (ROOT / "projections").glob("*.py"))
    assert flat == ["__init__.py", "keys.py"]
    rooms = {p.name for p in (ROOT / "projections").iterdir()
             if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == {"engine", "runtime", "drafts", "web", "reactions"}
