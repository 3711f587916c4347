"""Traces on a real PostgreSQL with an in-process worker and the SDK's in-memory
exporter: a fork/join run is one trace (its execution span, a queue-wait and a run span
per step under it, the HTTP call's client span under its step's), the target receives
the call's `traceparent`, a caller's traceparent is continued and a malformed one
ignored, and the trace id is on the execution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowsync import tracing
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry
from tests.rest.server import serve
from tests.support.env import Env, run_worker
from tests.support.graphs import fan
from tests.support.target import Target, running_target

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as served:
        yield served


@pytest.fixture
async def traced(env: Env, spans: InMemorySpanExporter) -> AsyncIterator[Env]:
    """A worker whose actions may call 127.0.0.1, with tracing on."""
    task = await run_worker(env, default_registry(NetworkPolicy(["127.0.0.1/32"])))
    try:
        yield env
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)


def fork_join_calling(url: str) -> dict[str, Any]:
    """start → fork → (b0, b1: transforms; call: an action to `url`) → join → end."""
    definition = fan(2)
    definition["nodes"].append(
        {"id": "call", "type": "action", "data": {"method": "GET", "url": url}}
    )
    definition["edges"] += [
        {"source": "split", "target": "call"},
        {"source": "call", "target": "merge"},
    ]
    return definition


def by_name(found: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {s.name: s for s in found}
    assert len(named) == len(found), sorted(s.name for s in found)
    return named


async def until_spans(
    exporter: InMemorySpanExporter, count: int, timeout: float = 10
) -> list[ReadableSpan]:
    """The spans once `count` have ended (the last step's run span ends a moment after
    the run is seen done)."""
    for _ in range(int(timeout / 0.02)):
        found = list(exporter.get_finished_spans())
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(exporter.get_finished_spans())} spans, expected {count}")


async def test_a_fork_join_run_is_one_trace(
    traced: Env, spans: InMemorySpanExporter, target: Target
) -> None:
    wid = await traced.create(fork_join_calling(target.url + "/echo"), "orders")
    eid = await traced.start(wid, {})
    execution = await traced.wait(eid)
    assert execution.status == "COMPLETED", execution.error
    steps = await traced.steps(eid)
    # The steps a worker ran (the start node is written with the run).
    worked = sorted(n for n, s in steps.items() if s.worker_id is not None)
    assert {"b0", "b1", "call", "merge"} <= set(worked)
    found = await until_spans(spans, 1 + 2 * len(worked) + 1)
    named = by_name(found)

    root = named["execution orders"]
    assert root.parent is None
    trace_id = root.context.trace_id
    stored = tracing.parse_traceparent(execution.trace_context)
    assert stored is not None and stored[:2] == (f"{trace_id:032x}", f"{root.context.span_id:016x}")
    assert {s.context.trace_id for s in found} == {trace_id}
    assert root.attributes is not None
    assert root.attributes["flowsync.execution_id"] == str(eid)
    for node in worked:
        wait, run = named[f"queue wait {node}"], named[f"step {node}"]
        for span in (wait, run):
            assert span.parent is not None and span.parent.span_id == root.context.span_id
            assert span.attributes is not None
            assert span.attributes["flowsync.step_id"] == str(steps[node].id)
        assert wait.start_time is not None and wait.end_time is not None
        assert wait.start_time <= wait.end_time
    assert set(named) == {
        "execution orders", "HTTP GET",
        *(f"queue wait {n}" for n in worked), *(f"step {n}" for n in worked),
    }  # fmt: skip

    # The call: a client span under its step's run span, whose context the target got.
    call = named["HTTP GET"]
    assert call.parent is not None and call.parent.span_id == named["step call"].context.span_id
    (seen,) = target.requests_to("/echo")
    sent = tracing.parse_traceparent(seen.headers["traceparent"])
    assert sent is not None and sent[:2] == (f"{trace_id:032x}", f"{call.context.span_id:016x}")


async def test_an_untraced_worker_leaves_no_trace(env: Env, target: Target) -> None:
    """Tracing off: no trace context on the run, no traceparent sent."""
    task = await run_worker(env, default_registry(NetworkPolicy(["127.0.0.1/32"])))
    try:
        wid = await env.create(fork_join_calling(target.url + "/echo"))
        execution = await env.wait(await env.start(wid, {}))
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)
    assert execution.status == "COMPLETED", execution.error
    assert execution.trace_context is None
    (seen,) = target.requests_to("/echo")
    assert "traceparent" not in seen.headers


MALFORMED = [
    "not-a-traceparent",
    f"00-{CALLER_TRACE}-{CALLER_SPAN}",  # no flags
    f"00-{'0' * 32}-{CALLER_SPAN}-01",  # an all-zero trace id
    f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01",  # a version never valid
    f"00-{CALLER_TRACE.upper()}-{CALLER_SPAN}-01",  # upper-case hex
    f"00-{CALLER_TRACE}-{CALLER_SPAN}-01-more",  # version 00 with more fields
]


async def test_a_malformed_traceparent_is_ignored(db_url: str, spans: InMemorySpanExporter) -> None:
    """Each start succeeds, and begins a trace of its own."""
    async with serve(db_url) as server:
        me = await server.owner()
        wf = await server.services.workflows.create(me.principal, "wf", None, fan(2))
        trace_ids = []
        for given in MALFORMED:
            reply = await me.http.post(
                "/api/executions", json={"workflowId": str(wf.id)}, headers={"traceparent": given}
            )
            assert reply.status_code == 201, (given, reply.text)
            trace_ids.append(reply.json()["traceId"])
    roots = spans.get_finished_spans()
    assert [f"{r.context.trace_id:032x}" for r in roots] == trace_ids
    assert len(set(trace_ids)) == len(MALFORMED) and CALLER_TRACE not in trace_ids
    assert all(r.parent is None for r in roots)


async def test_a_callers_traceparent_is_continued(db_url: str, spans: InMemorySpanExporter) -> None:
    async with serve(db_url) as server:
        me = await server.owner()
        wf = await server.services.workflows.create(me.principal, "wf", None, fan(2))
        caller = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        one = await me.http.post("/api/executions", json={"workflowId": str(wf.id)}, headers=caller)
        batch = await me.http.post(
            f"/api/workflows/{wf.id}/executions:batch",
            json={"inputs": [{"input": {}}, {"input": {}}]},
            headers=caller,
        )
        assert one.status_code == 201, one.text
        assert batch.status_code in (200, 201), batch.text
        listed = await me.http.get(f"/api/executions/{one.json()['id']}")
    assert one.json()["traceId"] == CALLER_TRACE == listed.json()["traceId"]
    # A batch answers with its runs as written, traces included.
    assert [r["execution"]["traceId"] for r in batch.json()["results"]] == [CALLER_TRACE] * 2
    roots = spans.get_finished_spans()
    assert len(roots) == 3
    for root in roots:
        assert root.name == "execution wf"
        assert root.parent is not None and root.parent.is_remote
        assert f"{root.parent.span_id:016x}" == CALLER_SPAN
        assert f"{root.context.trace_id:032x}" == CALLER_TRACE
    # One span per run: each has its own.
    assert len({r.context.span_id for r in roots}) == 3


async def test_a_child_workflows_run_continues_its_parents_trace(
    traced: Env, spans: InMemorySpanExporter
) -> None:
    child = await traced.create(fan(2), "child")
    parent = await traced.create(
        {
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "call", "type": "workflow", "data": {"workflowId": str(child)}},
                {"id": "end", "type": "end"},
            ],
            "edges": [
                {"source": "start", "target": "call"},
                {"source": "call", "target": "end"},
            ],
        },
        "parent",
    )
    eid = await traced.start(parent, {})
    execution = await traced.wait(eid)
    assert execution.status == "COMPLETED", execution.error
    kid = await traced.services.pool.fetchrow(
        "SELECT id, trace_context FROM executions WHERE parent_execution_id = $1", eid
    )
    assert kid is not None
    kid_steps = await traced.steps(kid["id"])
    # The steps a worker ran as jobs (the start node is written with the run).
    worked = [n for n, s in kid_steps.items() if s.worker_id and s.node_type != "start"]

    def runs_of_child(found: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
        runs: dict[str, list[ReadableSpan]] = {}
        for span in found:
            attributes = span.attributes or {}
            if span.name.startswith("step ") and attributes.get("flowsync.execution_id") == str(
                kid["id"]
            ):
                runs.setdefault(span.name[5:], []).append(span)
        return runs

    for _ in range(500):  # the last run span ends a moment after the run is seen done
        found = list(spans.get_finished_spans())
        if set(runs_of_child(found)) == set(worked):
            break
        await asyncio.sleep(0.02)
    named = {s.name: s for s in found}
    root, started = named["execution parent"], named["execution child"]
    assert {s.context.trace_id for s in found} == {root.context.trace_id}
    assert started.parent is not None and started.parent.span_id == root.context.span_id
    assert tracing.trace_id_of(kid["trace_context"]) == f"{root.context.trace_id:032x}"
    runs = runs_of_child(found)
    assert set(runs) == set(worked)
    for (run,) in runs.values():
        assert run.parent is not None and run.parent.span_id == started.context.span_id


async def test_a_retried_run_has_a_trace_linked_to_the_original(
    traced: Env, spans: InMemorySpanExporter, target: Target
) -> None:
    wid = await traced.create(fork_join_calling(target.url + "/status/400"), "flaky")
    first = await traced.wait(await traced.start(wid, {}))
    assert first.status == "FAILED"
    retried = await traced.services.executions.retry(traced.me, first.id)
    second = await traced.wait(retried.execution.id)
    assert second.trace_context is not None
    assert tracing.trace_id_of(second.trace_context) != tracing.trace_id_of(first.trace_context)
    roots = [s for s in spans.get_finished_spans() if s.name == "execution flaky"]
    assert len(roots) == 2
    (link,) = roots[1].links
    assert f"{link.context.trace_id:032x}" == tracing.trace_id_of(first.trace_context)
    # Its steps are in its own trace (a run span ends before its step's outcome is
    # written, so all have ended once the run has).
    ran = [
        s
        for s in spans.get_finished_spans()
        if s.name.startswith("step ")
        and (s.attributes or {}).get("flowsync.execution_id") == str(second.id)
    ]
    assert ran and {s.context.trace_id for s in ran} == {roots[1].context.trace_id}
