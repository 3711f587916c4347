"""The metrics series through GraphQL: typed buckets over a window, aligned and
complete, counting the caller's own executions and steps only; bounded (500 buckets at
most, refused beyond with the parameter named) and costed."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.graphql.conftest import Api, op, running_worker, serve
from tests.support.dead_letters import failed_runs
from tests.support.graphs import chain

SERIES = """query($w: Int, $b: Int) { metricsSeries(windowSeconds: $w, bucketSeconds: $b) {
  windowSeconds bucketSeconds generatedAt sampled
  buckets { start executionsStarted executionsCompleted executionsFailed stepsCompleted
            stepDurationP50Ms stepDurationP95Ms } } }"""


def totals(series: dict[str, Any]) -> dict[str, int]:
    names = ("executionsStarted", "executionsCompleted", "executionsFailed", "stepsCompleted")
    return {n: sum(b[n] for b in series["buckets"]) for n in names}


async def test_buckets_count_the_callers_runs_and_steps(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    wf = await api.services.workflows.create(a.principal, "w", None, chain(2))
    async with running_worker(api):
        runs = [(await api.services.executions.start(a.principal, wf.id, {"n": 1})).execution.id
                for _ in range(3)]  # fmt: skip
        for _ in range(200):
            found = await api.services.executions.get_many(a.principal, runs)
            if all(r.status == "COMPLETED" for r in found.values()):
                break
    await failed_runs(api.services, a.principal, 1)
    steps = await api.services.pool.fetchval(
        """SELECT count(*) FROM step_executions s JOIN executions e ON e.id = s.execution_id
            WHERE e.owner_id = $1 AND s.status = 'COMPLETED' AND s.started_at IS NOT NULL
              AND s.reused_from_id IS NULL""",
        a.principal.owner_id,
    )
    async with api.http(a.key) as s:
        series = (await s.execute(op(SERIES, w=600, b=60)))["metricsSeries"]
    assert (series["windowSeconds"], series["bucketSeconds"], series["sampled"]) == (600, 60, False)
    starts = [datetime.fromisoformat(x["start"]) for x in series["buckets"]]
    assert len(starts) == 10 and all(t.timestamp() % 60 == 0 for t in starts)
    assert all(
        later - earlier == timedelta(seconds=60) for earlier, later in itertools.pairwise(starts)
    )
    generated = datetime.fromisoformat(series["generatedAt"])
    assert starts[-1] <= generated < starts[-1] + timedelta(seconds=60)
    assert totals(series) == {
        "executionsStarted": 4, "executionsCompleted": 3, "executionsFailed": 1,
        "stepsCompleted": steps,
    }  # fmt: skip
    assert steps >= 6
    for bucket in series["buckets"]:
        has_steps = bucket["stepsCompleted"] > 0
        assert (bucket["stepDurationP50Ms"] is not None) == has_steps
        if has_steps:
            assert 0 <= bucket["stepDurationP50Ms"] <= bucket["stepDurationP95Ms"]
    async with api.http(b.key) as s:
        theirs = (await s.execute(op(SERIES)))["metricsSeries"]
    assert (theirs["windowSeconds"], theirs["bucketSeconds"], len(theirs["buckets"])) == (
        3600, 60, 60,
    )  # fmt: skip
    assert set(totals(theirs).values()) == {0}


async def test_bucket_counts_are_bounded_and_checked(db_url: str) -> None:
    async with serve(db_url, max_query_cost=400) as api:
        a = await api.owner()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.key}"}) as http:

            async def post(query: str, **variables: Any) -> dict[str, Any]:
                reply = await http.post(api.http_url, json={"query": query, "variables": variables})
                assert reply.status_code < 500
                body: dict[str, Any] = reply.json()
                return body

            # 500 buckets at most, whatever is asked: costed as the most it may hold.
            costly = await post(SERIES, w=3600, b=60)
            assert costly["errors"][0]["extensions"]["code"] == "query_too_costly"
        async with (
            serve(db_url) as roomy,
            httpx.AsyncClient(
                headers={"Authorization": f"Bearer {(await roomy.owner()).key}"}
            ) as http,
        ):
            for (window, bucket), path in {
                (3600, 1): "bucketSeconds", (3600, 7): "bucketSeconds",
                (3600, 0): "bucketSeconds", (600, 601): "bucketSeconds",
                (10, None): "windowSeconds", (604801, None): "windowSeconds",
            }.items():  # fmt: skip
                reply = await http.post(
                    roomy.http_url, json={"query": SERIES, "variables": {"w": window, "b": bucket}}
                )
                error = reply.json()["errors"][0]
                assert error["extensions"]["code"] == "invalid_input", error
                assert [p["path"] for p in error["extensions"]["problems"]] == [path]
            many = await http.post(
                roomy.http_url, json={"query": SERIES, "variables": {"w": 3600, "b": 8}}
            )
            assert len(many.json()["data"]["metricsSeries"]["buckets"]) == 450
            week = await http.post(
                roomy.http_url, json={"query": SERIES, "variables": {"w": 604800}}
            )
            series = week.json()["data"]["metricsSeries"]
            assert (series["bucketSeconds"], len(series["buckets"])) == (1210, 500)
