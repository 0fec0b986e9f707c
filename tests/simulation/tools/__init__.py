"""The tool models. Each module here models one tool (or a tool and the system in front
of it, like Prometheus before Alertmanager) and exposes ``MODELS``: a mapping from a model
name to a ``tests.simulation.world.Model``. The world draws its monitors from all of them,
so a new module is picked up without touching any other file."""

from __future__ import annotations

import importlib
import pkgutil

from tests.simulation.world import Model


def all_models() -> dict[str, Model]:
    """Every model of every module in this package, by name (sorted: a world drawn from a
    seed must not depend on the order the file system lists modules in)."""
    models: dict[str, Model] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, model in getattr(module, "MODELS", {}).items():
            if name in models:
                raise ValueError(f"two tool models are named {name!r}")
            models[name] = model
    return dict(sorted(models.items()))
