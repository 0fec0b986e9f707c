"""Read-model figures kept without walking a storm's whole state.

Standing risks are listed from an index kept as subjects change, not by walking
every subject of a service (an alert storm's thousands). The index must name exactly
the subjects the definition names (API.md risks; ``Engine.risks``): a warning as the
latest state of a subject that is no deploy, a failure as a deploy subject's latest
outcome, after any log, and after the state is saved and loaded again."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from projections.engine.facts import DEPLOY_FAILURES
from projections.engine.fold import Engine, EngineConfig
from projections.engine.state import ServiceState
from projections.runtime.projection import detected_source
from tests.projections.test_engine_properties import concrete_log, configs, feed, steps


def walked(svc: ServiceState) -> tuple[set[Any], set[Any]]:
    """The risky subjects by the definition, walking every subject."""
    return ({k for k, f in svc.subjects.items()
             if f.signal.kind != "deploy" and f.signal.state == "warning"},
            {k for k, f in svc.outcomes.items() if f.signal.action in DEPLOY_FAILURES})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, plan=steps)
def test_the_risk_index_names_the_subjects_the_definition_names(
    config: EngineConfig, plan: list[Any]
) -> None:
    log = concrete_log(config, plan)
    engine = Engine(config)
    for n in range(len(log)):
        feed(engine, log[n:n + 1])
        for svc in engine._services.values():
            assert (svc.risky, svc.risky_outcomes) == walked(svc)
    restored = Engine(config)
    for name in engine.services():
        restored.load(name, engine.dump(name))
    for name in engine.services():
        assert restored.risks(name) == engine.risks(name)
        svc = restored._services[name]
        assert (svc.risky, svc.risky_outcomes) == walked(svc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, plan=steps)
def test_the_detecting_source_is_the_source_of_the_entry_marked_detected(
    config: EngineConfig, plan: list[Any]
) -> None:
    """``incidents.first_detector_source`` (the detection-latency view's source) is found
    by bisection at ``detected_at``: the same entry a walk of the timeline finds."""
    engine = Engine(config)
    feed(engine, concrete_log(config, plan))
    for inc in engine.take_changes().incidents:
        walk = next((e.source for e in inc.timeline if e.marker == "detected"), None)
        assert detected_source(inc) == walk
