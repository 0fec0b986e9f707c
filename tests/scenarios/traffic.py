"""A realistic mix of deliveries from many services and tools, reproducible from a seed:
outages seen by Uptime Kuma and Alertmanager (with repeat notifications), missed cron
runs, flapping checks, deploys (successful and failed) and certificate warnings.

Used by the determinism tests and by ``bench/rebuild.py``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from tests.scenarios.payloads import (
    Alert,
    Recorded,
    alertmanager,
    github_deploy,
    healthchecks,
    kuma,
    uptimerobot_ssl,
)


def service_name(index: int) -> str:
    return f"svc{index:03d}"


def service_map(services: int) -> dict[str, list[str]]:
    """``[services]``: each service's Kuma monitor and deploy repository."""
    return {service_name(i): [f"{service_name(i).title()} API",
                              f"acme/{service_name(i)}-service*"] for i in range(services)}


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def episodes(rng: random.Random, start: datetime, services: int,
             repeats: int) -> Iterator[list[Recorded]]:
    """Endless episodes, each a few deliveries of one service, moving forward in time."""
    now = start
    while True:
        now += timedelta(seconds=rng.randint(60, 1800))
        svc = service_name(rng.randrange(services))
        monitor = f"{svc.title()} API"
        kind = rng.random()
        out: list[Recorded] = []
        lag = timedelta(milliseconds=rng.randint(100, 2000))
        if kind < 0.35:  # an outage: check, alert with repeats, recovery
            down = now
            length = timedelta(seconds=rng.randint(120, 3600))
            alert = Alert(f"10.42.{rng.randint(0, 255)}.{rng.randint(1, 254)}:8080",
                          down + timedelta(seconds=rng.randint(0, 300)), service=svc,
                          severity=rng.choice(["critical", "warning", "info"]))
            out.append(kuma(False, down, down + lag, monitor=monitor, service=svc))
            out.append(alertmanager([alert], alert.starts_at + timedelta(seconds=30)))
            out += [alertmanager([alert], alert.starts_at + timedelta(
                seconds=30 + 300 * (n + 1), milliseconds=n))
                for n in range(rng.randint(0, repeats))]
            end = down + length
            out.append(kuma(True, end, end + lag, monitor=monitor, service=svc))
            out.append(alertmanager([Alert(alert.instance, alert.starts_at,
                                           max(end, alert.starts_at + timedelta(seconds=60)),
                                           service=svc, severity=alert.severity)],
                                    end + timedelta(seconds=rng.randint(30, 300))))
        elif kind < 0.45:  # a missed cron run, rerun later
            last = now - timedelta(minutes=rng.randint(31, 59))
            flip = now + timedelta(minutes=5)
            out.append(healthchecks(False, flip, flip + lag, last_ping=last,
                                    name=f"{svc}-nightly", schedule="*/30 * * * *", tz="UTC",
                                    tags=f"prod service:{svc}"))
            up = flip + timedelta(minutes=rng.randint(5, 90))
            out.append(healthchecks(True, up, up + lag, last_ping=up, name=f"{svc}-nightly",
                                    schedule="*/30 * * * *", tz="UTC",
                                    tags=f"prod service:{svc}"))
        elif kind < 0.52:  # flapping
            at = now
            for _ in range(rng.randint(2, 4)):
                out.append(kuma(False, at, at + lag, monitor=monitor, service=svc))
                at += timedelta(seconds=rng.randint(60, 300))
                out.append(kuma(True, at, at + lag, monitor=monitor, service=svc))
                at += timedelta(seconds=rng.randint(60, 600))
        elif kind < 0.92:  # deploys
            for _ in range(rng.randint(1, 3)):
                state = rng.choice(["success", "success", "success", "failure"])
                out.append(github_deploy(state, _sha(rng), now, now + lag,
                                         repo=f"acme/{svc}-service"))
                now += timedelta(seconds=rng.randint(60, 900))
        else:  # a certificate expiring in a few weeks
            out.append(uptimerobot_ssl(now, now + lag,
                                       expires=now + timedelta(days=rng.randint(3, 30)),
                                       name=monitor, url=f"https://{svc}.example.com/"))
        yield out


def traffic(count: int, *, seed: int, start: datetime, services: int = 20,
            repeats: int = 3) -> list[Recorded]:
    """``count`` deliveries (whole episodes, cut at ``count``), in receipt order."""
    rng = random.Random(seed)
    out: list[Recorded] = []
    for episode in episodes(rng, start, services, repeats):
        out += episode
        if len(out) >= count:
            break
    return sorted(out[:count], key=lambda d: d.received_at)
