"""The running rule: ready, skipped, done; simulated on the example and on random graphs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsync.engine.definition import NodeType
from flowsync.engine.graph import (
    Advance,
    ExecutionInfo,
    ExecutionStatus,
    StepStatus,
    advance,
    edge_state,
    finished,
    outcome,
    step_context,
    taken_sources,
)
from flowsync.engine.validation import CompiledWorkflow, validate_definition
from tests.unit.test_validation import workflows

FIXTURE = Path(__file__).parent.parent / "fixtures" / "order-sync.json"
S = StepStatus


def example() -> CompiledWorkflow:
    return validate_definition(json.loads(FIXTURE.read_text())["definition"])


def small(
    nodes: list[tuple[str, str]], edges: list[tuple[str, str, str | None]]
) -> CompiledWorkflow:
    """A workflow from (id, type) nodes and (source, target, handle) edges."""
    data = {
        "condition": {"expression": "input.ok"},
        "action": {"method": "GET", "url": "https://x.example"},
        "transform": {"output": 1},
    }
    return validate_definition(
        {
            "nodes": [
                {"id": i, "type": t, **({"data": data[t]} if t in data else {})} for i, t in nodes
            ],
            "edges": [
                {"source": s, "target": t, **({"sourceHandle": h} if h else {})}
                for s, t, h in edges
            ],
        }
    )


def completed(*node_ids: str) -> dict[str, StepStatus]:
    return dict.fromkeys(node_ids, S.COMPLETED)


def test_everything_pending_makes_only_start_ready() -> None:
    wf = example()
    assert advance(wf, {}, {}) == Advance(("start",), ())
    assert advance(wf, dict.fromkeys(wf.nodes, S.PENDING), {}) == Advance(("start",), ())


def test_the_false_branch_skips_the_true_side_in_cascade_and_ends() -> None:
    wf = example()
    step = advance(wf, completed("start", "fetch", "paid"), {"paid": False})
    assert step.ready == ("end",)
    assert step.skipped == ("cool_off", "split", "crm", "mail", "merge", "shape", "reply")


def test_the_true_branch_runs_fork_and_join_waits_for_both() -> None:
    wf = example()
    done = completed("start", "fetch", "paid")
    assert advance(wf, done, {"paid": True}) == Advance(("cool_off",), ())
    done |= completed("cool_off", "split")
    assert advance(wf, done, {"paid": True}).ready == ("crm", "mail")
    running = done | {"crm": S.COMPLETED, "mail": S.RUNNING}
    assert advance(wf, running, {"paid": True}) == Advance((), ())
    done |= completed("crm", "mail")
    assert advance(wf, done, {"paid": True}).ready == ("merge",)
    assert taken_sources(wf, "merge", done, {"paid": True}) == ("crm", "mail")
    # `end` waits: its edge from `paid` is dead, its edge from `reply` is unresolved.
    assert "end" not in advance(wf, done | completed("merge", "shape"), {"paid": True}).ready
    done |= completed("merge", "shape", "reply")
    assert advance(wf, done, {"paid": True}).ready == ("end",)


def test_a_join_runs_with_the_branches_that_were_taken() -> None:
    wf = small(
        [("s", "start"), ("f", "fork"), ("x", "action"), ("c", "condition"), ("y", "action"),
         ("j", "join"), ("e", "end"), ("e2", "end")],
        [("s", "f", None), ("f", "x", None), ("f", "c", None), ("c", "y", "true"),
         ("c", "e2", "false"), ("x", "j", None), ("y", "j", None), ("j", "e", None)],
    )  # fmt: skip
    statuses = completed("s", "f", "x", "c")
    step = advance(wf, statuses, {"c": False})
    assert step == Advance(("j", "e2"), ("y",))
    assert taken_sources(wf, "j", statuses | {"y": S.SKIPPED}, {"c": False}) == ("x",)


@pytest.mark.parametrize("branch", [True, False])
def test_the_node_after_an_if_else_runs_once(branch: bool) -> None:
    wf = small(
        [("s", "start"), ("c", "condition"), ("a", "action"), ("b", "action"),
         ("m", "transform"), ("e", "end")],
        [("s", "c", None), ("c", "a", "true"), ("c", "b", "false"), ("a", "m", None),
         ("b", "m", None), ("m", "e", None)],
    )  # fmt: skip
    chosen, other = ("a", "b") if branch else ("b", "a")
    step = advance(wf, completed("s", "c"), {"c": branch})
    assert step == Advance((chosen,), (other,))
    statuses = completed("s", "c", chosen) | {other: S.SKIPPED}
    assert advance(wf, statuses, {"c": branch}) == Advance(("m",), ())


def test_edge_states() -> None:
    wf = example()
    edges = {(e.source, e.target): e for e in wf.edges}
    assert edge_state(wf, edges["start", "fetch"], {}, {}) == "unresolved"
    assert edge_state(wf, edges["start", "fetch"], completed("start"), {}) == "taken"
    assert edge_state(wf, edges["split", "crm"], {"split": S.SKIPPED}, {}) == "dead"
    assert edge_state(wf, edges["paid", "end"], completed("paid"), {"paid": True}) == "dead"
    assert edge_state(wf, edges["paid", "end"], completed("paid"), {"paid": False}) == "taken"
    for status in (S.QUEUED, S.RUNNING, S.WAITING, S.FAILED, S.CANCELLED):
        assert edge_state(wf, edges["crm", "merge"], {"crm": status}, {}) == "unresolved"
    with pytest.raises(ValueError, match="no branch result"):
        edge_state(wf, edges["paid", "end"], completed("paid"), {})


def test_outcome() -> None:
    wf = example()
    assert outcome(wf, {}) is None
    assert outcome(wf, completed("start") | {"fetch": S.FAILED}) is ExecutionStatus.FAILED
    skipped_side = dict.fromkeys(
        ["cool_off", "split", "crm", "mail", "merge", "shape", "reply"], S.SKIPPED
    )
    finished = completed("start", "fetch", "paid", "end") | skipped_side
    assert outcome(wf, finished) is ExecutionStatus.COMPLETED
    assert outcome(wf, finished | {"end": S.RUNNING}) is None
    assert outcome(wf, finished | {"end": S.CANCELLED}) is None  # the caller decides


def test_step_context_feeds_the_examples_expressions() -> None:
    wf = example()
    context = step_context(
        input={"orderId": 7},
        outputs={"start": {"orderId": 7}, "fetch": {"status": 200, "body": {"state": "paid"}}},
        execution=ExecutionInfo(
            uuid.UUID(int=1), "wf-1", 2, datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
        ),
        trigger={"type": "MANUAL"},
    )
    assert context["steps"] == {
        "start": {"output": {"orderId": 7}, "status": "COMPLETED"},
        "fetch": {"output": {"status": 200, "body": {"state": "paid"}}, "status": "COMPLETED"},
    }
    assert context["execution"] == {
        "id": "00000000-0000-0000-0000-000000000001",
        "workflowId": "wf-1",
        "version": 2,
        "startedAt": "2025-01-02T03:04:00Z",
    }
    condition = wf.nodes["paid"].condition
    assert condition is not None and condition.evaluate_bool(context) is True
    offset = ExecutionInfo("e", "w", 1, datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=2))))
    assert offset.as_json()["startedAt"] == "2025-01-01T00:00:00+02:00"


# --- random runs ---------------------------------------------------------------------------


def expected_statuses(wf: CompiledWorkflow, branches: Mapping[str, bool]) -> dict[str, StepStatus]:
    """The spec's rule written out independently: a node runs iff an incoming edge is taken."""
    ran: dict[str, bool] = {}
    for node_id in wf.topological_order:
        if node_id == wf.start_id:
            ran[node_id] = True
            continue
        ran[node_id] = any(
            ran[edge.source]
            and (
                wf.nodes[edge.source].type is not NodeType.CONDITION
                or edge.handle == str(branches[edge.source]).lower()
            )
            for edge in wf.incoming[node_id]
        )
    return {node_id: S.COMPLETED if r else S.SKIPPED for node_id, r in ran.items()}


def simulate(
    wf: CompiledWorkflow, data: st.DataObject, fail: str | None = None
) -> tuple[dict[str, StepStatus], dict[str, bool]]:
    """Run to the end, finishing queued steps in a random order (as concurrent workers
    would) and choosing conditions at random; check the invariants on the way."""
    statuses = dict.fromkeys(wf.nodes, S.PENDING)
    branches: dict[str, bool] = {}
    queued: list[str] = []
    made_ready: list[str] = []
    while True:
        step = advance(wf, statuses, branches)
        for node_id in step.skipped:
            assert statuses[node_id] is S.PENDING
            statuses[node_id] = S.SKIPPED
        for node_id in step.ready:
            assert statuses[node_id] is S.PENDING
            # A ready node has every incoming edge resolved: a join waits for all branches.
            assert all(statuses[e.source] in (S.COMPLETED, S.SKIPPED) for e in wf.incoming[node_id])
            statuses[node_id] = S.QUEUED
        made_ready += step.ready
        queued += step.ready
        if not queued:
            return statuses, branches
        node_id = queued.pop(data.draw(st.integers(0, len(queued) - 1)))
        if node_id == fail:
            statuses[node_id] = S.FAILED
            assert outcome(wf, statuses) is ExecutionStatus.FAILED
            return statuses, branches
        if wf.nodes[node_id].type is NodeType.CONDITION:
            branches[node_id] = data.draw(st.booleans())
        statuses[node_id] = S.COMPLETED
        assert len(made_ready) == len(set(made_ready)), "a node was made ready twice"
        if queued or outcome(wf, statuses) is None:
            continue
        assert outcome(wf, statuses) is ExecutionStatus.COMPLETED


@settings(max_examples=150, deadline=None)
@given(workflows(), st.data())
def test_random_runs_end_with_every_node_completed_or_skipped(
    definition: dict[str, Any], data: st.DataObject
) -> None:
    wf = validate_definition(definition)
    statuses, branches = simulate(wf, data)
    assert outcome(wf, statuses) is ExecutionStatus.COMPLETED
    assert statuses == expected_statuses(wf, branches)
    assert any(statuses[end] is S.COMPLETED for end in wf.end_ids)
    for node_id, status in statuses.items():
        if node_id != wf.start_id:
            ran = bool(taken_sources(wf, node_id, statuses, branches))
            assert ran == (status is S.COMPLETED)
    assert advance(wf, statuses, branches) == Advance((), ())


@settings(max_examples=60, deadline=None)
@given(workflows(), st.data())
def test_finished_is_outcome_completed(definition: dict[str, Any], data: st.DataObject) -> None:
    """The completion's early-stopping check agrees with `outcome` on any statuses."""
    wf = validate_definition(definition)
    statuses = {
        node: data.draw(st.sampled_from(list(S)))
        for node in wf.nodes
        if data.draw(st.booleans())  # a missing node counts as PENDING
    }
    assert finished(wf, statuses) == (outcome(wf, statuses) is ExecutionStatus.COMPLETED)
    done = dict.fromkeys(wf.nodes, data.draw(st.sampled_from([S.COMPLETED, S.SKIPPED])))
    assert finished(wf, done) and outcome(wf, done) is ExecutionStatus.COMPLETED


@given(workflows(), st.data())
def test_a_failed_step_fails_the_run(definition: dict[str, Any], data: st.DataObject) -> None:
    wf = validate_definition(definition)
    fail = data.draw(st.sampled_from(list(wf.nodes)))
    statuses, _ = simulate(wf, data, fail=fail)
    if statuses[fail] is S.FAILED:
        assert outcome(wf, statuses) is ExecutionStatus.FAILED
    else:  # the failing node was skipped on this run
        assert statuses[fail] is S.SKIPPED
