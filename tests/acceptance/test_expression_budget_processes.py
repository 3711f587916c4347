"""Expressions' limits in a real `flowsync worker` process: the settings reach it, a
costly expression runs in an evaluator process of its own that is stopped at the budget,
and the worker exits cleanly on SIGTERM with its evaluator processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.graphs import chain
from tests.support.processes import Process
from tests.support.workers import finished

pytestmark = pytest.mark.slow


def heavy_condition() -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "heavy",
                "type": "condition",
                "data": {"expression": "input.l.all(a, input.l.all(b, a + b >= 0))"},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "heavy"},
            {"source": "heavy", "target": "end", "sourceHandle": "true"},
            {"source": "heavy", "target": "end", "sourceHandle": "false"},
        ],
    }


async def test_a_worker_process_stops_a_costly_expression_at_its_budget(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    worker = workers(
        expression_timeout_seconds=0.5,
        max_step_output_bytes=50_000,
        extra_handlers="",
    )
    heavy = await services.workflows.create(me, "heavy", None, heavy_condition())
    light = await services.workflows.create(me, "light", None, chain(3))
    heavy_id = (
        await services.executions.start(me, heavy.id, {"l": list(range(5_000))})
    ).execution.id
    light_id = (await services.executions.start(me, light.id, {"n": 1})).execution.id

    done = await finished(services, me, light_id, 30)
    assert done.status == "COMPLETED" and done.output == {"n": 4}, worker.output()
    execution = await finished(services, me, heavy_id, 30)
    assert execution.status == "FAILED", worker.output()
    assert "node 'heavy' ran over its time budget of 0.5 s" in execution.error["message"]

    copy = chain(1)
    copy["nodes"][1]["data"]["output"] = "{{ input.s }}"
    big = await services.workflows.create(me, "big", None, copy)
    big_id = (await services.executions.start(me, big.id, {"s": "x" * 60_000})).execution.id
    execution = await finished(services, me, big_id, 30)
    assert execution.status == "FAILED"
    assert "grew over 50,000 bytes" in execution.error["message"]
    assert worker.terminate() == 0, worker.output()
    assert "Traceback" not in worker.output()
