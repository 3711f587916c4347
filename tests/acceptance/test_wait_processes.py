"""Waits and approvals with real processes: runs waiting at a wait, an approval and a
wait with a timeout survive a SIGKILL of every worker and of the API; after a restart
the signals, sent over REST and GraphQL to the new API process, complete them, and the
timeout that fell due meanwhile takes its branch. Nothing runs twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.graphql.conftest import free_port
from tests.support.graphs import approving, waiting
from tests.support.processes import Process, flowsync_env
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow

SIGNAL = """mutation($id: ID!, $name: String!, $payload: JSON) {
  signalExecution(id: $id, name: $name, payload: $payload) {
    ... on SignalExecutionPayload { takenBy execution { status } }
    ... on UserError { code message }
  }
}"""


def start_api(db_url: str, tmp_path: Path, port: int, name: str, apis: list[Process]) -> Process:
    env = flowsync_env(db_url, shutdown_grace_seconds=5)
    apis.append(Process(["serve", "--port", str(port)], env, tmp_path / f"{name}.log"))
    return apis[-1]


async def api_ready(proc: Process, port: int) -> None:
    async with httpx.AsyncClient() as client:

        async def check() -> bool:
            assert proc.proc.poll() is None, proc.output()
            try:
                reply = await client.get(f"http://127.0.0.1:{port}/api/ready", timeout=5)
            except httpx.TransportError:
                return False
            return reply.status_code == 200

        await wait_until(check, 90, "the API to be ready")


async def test_waits_survive_sigkill_of_every_process_and_signals_complete_them(
    db_url: str,
    tmp_path: Path,
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
) -> None:
    apis: list[Process] = []
    try:
        await _run(db_url, tmp_path, services, me, workers, apis)
    finally:
        for api in apis:
            api.close()


async def _run(
    db_url: str,
    tmp_path: Path,
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
    apis: list[Process],
) -> None:
    key = (await services.api_keys.create(me, "waits")).secret
    auth = {"Authorization": f"Bearer {key}"}
    port = free_port()
    api = start_api(db_url, tmp_path, port, "api-0", apis)
    crew = [workers(), workers()]
    await api_ready(api, port)
    runs: dict[str, str] = {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=30
    ) as http:
        for name, definition, input in (
            ("paid", waiting("paid"), {"order": 1}),
            ("review", approving(), {"order": 2}),
            ("late", waiting("never", timeout=3, timeout_branch=True), {"order": 3}),
        ):
            created = await http.post(
                "/api/workflows", json={"name": name, "definition": definition}
            )
            assert created.status_code == 201, created.text
            started = await http.post(
                "/api/executions", json={"workflowId": created.json()["id"], "input": input}
            )
            assert started.status_code == 201, started.text
            runs[name] = started.json()["id"]

        async def all_waiting() -> bool:
            waits = 0
            for run_id in runs.values():
                body = (await http.get(f"/api/executions/{run_id}")).json()
                waits += sum(s["status"] == "WAITING" for s in body["steps"])
            return waits == 3

        await wait_until(all_waiting, 60, "the three runs to wait")

    # Every process dies at once, with no cleanup: only what is in the tables is left.
    for proc in (*crew, api):
        proc.kill()
    await asyncio.sleep(3.5)  # "late"'s timeout falls due while nothing runs
    for run_id in runs.values():
        assert (await services.executions.get(me, run_id)).status == "RUNNING"

    port = free_port()
    api = start_api(db_url, tmp_path, port, "api-1", apis)
    crew = [workers(), workers()]
    await api_ready(api, port)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=30
    ) as http:
        sent = await http.post(
            f"/api/executions/{runs['paid']}/signals/paid", json={"payload": {"amount": 9}}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["takenBy"] == "wait"
        approved = await http.post(
            "/graphql",
            json={"query": SIGNAL, "variables": {
                "id": runs["review"], "name": "approval",
                "payload": {"approved": True, "by": "ann", "comment": "fine"}}},
        )  # fmt: skip
        assert approved.json()["data"]["signalExecution"]["takenBy"] == "review", approved.text

        async def all_done() -> dict[str, dict[str, Any]] | None:
            found = {n: (await http.get(f"/api/executions/{i}")).json() for n, i in runs.items()}
            return found if all(r["status"] == "COMPLETED" for r in found.values()) else None

        done = await wait_until(all_done, 60, "the three runs to complete")
    for proc in (*crew, api):
        proc.kill()
    assert done["paid"]["output"] == {"amount": 9}
    assert done["review"]["output"]["way"] == "approved"
    assert done["review"]["output"]["review"] == {"approved": True, "by": "ann", "comment": "fine"}
    late = {s["nodeId"]: s for s in done["late"]["steps"]}
    assert done["late"]["output"]["timedOut"] is True
    assert late["late"]["status"] == "COMPLETED" and late["got"]["status"] == "SKIPPED"
    for run_id in runs.values():
        events = await services.executions.events(me, run_id)
        completed = Counter(e.node_id for e in events if e.kind == "step.completed")
        assert set(completed.values()) == {1}, events
    assert await services.pool.fetchval("SELECT count(*) FROM jobs") == 0
    assert await services.pool.fetchval("SELECT count(*) FROM signals WHERE taken_at IS NULL") == 0
