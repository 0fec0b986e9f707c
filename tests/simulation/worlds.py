"""A whole world drawn from one seed: 1-4 services (named with the world's prefix, so
worlds can share a server), their outages, and the monitors that watch them.

Each service is watched by 1-3 outage-watching monitors drawn from every registered tool
model (``tests.simulation.tools.all_models``), and sometimes by a noise model too (one
that reports no outage: deploys, certificate warnings). Each monitor gets its own random
stream derived from (seed, service, model name), so adding a model to the registry
changes which monitors are drawn but never what a given monitor sends.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from tests.scenarios.payloads import Recorded
from tests.simulation.sample import SAMPLE
from tests.simulation.tools import all_models
from tests.simulation.world import (
    EPOCH,
    Model,
    Observation,
    Outage,
    Report,
    ServicePlan,
    plan_outages,
)

NAMES = ("checkout", "payments", "search", "auth", "catalog", "shipping", "billing",
         "inventory", "gateway", "reports")
NOISE_CHANCE = 0.3


@dataclass(frozen=True)
class World:
    seed: int
    prefix: str
    plans: tuple[ServicePlan, ...]
    monitors: tuple[tuple[str, str], ...]  # (service, model name)
    observed: Mapping[str, Observation] = field(default_factory=dict)  # by service

    @property
    def services(self) -> list[str]:
        return [plan.name for plan in self.plans]

    @property
    def deliveries(self) -> list[Recorded]:
        return [d for name in self.services for d in self.observed[name].deliveries]

    @property
    def reports(self) -> list[Report]:
        return [r for name in self.services for r in self.observed[name].reports]

    @property
    def service_globs(self) -> dict[str, list[str]]:
        """The ``[services]`` setting the world's monitors need."""
        globs: dict[str, list[str]] = {}
        for name in self.services:
            for service, patterns in self.observed[name].services.items():
                globs.setdefault(service, []).extend(patterns)
        return globs

    @property
    def monitors_by_service(self) -> dict[str, list[str]]:
        """Each service's monitors, by model name."""
        out: dict[str, list[str]] = {name: [] for name in self.services}
        for service, model in self.monitors:
            out[service].append(model)
        return out

    @property
    def by_service(self) -> dict[str, list[Recorded]]:
        """Each service's deliveries (what its monitors sent)."""
        return {name: list(self.observed[name].deliveries) for name in self.services}


def stream(seed: int, service: str, model: str) -> random.Random:
    """The random stream of one monitor: a function of (seed, service, model) only."""
    digest = hashlib.sha256(f"{seed}/{service}/{model}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


_PROBE_START = EPOCH + timedelta(hours=6)
PROBE = ServicePlan(
    "probe",
    tuple(Outage("probe", _PROBE_START + timedelta(days=2 * i),
                 _PROBE_START + timedelta(days=2 * i, hours=2), i) for i in range(3)),
    EPOCH, EPOCH + timedelta(days=7))
_WATCHES: dict[str, bool] = {}


def watches(name: str, model: Model) -> bool:
    """Whether a model reports outages at all: three two-hour outages in a week, under
    three random streams, must give an outage-watching monitor something to report."""
    if name not in _WATCHES:
        _WATCHES[name] = any(model(PROBE, random.Random(n)).reports for n in range(3))
    return _WATCHES[name]


def models() -> dict[str, Model]:
    """Every registered tool model; with the private sample model while none of them
    watches outages (the simulation's own tests need one)."""
    registered = all_models()
    if any(watches(name, model) for name, model in registered.items()):
        return registered
    return {**SAMPLE, **registered}


def draw(seed: int, registry: Mapping[str, Model] | None = None) -> World:
    """The world of ``seed``, its monitors drawn from ``registry`` (default: ``models()``)."""
    chosen_from = dict(sorted((registry if registry is not None else models()).items()))
    watchers = [name for name, model in chosen_from.items() if watches(name, model)]
    noise = [name for name in chosen_from if name not in watchers]
    if not watchers:
        raise RuntimeError("no outage-watching tool model is registered")
    rng = random.Random(seed)
    prefix = f"w{seed:08x}"
    begin = EPOCH + timedelta(days=rng.randrange(365))
    plans: list[ServicePlan] = []
    monitors: list[tuple[str, str]] = []
    observed: dict[str, Observation] = {}
    for word in rng.sample(NAMES, rng.randint(1, 4)):
        plan = plan_outages(rng, f"{prefix}-{word}", begin, days=rng.randint(2, 6))
        chosen = rng.sample(watchers, min(len(watchers), rng.randint(1, 3)))
        if noise and rng.random() < NOISE_CHANCE:
            chosen.append(rng.choice(noise))
        observation = Observation()
        for name in chosen:
            observation.extend(chosen_from[name](plan, stream(seed, plan.name, name)))
            monitors.append((plan.name, name))
        plans.append(plan)
        observed[plan.name] = observation
    return World(seed, prefix, tuple(plans), tuple(monitors), observed)
