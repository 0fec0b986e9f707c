"""The smallest logs on which arrival order changes the answer (TIMELINE.md rule 5:
"Signals arrive out of order. The timeline is ordered by occurred_at, never by
arrival"). Each imports the same deliveries in time order on one server and in another
order on a second server, and compares every incident but its id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.scenarios.harness import comparable, import_deliveries, incident, incidents
from tests.scenarios.payloads import Alert, Recorded, alertmanager, at, kuma


def s(offset: float, day: int = 0) -> Any:
    return at("2025-03-14T10:00:00Z") + timedelta(days=day, seconds=offset)


async def answers(client: Any) -> list[dict[str, Any]]:
    return [comparable(await incident(client, i["id"])) for i in await incidents(client)]


async def both_orders(make_client: Any, second_client: Any, in_time: list[Recorded],
                      arrival: list[Recorded]) -> tuple[list[Any], list[Any]]:
    straight = await make_client(projector=True)
    await import_deliveries(straight, in_time)
    mixed = await second_client(projector=True)
    await import_deliveries(mixed, arrival)
    return await answers(straight), await answers(mixed)


async def test_a_late_failure_over_a_day_before_the_next_incident_opens_its_own(
    make_client: Any, second_client: Any
) -> None:
    """Down 10:00 and up 10:03 on one day; down 10:00 the next day. The next day's
    failure arrives first, then the earlier failure, then its recovery."""
    down0, up0 = kuma(False, s(0), s(0.4)), kuma(True, s(180), s(180.4))
    down1 = kuma(False, s(0, day=1), s(0.4, day=1))
    expected, got = await both_orders(make_client, second_client, [down0, up0, down1],
                                      [down1, down0, up0])
    assert [(i["started_at"], i["resolved_at"]) for i in expected] == [
        ("2025-03-15T10:00:00Z", None), ("2025-03-14T10:00:00Z", "2025-03-14T10:03:00Z")]
    assert got == expected


async def test_a_resolved_notification_arriving_before_the_firing_one_changes_nothing(
    make_client: Any, second_client: Any
) -> None:
    alert = Alert("10.42.3.17:8080", s(180))
    firing = alertmanager([alert], s(210))
    resolved = alertmanager([Alert(alert.instance, alert.starts_at, s(1260))], s(1500))
    expected, got = await both_orders(make_client, second_client, [firing, resolved],
                                      [resolved, firing])
    assert expected[0]["timeline"][0]["received_at"] == "2025-03-14T10:03:30Z"
    assert got == expected
