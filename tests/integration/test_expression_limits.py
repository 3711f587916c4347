"""Expressions' run-time budget and the step output cap, with a real worker on a real
PostgreSQL: a costly expression runs in an evaluator process and fails its step when it
runs over its time, while the worker keeps completing other executions' steps; an output
over the cap fails its step at once."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from flowsync.config import Settings
from flowsync.engine.expressions import compile_expression
from flowsync.engine.templates import compile_template
from flowsync.errors import ExpressionFailed, StepFailed
from flowsync.worker.evaluation import Evaluator
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry, registry_from_settings
from tests.support.env import Env, run_worker
from tests.support.graphs import chain
from tests.support.target import Target, action, running_target

# 5,000 * 5,000 comprehension runs: many seconds on the event loop; past 1 s it is stopped.
HEAVY = "input.l.all(a, input.l.all(b, a + b >= 0))"
HEAVY_INPUT = {"l": list(range(5_000))}


def condition_workflow(expression: str) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "heavy", "type": "condition", "data": {"expression": expression}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "heavy"},
            {"source": "heavy", "target": "end", "sourceHandle": "true"},
            {"source": "heavy", "target": "end", "sourceHandle": "false"},
        ],
    }


async def with_worker(env: Env, evaluator: Evaluator, **kw: Any) -> AsyncIterator[Env]:
    task = await run_worker(env, default_registry(evaluator=evaluator, **kw))
    try:
        yield env
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def limited(env: Env) -> AsyncIterator[Env]:
    """A worker whose expressions may run 1 s and whose steps' outputs are at most
    2,000 bytes of JSON."""
    async for running in with_worker(
        env, Evaluator(timeout_seconds=1.0, max_output_bytes=2_000), policy=None
    ):
        yield running


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as served:
        yield served


# --- the run-time budget -----------------------------------------------------------------


async def test_a_costly_expression_fails_its_step_and_others_keep_running(
    limited: Env,
) -> None:
    heavy_wid = await limited.create(condition_workflow(HEAVY), "heavy")
    light_wid = await limited.create(chain(5), "light")
    heavy_id = await limited.start(heavy_wid, HEAVY_INPUT)
    await asyncio.sleep(0.3)  # the heavy step is being evaluated by now
    light = [await limited.start(light_wid, {"n": k}) for k in range(3)]
    done = [await limited.wait(eid, timeout=20) for eid in light]
    assert [e.status for e in done] == ["COMPLETED"] * 3
    assert [e.output for e in done] == [{"n": 5}, {"n": 6}, {"n": 7}]

    execution = await limited.wait(heavy_id, timeout=30)
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "heavy"
    message = execution.error["message"]
    assert "node 'heavy'" in message and "time budget of 1 s" in message, message
    assert "FLOWSYNC_EXPRESSION_TIMEOUT_SECONDS" in message
    step = (await limited.steps(heavy_id))["heavy"]
    assert step.status == "FAILED" and step.attempt == 1  # not retried
    # The loop was not blocked: the other executions finished while the heavy step ran.
    assert step.finished_at is not None
    assert all(e.finished_at < step.finished_at for e in done)
    assert step.finished_at - step.started_at < timedelta(seconds=5)


async def test_an_offloaded_expression_within_budget_gives_its_value(limited: Env) -> None:
    definition = chain(1)
    definition["nodes"][1]["data"]["output"] = {
        "ids": "{{ input.items.map(i, i.id) }}",
        "n": "{{ input.n + 1 }}",
        "text": "first {{ input.items.filter(i, i.id > 1).map(i, i.id) }}",
    }
    definition["nodes"][-1]["data"]["output"] = "{{ steps.t1.output }}"
    wid = await limited.create(definition)
    items = [{"id": k} for k in range(4)]
    execution = await limited.wait(await limited.start(wid, {"n": 1, "items": items}))
    assert execution.status == "COMPLETED", execution.error
    assert execution.output == {"ids": [0, 1, 2, 3], "n": 2, "text": "first [2,3]"}


async def test_an_offloaded_expression_that_fails_names_its_path(limited: Env) -> None:
    wid = await limited.create(condition_workflow("input.items.all(i, i.missing > 0)"))
    execution = await limited.wait(await limited.start(wid, {"items": [{"id": 1}]}))
    assert execution.status == "FAILED"
    assert "no such key 'missing'" in execution.error["message"]


# --- the output cap ------------------------------------------------------------------------


async def test_a_template_that_grows_past_the_cap_fails_at_once(limited: Env) -> None:
    definition = chain(1)
    definition["nodes"][1]["data"]["output"] = {"copies": "{{ input.s }}{{ input.s }}"}
    wid = await limited.create(definition)
    execution = await limited.wait(await limited.start(wid, {"s": "x" * 1_500}))
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "t1"
    message = execution.error["message"]
    assert "template at $.nodes[1].data.output.copies: its value grew over 2,000 bytes" in message
    step = (await limited.steps(execution.id))["t1"]
    assert step.attempt == 1


async def test_an_output_over_the_cap_fails_its_step(limited: Env) -> None:
    """Two branches each within the cap; their join's output is not."""
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "split", "type": "fork"},
            {"id": "a", "type": "transform", "data": {"output": "{{ input.s }}"}},
            {"id": "b", "type": "transform", "data": {"output": "{{ input.s }}"}},
            {"id": "merge", "type": "join"},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "split"},
            {"source": "split", "target": "a"},
            {"source": "split", "target": "b"},
            {"source": "a", "target": "merge"},
            {"source": "b", "target": "merge"},
            {"source": "merge", "target": "end"},
        ],
    }
    wid = await limited.create(definition)
    execution = await limited.wait(await limited.start(wid, {"s": "x" * 1_200}))
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "merge"
    size = len(orjson.dumps({"a": "x" * 1_200, "b": "x" * 1_200}))
    assert execution.error["message"] == (
        f"the output of node 'merge' is {size:,} bytes of JSON; a step's output is at most "
        "2,000 (FLOWSYNC_MAX_STEP_OUTPUT_BYTES)"
    )
    steps = await limited.steps(execution.id)
    assert steps["a"].status == "COMPLETED" and steps["merge"].attempt == 1


async def test_an_action_reply_over_the_cap_fails_without_a_retry(env: Env, target: Target) -> None:
    evaluator = Evaluator(max_output_bytes=3_000)
    async for running in with_worker(env, evaluator, policy=NetworkPolicy(["127.0.0.1/32"])):
        retry = {"maxAttempts": 3, "initialIntervalSeconds": 0.1}
        wid = await running.create(action(target.url + "/big?bytes=5000", retry=retry))
        execution = await running.wait(await running.start(wid, {}))
        assert execution.status == "FAILED"
        assert execution.error["nodeId"] == "call"
        assert "the output of node 'call' is" in execution.error["message"]
        assert len(target.requests_to("/big")) == 1


# --- the evaluator itself --------------------------------------------------------------------


async def test_the_event_loop_keeps_turning_while_an_expression_runs() -> None:
    evaluator = Evaluator(timeout_seconds=1.0)
    expression = compile_expression(HEAVY)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        light = compile_expression("input.l.all(a, a >= 0)")
        assert await evaluator.condition(light, {"input": HEAVY_INPUT}, "w") is True
        gaps.clear()  # the evaluator process has started
        started = time.perf_counter()
        with pytest.raises(ExpressionFailed, match="node 'n' ran over its time budget of 1 s"):
            await evaluator.condition(expression, {"input": HEAVY_INPUT}, "n")
        assert time.perf_counter() - started < 3
        assert len(gaps) > 30 and max(gaps) < 0.5
        # A new process takes the killed one's place.
        assert await evaluator.condition(expression, {"input": {"l": [1, 2]}}, "n") is True
    finally:
        ticker.cancel()
        await evaluator.close()


async def test_the_evaluator_process_has_a_memory_limit() -> None:
    evaluator = Evaluator()
    template = compile_template("{{ input.l.map(i, i) }}")
    try:
        assert await evaluator.render(template, {"input": {"l": [1]}}, "n") == [1]
        [child] = evaluator._idle
        limits = Path(f"/proc/{child.process.pid}/limits").read_text()  # noqa: ASYNC240
        [line] = [row for row in limits.splitlines() if row.startswith("Max address space")]
        assert "unlimited" not in line
        assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY
    finally:
        await evaluator.close()
    assert child.process.poll() is not None  # closed: the process has exited


async def test_a_value_over_the_cap_never_leaves_the_evaluator_process() -> None:
    evaluator = Evaluator(max_output_bytes=1_000)
    template = compile_template({"big": "{{ input.l.map(i, 'xxxxxxxxxx') }}"})
    try:
        with pytest.raises(ExpressionFailed, match=r"template at \$\.big: .* at most 1,000"):
            await evaluator.render(template, {"input": {"l": list(range(200))}}, "n")
    finally:
        await evaluator.close()


def test_output_is_measured_as_json() -> None:
    evaluator = Evaluator(max_output_bytes=10)
    assert evaluator.output({"a": "é"}, "n") == {"a": "é"}  # 10 bytes: within
    with pytest.raises(StepFailed, match="the output of node 'n' is 12 bytes"):
        evaluator.output({"a": "éé"}, "n")


def test_settings_reach_every_built_in_handler() -> None:
    settings = Settings(expression_timeout_seconds=0.25, max_step_output_bytes=1234)
    registry = registry_from_settings(settings)
    for node_type in ("start", "transform", "end", "condition", "join", "delay", "action",
                      "webhook_response"):  # fmt: skip
        evaluator = registry.get(node_type).evaluator  # type: ignore[attr-defined]
        assert (evaluator.timeout_seconds, evaluator.max_output_bytes) == (0.25, 1234)
