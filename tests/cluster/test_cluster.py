"""FlowSync on many hosts (issue 19): PostgreSQL, two `flowsync serve` and two `flowsync
worker` hosts and a client, each a network namespace of its own (see conftest.py). What
ran where is read through the APIs only (steps' `workerHost`), never from the database.

The tests share one cluster and run in this order; the last one loses worker host w1.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets

from tests.cluster.conftest import API_PORT, Cluster, hostname, until
from tests.support.graphs import chain, fan

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BOTH_WORKERS = {hostname("w1"), hostname("w2")}
RUN = """query($id: ID!) { execution(id: $id) {
  status output steps { nodeId status workerId workerHost }
  timeline { sequence kind nodeId data } } }"""
RUNS = """query($wf: ID!) { executions(workflowId: $wf, first: 100) { edges { node {
  id status steps { nodeId status workerHost } } } } }"""
EVENTS = """subscription { executionEvents { executionId sequence kind nodeId status } }"""


async def gql(http: httpx.AsyncClient, query: str, **variables: Any) -> Any:
    reply = await http.post("/graphql", json={"query": query, "variables": variables})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "errors" not in body, body
    return body["data"]


async def post(http: httpx.AsyncClient, path: str, body: Any) -> Any:
    reply = await http.post(path, json=body)
    assert reply.status_code in (200, 201, 202), reply.text
    return reply.json()


async def new_workflow(http: httpx.AsyncClient, name: str, definition: dict[str, Any]) -> str:
    return str((await post(http, "/api/workflows", {"name": name, "definition": definition}))["id"])


async def start(http: httpx.AsyncClient, workflow_id: str, data: Any) -> str:
    return str(
        (await post(http, "/api/executions", {"workflowId": workflow_id, "input": data}))["id"]
    )


async def finished(http: httpx.AsyncClient, execution_id: str, timeout: float = 30) -> Any:
    async def check() -> Any:
        run = (await http.get(f"/api/executions/{execution_id}")).json()
        return run if run["status"] not in ("PENDING", "RUNNING") else None

    return await until(check, timeout, f"run {execution_id} to finish")


def test_runs_started_on_either_api_host_run_on_the_workers_of_both_hosts(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        async with cluster.http("api1") as api1, cluster.http("api2") as api2:
            wf = await new_workflow(api1, "spread", fan(3))
            for started_on, other in ((api1, api2), (api2, api1)):
                # Three branches that each take two seconds, and two slots per worker: one
                # worker cannot hold all three at once, so the run needs both hosts (the
                # idle one is woken at once; two seconds leave a loaded machine margin).
                eid = await start(started_on, wf, {"sleep": 2})
                run = await finished(started_on, eid)
                assert run["status"] == "COMPLETED", run
                assert run["output"] == {"count": 3}
                branches = {s["nodeId"]: s for s in run["steps"] if s["nodeId"][0] == "b"}
                assert {s["workerHost"] for s in branches.values()} == BOTH_WORKERS, branches
                # The other API host tells the same story through GraphQL.
                seen = (await gql(other, RUN, id=eid))["execution"]
                for step in seen["steps"]:
                    if step["nodeId"] in branches:
                        mine = branches[step["nodeId"]]
                        assert (step["workerId"], step["workerHost"]) == (
                            mine["workerId"],
                            mine["workerHost"],
                        )
                        assert step["workerId"].startswith(step["workerHost"] + ":")

    cluster.run(scenario())


async def _subscribed(cluster: Cluster) -> websockets.ClientConnection:
    """A graphql-transport-ws socket to API host 1 with `executionEvents` subscribed."""
    ws = await websockets.connect(
        f"ws://{cluster.address('api1')}:{API_PORT}/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        proxy=None,
    )
    await ws.send(
        json.dumps(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {cluster.key}"}}
        )
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
    return ws


async def _next_event(ws: websockets.ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(30):
        message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    event: dict[str, Any] = message["payload"]["data"]["executionEvents"]
    return event


def test_a_subscriber_on_api_host_1_sees_every_event_of_a_run_started_on_api_host_2_live(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        async with cluster.http("api2") as api2:
            # A run parked in a long delay: the subscription's snapshot of it says the
            # subscription is in place (so the next run's events cannot start before it).
            parked = await start(
                api2, await new_workflow(api2, "parked", chain(1, delay=60)), {"n": 0}
            )
            await until(
                lambda: _status_is(api2, parked, "RUNNING"), 30, "the parked run to be running"
            )
            ws = await _subscribed(cluster)
            try:
                first = await _next_event(ws)
                assert first["kind"] == "snapshot", first
                wf = await new_workflow(api2, "watched", chain(2))
                eid = await start(api2, wf, {"n": 1, "sleep": 1})
                received: list[dict[str, Any]] = []
                still_running_at = None
                for _ in range(200):
                    event = await _next_event(ws)
                    if event["executionId"] != eid:
                        continue
                    received.append(event)
                    if event["kind"] == "step.started" and event["nodeId"] == "t1":
                        # Live: the step's start arrives while the step still runs (it
                        # sleeps a second), not when the run is over.
                        run = (await api2.get(f"/api/executions/{eid}")).json()
                        still_running_at = run["status"]
                    if event["kind"] == "execution.completed":
                        break
            finally:
                await ws.close()
            assert still_running_at == "RUNNING", received
            timeline = (await gql(api2, RUN, id=eid))["execution"]["timeline"]
            assert [(e["sequence"], e["kind"], e["nodeId"]) for e in received] == [
                (e["sequence"], e["kind"], e["nodeId"]) for e in timeline
            ]
            assert [e["sequence"] for e in received] == list(range(1, len(received) + 1))
            cancelled = await api2.post(f"/api/executions/{parked}/cancel")
            assert cancelled.status_code == 200, cancelled.text

    cluster.run(scenario())


async def _status_is(http: httpx.AsyncClient, execution_id: str, status: str) -> bool:
    return bool((await http.get(f"/api/executions/{execution_id}")).json()["status"] == status)


def test_a_webhook_delivered_to_both_api_hosts_starts_one_run_per_delivery_id(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        async with cluster.http("api1") as api1, cluster.http("api2") as api2:
            wf = await new_workflow(api1, "hooked", chain(1))
            trigger = await post(
                api1,
                "/api/triggers",
                {"workflowId": wf, "type": "WEBHOOK", "config": {"requireSignature": False}},
            )
            path = f"/api/webhooks/{trigger['id']}"
            firsts = []
            for n in range(4):
                # The same delivery to both hosts at once, as a sender retrying on another
                # address of the load balancer would.
                headers = {"Idempotency-Key": f"delivery-{n}"}
                replies = await asyncio.gather(
                    *(http.post(path, json={"n": n}, headers=headers) for http in (api1, api2))
                )
                assert [r.status_code for r in replies] in ([202, 202], [202, 200], [200, 202])
                ids = {r.headers["X-FlowSync-Execution-Id"] for r in replies}
                assert len(ids) == 1, [r.text for r in replies]
                replayed = [r.headers.get("Idempotent-Replayed") for r in replies]
                assert Counter(replayed) == {"true": 1, None: 1}, replayed
                firsts.append(ids.pop())
            listed = (await api2.get("/api/executions", params={"triggerId": trigger["id"]})).json()
            assert sorted(r["id"] for r in listed["items"]) == sorted(firsts)
            for n, eid in enumerate(firsts):
                run = await finished(api2, eid)
                assert (run["status"], run["output"]) == ("COMPLETED", {"n": n + 1}), run

    cluster.run(scenario())


def test_cron_fires_each_tick_exactly_once_across_both_worker_hosts(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with cluster.http("api1") as api1, cluster.http("api2") as api2:
            status = (await api1.get("/api/scheduler/status")).json()
            # One scheduler on each worker host (ids are pid:suffix@host).
            hosts = sorted(s["id"].rpartition("@")[2] for s in status["schedulers"])
            assert hosts == sorted(BOTH_WORKERS), status
            wf = await new_workflow(api1, "tick", chain(1))
            trigger = await post(
                api1,
                "/api/triggers",
                {
                    "workflowId": wf,
                    "type": "CRON",
                    "config": {
                        "expression": "* * * * * *",
                        "input": {"n": 0, "at": "{{ trigger.scheduledAt }}"},
                    },
                },
            )
            first_tick = datetime.fromisoformat(trigger["nextRunAt"])

            async def fired(least: int) -> list[dict[str, Any]] | None:
                reply = await api2.get(
                    "/api/executions", params={"triggerId": trigger["id"], "limit": 100}
                )
                items: list[dict[str, Any]] = reply.json()["items"]
                return items if len(items) >= least else None

            await until(lambda: fired(5), 30, "five ticks")
            disabled = await api2.put(f"/api/triggers/{trigger['id']}", json={"enabled": False})
            assert disabled.status_code == 200, disabled.text
            await asyncio.sleep(1.0)  # a tick under way when it was disabled commits
            runs = await fired(5)
            assert runs is not None
            counts = Counter(datetime.fromisoformat(r["input"]["at"]) for r in runs)
            assert max(counts.values()) == 1, counts.most_common(3)
            ticks = sorted(counts)
            assert ticks[0] == first_tick
            assert ticks == [first_tick + timedelta(seconds=n) for n in range(len(ticks))]
            for run in runs:
                done = await finished(api1, run["id"])
                assert done["status"] == "COMPLETED", done

    cluster.run(scenario())


def test_losing_a_worker_host_loses_no_run_and_records_each_step_once(cluster: Cluster) -> None:
    async def begin() -> tuple[str, list[str]]:
        async with cluster.http("api1") as api1, cluster.http("api2") as api2:
            wf = await new_workflow(api1, "durable", chain(2))
            ids = [await start((api1, api2)[n % 2], wf, {"n": n, "sleep": 1}) for n in range(4)]

            async def busy_on_w1() -> bool:
                runs = (await gql(api2, RUNS, wf=wf))["executions"]["edges"]
                return any(
                    s["status"] == "RUNNING" and s["workerHost"] == hostname("w1")
                    for r in runs
                    for s in r["node"]["steps"]
                )

            await until(busy_on_w1, 30, "a step running on w1")
            return wf, ids

    wf, ids = cluster.run(begin())
    cluster.kill_host("w1")  # its link cut, then SIGKILL of every process on it

    async def end() -> None:
        async with cluster.http("api1") as api1, cluster.http("api2") as api2:

            async def all_finished() -> list[dict[str, Any]] | None:
                edges = (await gql(api1, RUNS, wf=wf))["executions"]["edges"]
                done = [
                    e["node"] for e in edges if e["node"]["status"] not in ("PENDING", "RUNNING")
                ]
                return done if len(done) == len(ids) else None

            await until(all_finished, 60, "every run to finish without w1")
            moved = 0
            for n, eid in enumerate(ids):
                run = (await gql((api1, api2)[n % 2], RUN, id=eid))["execution"]
                assert (run["status"], run["output"]) == ("COMPLETED", {"n": n + 2}), run
                completed = Counter(
                    e["nodeId"] for e in run["timeline"] if e["kind"] == "step.completed"
                )
                assert completed == dict.fromkeys(("start", "t1", "t2", "end"), 1), run["timeline"]
                steps = {s["nodeId"]: s for s in run["steps"]}
                for node in ("t1", "t2"):
                    # Each attempt's start names its worker; the step names the last.
                    starts = [
                        e["data"]["workerHost"]
                        for e in run["timeline"]
                        if e["kind"] == "step.started" and e["nodeId"] == node
                    ]
                    assert starts[-1] == steps[node]["workerHost"], run
                    # An attempt that died with w1 was run again, to completion, on w2.
                    if hostname("w1") in starts[:-1] and starts[-1] == hostname("w2"):
                        moved += 1
            assert moved >= 1, "no step of the lost host was taken over by w2"

            # PostgreSQL notices the lost host within seconds (keepalives), so its
            # scheduler, whose connection is how schedulers are counted, is gone too.
            async def schedulers_left() -> list[str] | None:
                status = (await api2.get("/api/scheduler/status")).json()
                hosts = [s["id"].rpartition("@")[2] for s in status["schedulers"]]
                return hosts if hosts == [hostname("w2")] else None

            await until(schedulers_left, 20, "only w2's scheduler to be left")

    cluster.run(end())
