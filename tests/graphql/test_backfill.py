"""Backfilling a cron trigger through GraphQL (issue 21, item 4): one run per fire time
in [from, to] with the scheduler's input, trigger data and key, so that a repeated or
overlapping backfill starts nothing twice; `maxConcurrentRuns` holds the rest PENDING
until a real worker finishes earlier ones; every bad input is a clear error naming its
field, and changes nothing."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.graphql.conftest import Api, op, running_worker, serve
from tests.support.graphs import chain

CREATE = """mutation($w: ID!, $config: JSON, $max: Int) {
  createTrigger(workflowId: $w, type: CRON, config: $config, maxConcurrentRuns: $max) {
    __typename
    ... on CreateTriggerPayload { trigger { id maxConcurrentRuns } }
    ... on ValidationError { problems { path message } }
  } }"""
UPDATE = """mutation($id: ID!, $max: Int) { updateTrigger(id: $id, maxConcurrentRuns: $max) {
  __typename ... on TriggerPayload { trigger { maxConcurrentRuns } }
  ... on ValidationError { problems { path message } } } }"""
BACKFILL = """mutation($id: ID!, $from: DateTime, $to: DateTime) {
  backfillTrigger(id: $id, from: $from, to: $to) {
    __typename
    ... on BackfillTriggerPayload { started skipped }
    ... on ValidationError { message problems { path message } }
    ... on NotFoundError { message }
  } }"""
# Every ten minutes in Paris: 01:00 to 02:00 local on 1 January 2026 is 00:00 to 01:00 UTC.
# Each run's input carries its tick, through the trigger's input template.
EVERY_TEN = {
    "expression": "*/10 * * * *",
    "timezone": "Europe/Paris",
    "input": {"n": 1, "tick": "{{ trigger.scheduledAt }}"},
}
FROM, TO = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
TICKS = [f"2026-01-01T00:{m:02d}:00Z" for m in range(0, 60, 10)] + ["2026-01-01T01:00:00Z"]


async def setup(
    api: Api, s: Any, limit: int | None = None, workflow_limit: int | None = None
) -> str:
    """A CRON trigger (EVERY_TEN) of a new workflow of the session's owner, the first."""
    a_workflow = await api.services.workflows.create(
        api.owners[0].principal, "w", None, chain(1), max_concurrency=workflow_limit
    )
    made = await s.execute(op(CREATE, w=str(a_workflow.id), config=EVERY_TEN, max=limit))
    assert made["createTrigger"]["__typename"] == "CreateTriggerPayload", made
    assert made["createTrigger"]["trigger"]["maxConcurrentRuns"] == limit
    tid: str = made["createTrigger"]["trigger"]["id"]
    return tid


async def runs(api: Api, tid: str) -> list[Any]:
    return list(
        await api.services.pool.fetch(
            "SELECT id, status, input, trigger_data->>'scheduledAt' AS at, idempotency_key "
            "FROM executions WHERE trigger_id = $1 ORDER BY trigger_data->>'scheduledAt'",
            uuid.UUID(tid),
        )
    )


async def all_done(api: Api, tid: str) -> list[Any]:
    for _ in range(600):
        found = await runs(api, tid)
        if found and all(r["status"] == "COMPLETED" for r in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"backfilled runs did not complete: {[r['status'] for r in found]}")


async def backfill(s: Any, tid: str, start: Any, end: Any) -> dict[str, Any]:
    got: dict[str, Any] = (await s.execute(op(BACKFILL, id=tid, **{"from": start, "to": end})))[
        "backfillTrigger"
    ]
    return got


async def test_one_run_per_tick_completed_by_a_worker_and_a_repeat_starts_none(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        tid = await setup(api, s)
        async with running_worker(api):
            first = await backfill(s, tid, FROM, TO)
            assert first == {"__typename": "BackfillTriggerPayload", "started": 7, "skipped": 0}
            done = await all_done(api, tid)
        assert [r["at"] for r in done] == TICKS
        # The scheduler's shape: its input (rendered from the template), its key.
        assert [r["input"] for r in done] == [{"n": 1, "tick": t} for t in TICKS]
        assert [r["idempotency_key"] for r in done] == [f"cron:{tid}:{t}" for t in TICKS]

        again = await backfill(s, tid, FROM, TO)
        assert again == {"__typename": "BackfillTriggerPayload", "started": 0, "skipped": 7}
        # Overlapping, and given in another offset: 01:30+01:00 is 00:30Z.
        overlap = await backfill(s, tid, "2026-01-01T01:30:00+01:00", "2026-01-01T01:20:00Z")
        assert overlap == {"__typename": "BackfillTriggerPayload", "started": 2, "skipped": 4}
        assert len(await runs(api, tid)) == 9
        audit = await api.services.pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'trigger.backfilled' AND entity_id = $1",
            tid,
        )
        assert audit == 3


async def test_max_concurrent_runs_holds_a_backfill_until_runs_finish(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        tid = await setup(api, s, limit=2)
        got = await backfill(s, tid, FROM, "2026-01-01T00:40:00Z")
        assert got["started"] == 5
        # No worker yet: two run (their first step queued), three wait without a job.
        statuses = [r["status"] for r in await runs(api, tid)]
        assert statuses == ["RUNNING", "RUNNING", "PENDING", "PENDING", "PENDING"]
        jobs = await api.services.pool.fetchval(
            "SELECT count(*) FROM jobs j JOIN executions e ON e.id = j.execution_id "
            "WHERE e.trigger_id = $1",
            uuid.UUID(tid),
        )
        assert jobs == 2
        async with running_worker(api):
            done = await all_done(api, tid)
        assert [r["at"] for r in done] == TICKS[:5]
        # Never more than two of its runs at once: each run started after one had ended.
        started = await api.services.pool.fetch(
            "SELECT started_at, finished_at FROM executions WHERE trigger_id = $1 "
            "ORDER BY started_at",
            uuid.UUID(tid),
        )
        for i, row in enumerate(started[2:], start=2):
            ended_before = [r for r in started[:i] if r["finished_at"] <= row["started_at"]]
            assert len(ended_before) >= i - 1
        cleared = await s.execute(op(UPDATE, id=tid, max=None))
        assert cleared["updateTrigger"]["trigger"]["maxConcurrentRuns"] is None
        kept = await s.execute(op("mutation($id: ID!) { updateTrigger(id: $id, enabled: true) "
                                  "{ ... on TriggerPayload { trigger { maxConcurrentRuns } } } }",
                                  id=tid))  # fmt: skip
        assert kept["updateTrigger"]["trigger"]["maxConcurrentRuns"] is None
        bad = await s.execute(op(UPDATE, id=tid, max=0))
        assert bad["updateTrigger"]["__typename"] == "ValidationError"
        assert bad["updateTrigger"]["problems"][0]["path"] == "$.maxConcurrentRuns"


async def test_raising_the_limit_starts_waiting_runs(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        tid = await setup(api, s, limit=1)
        assert (await backfill(s, tid, FROM, "2026-01-01T00:20:00Z"))["started"] == 3
        assert [r["status"] for r in await runs(api, tid)] == ["RUNNING", "PENDING", "PENDING"]
        raised = await s.execute(op(UPDATE, id=tid, max=2))
        assert raised["updateTrigger"]["trigger"]["maxConcurrentRuns"] == 2
        assert [r["status"] for r in await runs(api, tid)] == ["RUNNING", "RUNNING", "PENDING"]
        # Deleting the trigger lets the rest go: nothing waits for a trigger that is gone.
        await s.execute(op("mutation($id: ID!) { deleteTrigger(id: $id) { __typename } }", id=tid))
        statuses = await api.services.pool.fetch(
            "SELECT status FROM executions WHERE trigger_type = 'CRON' AND owner_id = $1",
            a.principal.owner_id,
        )
        assert [r["status"] for r in statuses] == ["RUNNING"] * 3


async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(db_url: str) -> None:
    async with serve(db_url, backfill_max_ticks=6) as api:
        a = await api.owner()
        b = await api.owner()
        async with api.http(a.key) as s:
            tid = await setup(api, s)
            cases: list[tuple[Any, Any, str, str]] = [
                (TO, FROM, "to", "must not be before `from`"),
                (None, TO, "from", "is required"),
                (FROM, None, "to", "is required"),
                ("2026-01-01T00:00:00", TO, "from", "offset"),
                (FROM, "2999-01-01T00:00:00Z", "to", "must not be after now"),
                (FROM, TO, "to", "more than 6 fire times"),  # 7 ticks, limit 6
            ]
            for start, end, path, words in cases:
                got = await backfill(s, tid, start, end)
                assert got["__typename"] == "ValidationError", (start, end, got)
                assert got["problems"][0]["path"] == path, got
                assert words in got["problems"][0]["message"], got
            # Not an ISO date-time: GraphQL's DateTime refuses it, naming the variable.
            with pytest.raises(TransportQueryError) as refused:
                await backfill(s, tid, "yesterday", TO)
            assert "$from" in str(refused.value) and "DateTime" in str(refused.value)
            # A trigger that is not CRON: the `id` names it.
            wf = await api.services.workflows.create(a.principal, "m", None, chain(1))
            manual = await api.services.triggers.create(a.principal, wf.id, "MANUAL")
            got = await backfill(s, str(manual.trigger.id), FROM, TO)
            assert got["__typename"] == "ValidationError"
            assert got["problems"][0]["path"] == "id" and "MANUAL" in got["problems"][0]["message"]
        # Another owner's trigger is not found, as everywhere.
        async with api.http(b.key) as other:
            assert (await backfill(other, tid, FROM, TO))["__typename"] == "NotFoundError"
        assert await runs(api, tid) == []
        assert await api.services.pool.fetchval("SELECT count(*) FROM trigger_firings") == 0


async def test_a_workflow_limit_and_a_trigger_limit_both_hold(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        tid = await setup(api, s, limit=2, workflow_limit=1)
        assert (await backfill(s, tid, FROM, "2026-01-01T00:30:00Z"))["started"] == 4
        # The workflow's limit, the lower, holds: one runs.
        assert [r["status"] for r in await runs(api, tid)] == ["RUNNING"] + ["PENDING"] * 3
        async with running_worker(api):
            done = await all_done(api, tid)
        ordered = await api.services.pool.fetch(
            "SELECT started_at, finished_at, trigger_data->>'scheduledAt' AS at "
            "FROM executions WHERE trigger_id = $1 ORDER BY started_at",
            uuid.UUID(tid),
        )
        # One at a time, in fire-time order.
        assert [r["at"] for r in ordered] == [r["at"] for r in done]
        for before, after in itertools.pairwise(ordered):
            assert before["finished_at"] <= after["started_at"]
