"""Child workflows with real worker processes: a parent waiting on its child survives a
SIGKILL of every worker and a restart, and completes with the child's output; the child
is started once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.processes import Process
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow

# The child's transform sleeps (tests.support.handlers.SlowTransform): killed mid-step.
CHILD = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transform", "data": {"output": {"n": "{{ input.n * 2 }}"}}},
        {"id": "end", "type": "end", "data": {"output": "{{ steps.t.output }}"}},
    ],
    "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
}


def parent(child_id: object) -> dict[str, object]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "call",
                "type": "workflow",
                "data": {
                    "workflowId": str(child_id),
                    "input": {"n": "{{ input.n }}", "sleep": "{{ input.sleep }}"},
                },
            },
            {"id": "end", "type": "end", "data": {"output": "{{ steps.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }


async def test_a_waiting_parent_survives_sigkill_of_every_worker(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    child = await services.workflows.create(me, "child", None, CHILD)
    top = await services.workflows.create(me, "parent", None, parent(child.id))
    first = [workers(), workers()]
    eid = (await services.executions.start(me, top.id, {"n": 21, "sleep": 3})).execution.id
    pool = services.pool

    async def child_mid_step() -> object:
        return await pool.fetchval(
            "SELECT c.id FROM executions c JOIN step_executions s ON s.execution_id = c.id"
            " JOIN jobs j ON j.step_id = s.id"
            " WHERE c.parent_execution_id = $1 AND s.node_id = 't'"
            " AND j.lease_token IS NOT NULL",
            eid,
        )

    kid = await wait_until(child_mid_step, 30, "the child's step to run")
    waiting = await pool.fetchrow(
        "SELECT s.status, j.lease_token FROM step_executions s JOIN jobs j ON j.step_id = s.id"
        " WHERE s.execution_id = $1 AND s.node_id = 'call'",
        eid,
    )
    assert waiting is not None
    assert (waiting["status"], waiting["lease_token"]) == ("WAITING", None)
    for proc in first:
        proc.kill()
    for proc in first:
        proc.proc.wait(10)
    restarted = workers()
    execution = await finished(services, me, eid, 60)
    assert execution.status == "COMPLETED", restarted.output()[-3000:]
    assert execution.output == {"n": 42}
    children = await pool.fetch(
        "SELECT id, status FROM executions WHERE parent_execution_id = $1", eid
    )
    assert [(r["id"], r["status"]) for r in children] == [(kid, "COMPLETED")]
