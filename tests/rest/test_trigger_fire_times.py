"""A trigger's next fire times through REST (issue 16): every trigger reply carries
`nextFireTimes`, the next five of an enabled CRON trigger (the scheduler's schedule in
its time zone, as UTC instants), empty otherwise, as the OpenAPI document says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator

from rest_compat.openapi import document
from tests.rest.server import Owner, Server
from tests.support.graphs import chain
from tests.support.trigger_clock import stop_trigger_clock

# Wednesday 26 March 2025, noon UTC; Paris moves from CET (+1) to CEST (+2) on Sunday 30.
NOW = datetime(2025, 3, 26, 12, 0, tzinfo=UTC)
PARIS_MORNINGS = [
    "2025-03-27T08:00:00+00:00",
    "2025-03-28T08:00:00+00:00",
    "2025-03-31T07:00:00+00:00",
    "2025-04-01T07:00:00+00:00",
    "2025-04-02T07:00:00+00:00",
]


def check_documented(trigger: dict[str, Any]) -> None:
    doc = document()
    schema = {"$ref": "#/components/schemas/Trigger", "components": doc["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(trigger)]
    assert not errors, errors


async def test_every_trigger_reply_lists_its_next_fire_times(server: Server, me: Owner) -> None:
    stop_trigger_clock(server.services, NOW)
    other = await server.owner()
    made = await me.http.post("/api/workflows", json={"name": "w", "definition": chain(1)})
    wid = made.json()["id"]
    config = {"expression": "0 9 * * 1-5", "timezone": "Europe/Paris"}
    created = await me.http.post(
        "/api/triggers", json={"workflowId": wid, "type": "CRON", "config": config}
    )
    assert created.status_code == 201, created.text
    cron = created.json()
    assert cron["nextFireTimes"] == PARIS_MORNINGS
    # The scheduler's next run, worked out at the same (stopped) time, is the first.
    assert datetime.fromisoformat(cron["nextRunAt"]) == datetime.fromisoformat(PARIS_MORNINGS[0])
    check_documented(cron)
    read = (await me.http.get(f"/api/triggers/{cron['id']}")).json()
    assert read["nextFireTimes"] == PARIS_MORNINGS
    listed = (await me.http.get("/api/triggers")).json()["items"]
    assert [t["nextFireTimes"] for t in listed] == [PARIS_MORNINGS]

    # A seconds-first expression in another zone.
    changed = await me.http.put(
        f"/api/triggers/{cron['id']}",
        json={"config": {"expression": "30 15 6 * * *", "timezone": "Asia/Tokyo"}},
    )
    assert changed.json()["nextFireTimes"][:2] == [
        "2025-03-26T21:15:30+00:00",
        "2025-03-27T21:15:30+00:00",
    ]
    assert len(changed.json()["nextFireTimes"]) == 5

    off = await me.http.put(f"/api/triggers/{cron['id']}", json={"enabled": False})
    assert off.json()["nextFireTimes"] == []
    check_documented(off.json())
    hook = await me.http.post("/api/triggers", json={"workflowId": wid, "type": "WEBHOOK"})
    assert hook.json()["nextFireTimes"] == []
    check_documented(hook.json())
    manual = await me.http.post("/api/triggers", json={"workflowId": wid, "type": "MANUAL"})
    assert manual.json()["nextFireTimes"] == []

    # Another owner's trigger is missing, its schedule with it.
    assert (await other.http.get(f"/api/triggers/{cron['id']}")).status_code == 404


async def test_fire_times_through_a_repeated_hour_of_a_fixed_schedule(
    server: Server, me: Owner
) -> None:
    # Found by QA: every minute of 01:xx in New York. When clocks fall back, 01:00-01:59
    # comes twice and the schedule fires it once; croniter's 60 candidates of the second
    # 01:xx outran the 16 the schedule looked at, so working out the next time raised
    # AssertionError: this reply was a 500 (and the scheduler's tick, with every trigger
    # it held, failed until the hour was over).
    stop_trigger_clock(server.services, datetime(2026, 11, 1, 6, 0, 30, tzinfo=UTC))
    made = await me.http.post("/api/workflows", json={"name": "w", "definition": chain(1)})
    config = {"expression": "0-59 1 * * *", "timezone": "America/New_York"}
    created = await me.http.post(
        "/api/triggers", json={"workflowId": made.json()["id"], "type": "CRON", "config": config}
    )
    assert created.status_code == 201, created.text
    assert created.json()["nextFireTimes"][:2] == [
        "2026-11-02T06:00:00+00:00",
        "2026-11-02T06:01:00+00:00",
    ]
