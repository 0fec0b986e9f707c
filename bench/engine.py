"""The incident engine alone (no HTTP, no database): signals folded per second.

Feeds ``projections.engine.fold.Engine`` directly with a realistic mix of signals built with
``ingest.signals.Signal``, in receipt order, taking changes every ``--batch`` deliveries
as the projector does:

- outages: an Uptime Kuma monitor down, a few Alertmanager alerts of the service firing
  and re-sent every ``repeat_interval`` (same ``startsAt``), then everything resolved
  (Alertmanager's resolved notifications carry their ``startsAt``: failing periods);
- flapping checks (down and up a few times within the reopen window);
- missed cron runs (Healthchecks down at the deadline, up when re-run);
- deploys (GitHub, some failed), and a certificate warning now and then;
- one storm: ``--storm`` signals in one incident, ``--storm-alerts`` alerts of one
  group re-sent until the count is reached, then resolved.

About ``--per-incident`` signals per outage on average. Prints signals/s and µs/signal
for the whole fold and for the storm's last thousand signals (a new signal of a big
incident must not cost in proportion to its size).

    .venv/bin/python bench/engine.py [--incidents 5000] [--per-incident 200]
        [--services 100] [--storm 10000] [--batch 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# `python bench/engine.py` puts bench/ first on the path, where bench/ingest.py would
# shadow the `ingest` package: the root goes first and bench/ leaves.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (BENCH, ROOT)]

from ingest.signals import Signal  # noqa: E402
from projections.engine.fold import Engine, EngineConfig  # noqa: E402

START = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
SEVERITIES = ("critical", "warning", "info")
SEVERITY = {"critical": "P1", "warning": "P3", "info": "P4"}


@dataclass(frozen=True, slots=True)
class Delivery:
    received_at: datetime
    signals: tuple[Signal, ...]
    storm: bool = False


def kuma(svc: str, up: bool, at: datetime) -> Signal:
    return Signal(source="uptime-kuma", kind="uptime", subject=f"{svc.title()} API",
                  state="ok" if up else "failing", occurred_at=at, notified_at=at,
                  service=svc, summary="" if up else "connect ECONNREFUSED")


def alert(svc: str, n: int, starts: datetime, sent: datetime, severity: str,
          ends: datetime | None = None) -> Signal:
    subject = f'HighErrorRate{{instance="10.42.0.{n}:8080", service="{svc}"}}'
    return Signal(source="alertmanager", kind="alert", subject=subject,
                  state="failing" if ends is None else "ok",
                  occurred_at=starts if ends is None else ends, notified_at=sent,
                  service=svc, severity=SEVERITY[severity],  # type: ignore[arg-type]
                  summary="5xx above 5%", started_at=None if ends is None else starts,
                  labels=(("alertname", "HighErrorRate"), ("service", svc)),
                  attributes=(("fingerprint", f"{abs(hash((svc, n))):016x}"),))


def cron(svc: str, up: bool, at: datetime) -> Signal:
    return Signal(source="healthchecks", kind="cron", subject=f"{svc}-nightly",
                  state="ok" if up else "failing", occurred_at=at, notified_at=at,
                  service=svc)


def deploy(svc: str, ok: bool, at: datetime, sha: str) -> Signal:
    return Signal(source="github", kind="deploy", subject=f"acme/{svc}-service production",
                  state="info" if ok else "failing", occurred_at=at, notified_at=at,
                  service=svc, action="succeeded" if ok else "failed",
                  attributes=(("environment", "production"), ("ref", sha)))


def certificate(svc: str, at: datetime) -> Signal:
    return Signal(source="uptimerobot", kind="ssl", subject=f"{svc}.example.com",
                  state="warning", occurred_at=at, notified_at=at, service=svc,
                  summary="certificate expires in 12 days")


def outage(rng: random.Random, svc: str, now: datetime, per_incident: int
           ) -> list[Delivery]:
    """A monitor down, a few alerts firing and re-sent every 5 min, then all resolved."""
    lag = timedelta(milliseconds=rng.randint(100, 2000))
    alerts = rng.randint(1, 4)
    severity = rng.choice(SEVERITIES)
    starts = [now + timedelta(seconds=rng.randint(0, 300)) for _ in range(alerts)]
    repeats = max(0, (per_incident - 2 - 2 * alerts) // alerts)
    repeats = rng.randint(repeats // 2, repeats * 3 // 2)
    out = [Delivery(now + lag, (kuma(svc, False, now),))]
    first = max(starts) + timedelta(seconds=30)
    out.append(Delivery(first, tuple(alert(svc, n, s, first, severity)
                                     for n, s in enumerate(starts))))
    sent = first
    for _ in range(repeats):
        sent += timedelta(minutes=5)
        out.append(Delivery(sent, tuple(alert(svc, n, s, sent, severity)
                                        for n, s in enumerate(starts))))
    end = sent + timedelta(minutes=rng.randint(1, 20))
    out.append(Delivery(end + lag, (kuma(svc, True, end),)))
    done = end + timedelta(seconds=rng.randint(30, 300))
    out.append(Delivery(done, tuple(alert(svc, n, s, done, severity, ends=end)
                                    for n, s in enumerate(starts))))
    return out


def episodes(rng: random.Random, services: int, per_incident: int
             ) -> Iterator[tuple[datetime, list[Delivery]]]:
    now = START
    while True:
        now += timedelta(seconds=rng.randint(30, 600))
        svc = f"svc{rng.randrange(services):03d}"
        kind = rng.random()
        if kind < 0.55:
            yield now, outage(rng, svc, now, per_incident)
        elif kind < 0.65:  # flapping within the reopen window
            out, at = [], now
            for _ in range(rng.randint(2, 4)):
                out.append(Delivery(at, (kuma(svc, False, at),)))
                at += timedelta(seconds=rng.randint(60, 300))
                out.append(Delivery(at, (kuma(svc, True, at),)))
                at += timedelta(seconds=rng.randint(60, 600))
            yield now, out
        elif kind < 0.72:  # a missed cron run, re-run later
            deadline, flip = now, now + timedelta(minutes=30)
            up = flip + timedelta(minutes=rng.randint(5, 90))
            yield now, [Delivery(flip, (cron(svc, False, deadline),)),
                        Delivery(up, (cron(svc, True, up),))]
        elif kind < 0.97:
            yield now, [Delivery(now, (deploy(svc, rng.random() < 0.85, now,
                                              f"{rng.getrandbits(160):040x}"),))]
        else:
            yield now, [Delivery(now, (certificate(svc, now),))]


def storm(rng: random.Random, at: datetime, signals: int, alerts: int) -> list[Delivery]:
    """One group of ``alerts`` alerts firing, re-sent until ``signals`` signals, resolved."""
    svc = "storm"
    starts = [at + timedelta(seconds=n) for n in range(alerts)]
    out, sent, count = [], at + timedelta(seconds=alerts + 30), 0
    while count < signals - alerts:
        out.append(Delivery(sent, tuple(alert(svc, n, s, sent, "critical")
                                        for n, s in enumerate(starts)), storm=True))
        count += alerts
        sent += timedelta(minutes=5)
    out.append(Delivery(sent, tuple(alert(svc, n, s, sent, "critical", ends=sent)
                                    for n, s in enumerate(starts)), storm=True))
    return out


def workload(incidents: int, per_incident: int, services: int, storm_signals: int,
             storm_alerts: int, seed: int) -> list[Delivery]:
    """Deliveries in receipt order, about ``incidents`` outages plus the storm."""
    rng = random.Random(seed)
    out: list[Delivery] = []
    outages = 0
    storm_at = None
    for now, episode in episodes(rng, services, per_incident):
        out += episode
        outages += len(episode) > 2
        if storm_at is None and outages >= incidents // 2:
            storm_at = now
            out += storm(rng, now, storm_signals, storm_alerts)
        if outages >= incidents:
            break
    return sorted(out, key=lambda d: d.received_at)


def fold(deliveries: list[Delivery], batch: int) -> tuple[float, int, list[float]]:
    """Seconds, signals, and the per-signal times of the storm's deliveries."""
    engine = Engine(EngineConfig())
    storm_costs: list[float] = []
    signals = 0
    clock = time.perf_counter
    began = clock()
    for position, d in enumerate(deliveries, start=1):
        if d.storm:
            t0 = clock()
            engine.apply_delivery(position, d.received_at, d.signals)
            storm_costs.append((clock() - t0) / len(d.signals))
        else:
            engine.apply_delivery(position, d.received_at, d.signals)
        signals += len(d.signals)
        if position % batch == 0:
            engine.take_changes()
    engine.take_changes()
    return clock() - began, signals, storm_costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--per-incident", type=int, default=200)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--storm-alerts", type=int, default=50)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    deliveries = workload(args.incidents, args.per_incident, args.services, args.storm,
                          args.storm_alerts, args.seed)
    seconds, signals, storm_costs = fold(deliveries, args.batch)
    print(f"deliveries: {len(deliveries):,}  signals: {signals:,}  "
          f"(storm: {args.storm:,} signals in one incident)")
    print(f"fold: {seconds:.2f} s  {signals / seconds:,.0f} signals/s  "
          f"{len(deliveries) / seconds:,.0f} deliveries/s  "
          f"{seconds / signals * 1e6:.2f} µs/signal")
    if storm_costs:
        head = storm_costs[: max(1, len(storm_costs) // 10)]
        tail = storm_costs[-max(1, len(storm_costs) // 10):]
        print(f"storm: first tenth {sum(head) / len(head) * 1e6:.2f} µs/signal, "
              f"last tenth {sum(tail) / len(tail) * 1e6:.2f} µs/signal")


if __name__ == "__main__":
    main()
