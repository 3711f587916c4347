"""The wait and approval nodes as data: their validation (each error names the node and
its JSON path) and the pure rules that pick the branch a wait's outcome takes."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsync.engine.graph import StepStatus, approval_outcome, edge_state, wait_edge
from flowsync.engine.structure import CompiledEdge
from flowsync.engine.transitions import StepRow, apply_plan, plan_completion, plan_rerun
from flowsync.engine.validation import validate_definition
from flowsync.errors import DefinitionInvalid, Problem
from tests.support.graphs import approving, waiting


def problems_of(definition: object) -> list[Problem]:
    with pytest.raises(DefinitionInvalid) as info:
        validate_definition(definition)
    return info.value.details


def rows(definition: dict[str, Any], **statuses: StepStatus) -> dict[str, StepRow]:
    return {
        n["id"]: StepRow(uuid.uuid4(), statuses.get(n["id"], StepStatus.PENDING))
        for n in definition["nodes"]
    }


def test_waits_and_approvals_validate() -> None:
    wf = validate_definition(waiting("paid", timeout=60, timeout_branch=True))
    assert wf.nodes["wait"].type == "wait"
    validate_definition(waiting())
    validate_definition(approving())
    validate_definition(approving(timeout=5))


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d["nodes"][1]["data"].pop("signal"), "$.nodes[1].data.signal", "required"),
        (lambda d: d["nodes"][1]["data"].update(signal="has space"), "$.nodes[1].data.signal",
         "signal name"),
        (lambda d: d["nodes"][1]["data"].update(signal="approval"), "$.nodes[1].data.signal",
         "approval node"),
        (lambda d: d["nodes"][1]["data"].update(timeoutSeconds=0),
         "$.nodes[1].data.timeoutSeconds", "greater than 0"),
        (lambda d: d["nodes"][1]["data"].update(timeoutSeconds=10**9),
         "$.nodes[1].data.timeoutSeconds", "less than or equal"),
        (lambda d: d["nodes"][1]["data"].update(timeoutSecond=5),
         "$.nodes[1].data.timeoutSecond", ""),
        (lambda d: d["edges"][1].update(sourceHandle="late"), "$.edges[1].sourceHandle",
         'needs sourceHandle none or "timeout"'),
        (lambda d: d["edges"][1].update(sourceHandle="timeout"), "$.nodes[1]",
         "missing one without a sourceHandle"),
    ],
)  # fmt: skip
def test_a_bad_wait_is_refused_naming_the_node_and_path(change: Any, path: str, words: str) -> None:
    definition = copy.deepcopy(waiting("go", timeout=5))
    change(definition)
    found = problems_of(definition)
    assert any(p.path == path and words in p.message for p in found), found
    assert all(p.node_id == "wait" for p in found if p.path.startswith(path)), found


def test_two_timeout_edges_and_a_wait_into_a_join_are_refused() -> None:
    definition = waiting("go", timeout=5, timeout_branch=True)
    definition["edges"].append({"source": "wait", "target": "end", "sourceHandle": "timeout"})
    found = problems_of(definition)
    assert any('two "timeout" edges' in p.message and p.node_id == "wait" for p in found)
    joined: dict[str, Any] = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "split", "type": "fork"},
            {"id": "w", "type": "wait", "data": {"signal": "go"}},
            {"id": "t", "type": "transform", "data": {"output": 1}},
            {"id": "merge", "type": "join"},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "split"},
            {"source": "split", "target": "w"},
            {"source": "split", "target": "t"},
            {"source": "w", "target": "merge"},
            {"source": "t", "target": "merge"},
            {"source": "merge", "target": "end"},
        ],
    }
    found = problems_of(joined)
    assert [(p.path, p.node_id) for p in found] == [("$.edges[3].target", "w")]


def test_an_approval_needs_both_decisions_and_only_its_handles() -> None:
    definition = approving()
    definition["edges"] = [e for e in definition["edges"] if e.get("sourceHandle") != "rejected"]
    found = problems_of(definition)
    assert any('missing one "rejected"' in p.message and p.node_id == "review" for p in found)
    definition = approving()
    definition["edges"][1]["sourceHandle"] = None
    found = problems_of(definition)
    assert any(p.path == "$.edges[1].sourceHandle" for p in found), found


def test_the_branch_a_wait_takes() -> None:
    assert wait_edge("signal") is None
    assert wait_edge(None) is None
    assert [wait_edge(o) for o in ("approved", "rejected", "timeout")] == [
        "approved", "rejected", "timeout"
    ]  # fmt: skip
    assert approval_outcome({"approved": True, "by": "ann"}) == "approved"
    assert approval_outcome({"approved": False}) == "rejected"
    assert approval_outcome({"approved": "yes"}) == "rejected"


def test_a_signal_takes_the_default_edge_and_a_timeout_the_timeout_edge() -> None:
    definition = waiting("go", timeout=5, timeout_branch=True)
    wf = validate_definition(definition)
    steps = rows(definition, start=StepStatus.COMPLETED, wait=StepStatus.WAITING)
    plan = plan_completion(wf, steps, "wait", {"x": 1})
    assert {j.node_id for j in plan.jobs} == {"got"}
    assert [c.node_id for c in plan.steps if c.status is StepStatus.SKIPPED] == ["late"]
    assert plan.steps[0].input == {"signal": "go", "outcome": "signal"}
    plan = plan_completion(wf, steps, "wait", {}, wait_outcome="timeout")
    assert {j.node_id for j in plan.jobs} == {"late"}
    after = apply_plan(steps, plan)
    assert after["wait"].branch == "timeout"
    # The outcome read back from the stored row decides later advances the same way.
    late = plan_completion(wf, after, "late", {"way": "timeout"})
    assert {j.node_id for j in late.jobs} == {"end"}


def test_an_approval_takes_its_decisions_edge() -> None:
    definition = approving(timeout=5)
    wf = validate_definition(definition)
    steps = rows(definition, start=StepStatus.COMPLETED, review=StepStatus.WAITING)
    for outcome, ready in (("approved", "approved"), ("rejected", "rejected"),
                           ("timeout", "timeout")):  # fmt: skip
        plan = plan_completion(wf, steps, "review", {"approved": True}, wait_outcome=outcome)  # type: ignore[arg-type]
        assert [j.node_id for j in plan.jobs] == [ready]
        skipped = {c.node_id for c in plan.steps if c.status is StepStatus.SKIPPED}
        assert skipped == {"approved", "rejected", "timeout"} - {ready}


def test_a_retried_run_keeps_a_reused_waits_outcome() -> None:
    definition = waiting("go", timeout=5, timeout_branch=True)
    wf = validate_definition(definition)
    steps = rows(definition)
    plan = plan_rerun(wf, steps, {"start": {}, "wait": {}}, set(), {"wait": "timeout"})
    stored = {c.node_id: c.input for c in plan.steps}
    assert stored["wait"] == {"signal": "go", "outcome": "timeout"}
    assert [j.node_id for j in plan.jobs] == ["late"]


@given(
    outcome=st.sampled_from(["approved", "rejected", "timeout"]),
    edge_handles=st.lists(st.sampled_from(["approved", "rejected", "timeout"]), min_size=1),
)
def test_an_approval_s_outcome_takes_exactly_its_edges(
    outcome: str, edge_handles: list[str]
) -> None:
    wf = validate_definition(approving(timeout=5))
    statuses = {"review": StepStatus.COMPLETED}
    for handle in edge_handles:
        edge = CompiledEdge(0, "review", "x", handle)
        state = edge_state(wf, edge, statuses, {"review": outcome})
        assert state == ("taken" if handle == outcome else "dead")


@given(outcome=st.sampled_from(["signal", "timeout"]), handle=st.sampled_from([None, "timeout"]))
def test_a_wait_s_outcome_takes_exactly_its_edges(outcome: str, handle: str | None) -> None:
    wf = validate_definition(waiting("go", timeout=5, timeout_branch=True))
    edge = CompiledEdge(0, "wait", "x", handle)
    state = edge_state(wf, edge, {"wait": StepStatus.COMPLETED}, {"wait": outcome})
    taken = (handle is None) == (outcome == "signal")
    assert state == ("taken" if taken else "dead")
