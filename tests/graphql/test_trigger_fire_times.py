"""A trigger's next fire times through GraphQL (issue 16): the scheduler's schedule in
the trigger's time zone, as UTC instants, across a daylight-saving change; `count`
bounded; empty for other types and disabled triggers; another owner's trigger is
missing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from flowsync.scheduler.cron import CronSchedule
from tests.graphql.conftest import Api, op, serve
from tests.support.graphs import chain
from tests.support.trigger_clock import stop_trigger_clock

# Wednesday 26 March 2025, noon UTC; Paris moves from CET (+1) to CEST (+2) on Sunday 30.
NOW = datetime(2025, 3, 26, 12, 0, tzinfo=UTC)
FIRE_TIMES = "query($id: ID!, $n: Int) { trigger(id: $id) { nextFireTimes(count: $n) } }"


async def test_weekday_mornings_in_paris_across_the_clock_change(api: Api) -> None:
    stop_trigger_clock(api.services, NOW)
    a = await api.owner()
    wf = await api.services.workflows.create(a.principal, "w", None, chain(1))
    made = await api.services.triggers.create(
        a.principal, wf.id, "CRON", {"expression": "0 9 * * 1-5", "timezone": "Europe/Paris"}
    )
    tid = str(made.trigger.id)
    async with api.http(a.key) as s:
        got = await s.execute(op("query($id: ID!) { trigger(id: $id) { nextFireTimes } }", id=tid))
        five = got["trigger"]["nextFireTimes"]
        assert five == [
            "2025-03-27T08:00:00+00:00",  # Thursday, 09:00 CET
            "2025-03-28T08:00:00+00:00",  # Friday
            "2025-03-31T07:00:00+00:00",  # Monday, 09:00 CEST: the weekend moved the clocks
            "2025-04-01T07:00:00+00:00",
            "2025-04-02T07:00:00+00:00",
        ]
        # Each is 09:00 on a weekday in Paris, and what the scheduler's schedule says.
        schedule = CronSchedule.parse("0 9 * * 1-5", "Europe/Paris")
        at = NOW
        for text in five:
            instant = datetime.fromisoformat(text)
            local = instant.astimezone(schedule.zone)
            assert (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)
            at = schedule.next_after(at)
            assert instant == at
        # A null count is the default, 5; 1 and 20 are the bounds.
        null = await s.execute(op(FIRE_TIMES, id=tid, n=None))
        assert null["trigger"]["nextFireTimes"] == five
        one = await s.execute(op(FIRE_TIMES, id=tid, n=1))
        assert one["trigger"]["nextFireTimes"] == five[:1]
        twenty = (await s.execute(op(FIRE_TIMES, id=tid, n=20)))["trigger"]["nextFireTimes"]
        assert len(twenty) == 20 and twenty[:5] == five
        assert twenty == sorted(set(twenty))
        # Listed triggers answer the same.
        listed = await s.execute(op("{ triggers { edges { node { id nextFireTimes } } } }"))
        assert listed["triggers"]["edges"] == [{"node": {"id": tid, "nextFireTimes": five}}]


async def test_seconds_first_expressions_and_other_zones(api: Api) -> None:
    stop_trigger_clock(api.services, NOW)
    a = await api.owner()
    wf = await api.services.workflows.create(a.principal, "w", None, chain(1))
    made = await api.services.triggers.create(
        a.principal, wf.id, "CRON", {"expression": "30 15 6 * * *", "timezone": "Asia/Tokyo"}
    )
    async with api.http(a.key) as s:
        got = await s.execute(op(FIRE_TIMES, id=str(made.trigger.id), n=2))
    # 06:15:30 in Tokyo (+9, no daylight saving) is 21:15:30 UTC the day before.
    assert got["trigger"]["nextFireTimes"] == [
        "2025-03-26T21:15:30+00:00",
        "2025-03-27T21:15:30+00:00",
    ]


async def test_count_is_bounded_and_other_triggers_list_none(api: Api) -> None:
    stop_trigger_clock(api.services, NOW)
    a, b = await api.owner(), await api.owner()
    wf = await api.services.workflows.create(a.principal, "w", None, chain(1))
    cron = {"expression": "*/5 * * * *"}
    on = await api.services.triggers.create(a.principal, wf.id, "CRON", cron)
    off = await api.services.triggers.create(a.principal, wf.id, "CRON", cron, enabled=False)
    hook = await api.services.triggers.create(a.principal, wf.id, "WEBHOOK")
    manual = await api.services.triggers.create(a.principal, wf.id, "MANUAL")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.key}"}) as http:

        async def post(tid: object, n: Any) -> dict[str, Any]:
            reply = await http.post(
                api.http_url, json={"query": FIRE_TIMES, "variables": {"id": str(tid), "n": n}}
            )
            assert reply.status_code < 500
            body: dict[str, Any] = reply.json()
            return body

        for n in (0, -1, 21, 2**31 - 1):
            for made in (on, hook):
                error = (await post(made.trigger.id, n))["errors"][0]
                assert error["extensions"]["code"] == "invalid_input", error
                assert [p["path"] for p in error["extensions"]["problems"]] == ["count"]
                assert "1 to 20" in error["message"]
        assert (await post(on.trigger.id, 20))["data"]["trigger"]["nextFireTimes"][-1] == (
            "2025-03-26T13:40:00+00:00"
        )
        for made in (off, hook, manual):
            assert (await post(made.trigger.id, 5))["data"] == {"trigger": {"nextFireTimes": []}}
    # Another owner's trigger answers as a missing one.
    async with api.http(b.key) as s:
        theirs = await s.execute(op(FIRE_TIMES, id=str(on.trigger.id), n=5))
        assert theirs == {"trigger": None}


async def test_the_cost_counts_the_most_a_trigger_lists(db_url: str) -> None:
    async with serve(db_url, max_query_cost=100) as api:
        a = await api.owner()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.key}"}) as http:
            query = "{ triggers(first: 5) { edges { node { id nextFireTimes } } } }"
            reply = (await http.post(api.http_url, json={"query": query})).json()
            # 5 triggers of (1 + up to 20 times) and their edges: more than 100.
            assert reply["errors"][0]["extensions"]["code"] == "query_too_costly", reply
            query = "{ triggers(first: 4) { edges { node { id nextFireTimes } } } }"
            reply = (await http.post(api.http_url, json={"query": query})).json()
            assert "errors" not in reply and reply["data"] == {"triggers": {"edges": []}}
