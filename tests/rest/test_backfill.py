"""Backfilling a cron trigger through REST (issue 21, item 4):
`POST /api/triggers/{id}/backfill` with `{from, to}` starts one run per fire time, as the
scheduler would have, and a real worker completes them; a repeat starts nothing;
`maxConcurrentRuns` (create and update) holds the rest PENDING; every bad input is a 400
naming its field and changes nothing; replies match the OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any

from jsonschema import Draft202012Validator

from rest_compat.openapi import document
from tests.rest.server import Owner, Server, eventually, serve, worker
from tests.support.graphs import chain

EVERY_TEN = {
    "expression": "*/10 * * * *",
    "timezone": "Europe/Paris",
    "input": {"n": 1, "tick": "{{ trigger.scheduledAt }}"},
}
FROM, TO = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
TICKS = [f"2026-01-01T00:{m:02d}:00Z" for m in range(0, 60, 10)] + ["2026-01-01T01:00:00Z"]


def check_documented(body: Any, name: str) -> None:
    doc = document()
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
    assert not errors, errors


async def cron(me: Owner, **extra: Any) -> dict[str, Any]:
    made = await me.http.post("/api/workflows", json={"name": "w", "definition": chain(1)})
    created = await me.http.post(
        "/api/triggers",
        json={"workflowId": made.json()["id"], "type": "CRON", "config": EVERY_TEN, **extra},
    )
    assert created.status_code == 201, created.text
    trigger: dict[str, Any] = created.json()
    check_documented(trigger, "Trigger")
    return trigger


async def statuses(server: Server, tid: str) -> list[tuple[str, str]]:
    rows = await server.services.pool.fetch(
        "SELECT trigger_data->>'scheduledAt' AS at, status FROM executions "
        "WHERE trigger_id = $1 ORDER BY 1",
        uuid.UUID(tid),
    )
    return [(r["at"], r["status"]) for r in rows]


async def test_backfill_runs_each_tick_once_and_a_worker_completes_them(
    server: Server, me: Owner
) -> None:
    trigger = await cron(me)
    assert trigger["maxConcurrentRuns"] is None
    url = f"/api/triggers/{trigger['id']}/backfill"
    async with worker(server.services):
        reply = await me.http.post(url, json={"from": FROM, "to": TO})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"started": 7, "skipped": 0}
        check_documented(reply.json(), "Backfill")

        async def completed() -> bool:
            found = await statuses(server, trigger["id"])
            return len(found) == 7 and all(s == "COMPLETED" for _, s in found)

        await eventually(completed, what="the backfilled runs to complete")
    listed = (await me.http.get(f"/api/executions?triggerId={trigger['id']}&limit=50")).json()
    assert sorted(e["input"]["tick"] for e in listed["items"]) == TICKS
    again = await me.http.post(url, json={"from": FROM, "to": TO})
    assert again.json() == {"started": 0, "skipped": 7}


async def test_max_concurrent_runs_on_create_and_update(server: Server, me: Owner) -> None:
    trigger = await cron(me, maxConcurrentRuns=1)
    assert trigger["maxConcurrentRuns"] == 1
    url = f"/api/triggers/{trigger['id']}/backfill"
    reply = await me.http.post(url, json={"from": FROM, "to": "2026-01-01T00:20:00Z"})
    assert reply.json() == {"started": 3, "skipped": 0}
    assert [s for _, s in await statuses(server, trigger["id"])] == [
        "RUNNING",
        "PENDING",
        "PENDING",
    ]
    bad = await me.http.put(f"/api/triggers/{trigger['id']}", json={"maxConcurrentRuns": 0})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "$.maxConcurrentRuns"
    # Other changes leave the limit; null clears it and lets the waiting runs go.
    kept = await me.http.put(f"/api/triggers/{trigger['id']}", json={"enabled": True})
    assert kept.json()["maxConcurrentRuns"] == 1
    cleared = await me.http.put(f"/api/triggers/{trigger['id']}", json={"maxConcurrentRuns": None})
    assert cleared.json()["maxConcurrentRuns"] is None
    assert [s for _, s in await statuses(server, trigger["id"])] == ["RUNNING"] * 3


async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(db_url: str) -> None:
    async with serve(db_url, backfill_max_ticks=6) as server:
        me = await server.owner()
        other = await server.owner()
        trigger = await cron(me)
        url = f"/api/triggers/{trigger['id']}/backfill"
        cases: list[tuple[Any, str, str]] = [
            ({"from": TO, "to": FROM}, "to", "must not be before `from`"),
            ({"to": TO}, "from", "is required"),
            ({"from": FROM}, "to", "is required"),
            ({"from": "yesterday", "to": TO}, "from", "ISO-8601"),
            ({"from": FROM, "to": 20260101}, "to", "ISO-8601"),
            ({"from": "2026-01-01T00:00:00", "to": TO}, "from", "offset"),
            ({"from": "0001-01-01T00:00:00+01:00", "to": TO}, "from", "before 1970"),
            ({"from": FROM, "to": "2999-01-01T00:00:00Z"}, "to", "must not be after now"),
            ({"from": FROM, "to": TO}, "to", "more than 6 fire times"),
        ]
        for body, path, words in cases:
            reply = await me.http.post(url, json=body)
            assert reply.status_code == 400, (body, reply.text)
            error = reply.json()["error"]
            assert error["code"] == "invalid_input"
            assert error["details"][0]["path"] == f"$.{path}", error  # a field of the body
            assert words in error["details"][0]["message"], error
        empty = await me.http.post(url)
        assert empty.status_code == 400
        assert [d["path"] for d in empty.json()["error"]["details"]] == ["$.from", "$.to"]
        made = await me.http.post("/api/workflows", json={"name": "m", "definition": chain(1)})
        manual = await me.http.post(
            "/api/triggers", json={"workflowId": made.json()["id"], "type": "MANUAL"}
        )
        not_cron = await me.http.post(
            f"/api/triggers/{manual.json()['id']}/backfill", json={"from": FROM, "to": TO}
        )
        assert not_cron.status_code == 400
        assert not_cron.json()["error"]["details"][0]["path"] == "id"
        theirs = await other.http.post(url, json={"from": FROM, "to": TO})
        assert theirs.status_code == 404
        assert theirs.json()["error"]["code"] == "not_found"
        assert await statuses(server, trigger["id"]) == []
        assert await server.services.pool.fetchval("SELECT count(*) FROM trigger_firings") == 0
