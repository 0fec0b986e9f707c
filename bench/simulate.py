"""The ground-truth simulation (issue 10) over many worlds, in process: each world drawn
from its seed (``tests/simulation/worlds.py``), its deliveries folded through the real
Ingestor and Projection (``tests/simulation/inprocess.py``), and every service's incidents
compared with the oracle's (``tests/simulation/oracle.py``).

    .venv/bin/python bench/simulate.py --worlds 10000 [--seed 20250106] [--shuffled]
        [--retention SECONDS] [--show 1]

Prints the number of worlds checked (and services, outages, deliveries), each failing
world's seed with the first line of its failure, the first ``--show`` failures in full
(each one a named regression example in waiting: ``@example(seed=...)`` in
``tests/simulation/test_simulation.py``), and the time taken. Exits 1 when any world fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# `python bench/simulate.py` puts bench/ first on the path, where bench/ingest.py would
# shadow the `ingest` package: the root goes first and bench/ leaves.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (BENCH, ROOT)]

from tests.simulation.inprocess import fold, settings_for  # noqa: E402
from tests.simulation.oracle import Moments, check  # noqa: E402
from tests.simulation.served import shuffled  # noqa: E402
from tests.simulation.worlds import World, draw, models  # noqa: E402


def run_one(world: World, args: argparse.Namespace) -> None:
    order = (shuffled(world.deliveries, world.seed) if args.shuffled
             else sorted(world.deliveries, key=lambda d: d.received_at))
    overrides: dict[str, Any] = {}
    if args.retention is not None:
        overrides["retention_seconds"] = args.retention
    got = fold(order, settings_for(world.service_globs, **overrides))
    actual = {name: [Moments.of(i) for i in incidents] for name, incidents in got.items()}
    variant = "shuffled" if args.shuffled else "time order"
    if args.retention is not None:
        variant += f", retention {args.retention:g} s"
    check(world.seed, world.reports, actual, world.by_service, variant,
          world.monitors_by_service)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20250106, help="the first world's seed")
    parser.add_argument("--shuffled", action="store_true",
                        help="import each world in a random order (a retry after its attempt)")
    parser.add_argument("--retention", type=float, default=None,
                        help="retention_seconds for the projection (e.g. 1: tiny)")
    parser.add_argument("--show", type=int, default=1, help="failures to print in full")
    args = parser.parse_args()

    registry = models()
    print(f"models: {', '.join(registry)}")
    started = time.perf_counter()
    failures: list[tuple[int, str]] = []
    services = outages = deliveries = 0
    for n in range(args.worlds):
        seed = args.seed + n
        world = draw(seed, registry)
        services += len(world.services)
        outages += len({r.outage.key for r in world.reports})
        deliveries += len(world.deliveries)
        try:
            run_one(world, args)
        except Exception as failed:  # an adapter crash is a finding too
            failures.append((seed, f"{type(failed).__name__}: {failed}"))
    seconds = time.perf_counter() - started

    for seed, message in failures:
        print(f"FAIL seed={seed}: {message.splitlines()[0] if message else ''}")
    for seed, message in failures[:args.show]:
        print(f"\n--- seed={seed} ---\n{message}")
    print(f"\nchecked {args.worlds} worlds ({services} services, {outages} reported outages, "
          f"{deliveries} deliveries) in {seconds:.1f} s ({args.worlds / seconds:.0f} worlds/s); "
          f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
