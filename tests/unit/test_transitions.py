"""Plans of several completions written as one (a batch of fork branches finishing at
once): the combined plan must leave the run exactly as writing them one by one would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from flowsync.engine.graph import ExecutionStatus, StepStatus
from flowsync.engine.transitions import (
    Plan,
    StepChange,
    StepRow,
    apply_plan,
    combine,
    plan_cancel,
    plan_completion,
    plan_start,
    plan_wait,
    still_waiting_on,
)
from flowsync.engine.validation import validate_definition
from tests.support.graphs import fan

S = StepStatus


def running_fan(width: int) -> tuple[object, dict[str, StepRow]]:
    wf = validate_definition(fan(width))
    steps = {n: StepRow(uuid.uuid4(), S.COMPLETED) for n in ("start", "split")}
    steps |= {f"b{i}": StepRow(uuid.uuid4(), S.RUNNING) for i in range(width)}
    steps |= {n: StepRow(uuid.uuid4(), S.PENDING) for n in ("merge", "end")}
    return wf, steps


def sequential(wf: object, steps: dict[str, StepRow], nodes: list[str]) -> list[Plan]:
    plans = []
    for node in nodes:
        plan = plan_completion(wf, steps, node, {"node": node}, take_next=True)  # type: ignore[arg-type]
        plans.append(plan)
        steps = apply_plan(steps, plan)
    return plans


def test_branches_combined_leave_the_run_as_written_one_by_one() -> None:
    wf, steps = running_fan(4)
    plans = sequential(wf, steps, ["b2", "b0", "b3", "b1"])
    one_by_one = steps
    for plan in plans:
        one_by_one = apply_plan(one_by_one, plan)
    combined = combine(plans)
    assert apply_plan(steps, combined) == one_by_one
    # The last branch made the join ready: handed to this worker, and logged in order.
    assert [j.node_id for j in combined.jobs if j.take] == ["merge"]
    assert [(e.kind, e.node_id) for e in combined.events] == [
        ("step.completed", "b2"),
        ("step.completed", "b0"),
        ("step.completed", "b3"),
        ("step.completed", "b1"),
        ("step.started", "merge"),
    ]
    assert one_by_one["merge"].status is S.RUNNING


def test_the_run_ends_with_the_last_plan_that_ends_it() -> None:
    wf = validate_definition(fan(2))
    steps = {n: StepRow(uuid.uuid4(), S.COMPLETED) for n in ("start", "split", "b0", "b1")}
    steps |= {"merge": StepRow(uuid.uuid4(), S.COMPLETED), "end": StepRow(uuid.uuid4(), S.RUNNING)}
    ended = plan_completion(wf, steps, "end", {"count": 2})
    combined = combine([Plan(), ended])
    assert combined.execution_status is ExecutionStatus.COMPLETED
    assert combined.execution_output == {"count": 2}


def test_a_step_changed_twice_keeps_the_later_status_and_the_values_given_last() -> None:
    step = uuid.uuid4()
    first = Plan(steps=[StepChange(step, "n", S.WAITING, input={"stored": 1})])
    second = Plan(steps=[StepChange(step, "n", S.COMPLETED, output={"done": True})])
    (change,) = combine([first, second]).steps
    assert change.status is S.COMPLETED
    assert change.output == {"done": True}
    assert change.input == {"stored": 1}


def test_a_plan_that_drops_jobs_is_not_combined() -> None:
    _, steps = running_fan(2)
    wait = plan_wait(steps, "b0", datetime.now(UTC), None)
    with pytest.raises(ValueError, match="drops jobs"):
        combine([wait, plan_cancel(steps, "stop")])
    # Alone, any plan is written as it is.
    cancel = plan_cancel(steps, "stop")
    assert combine([cancel]) is cancel


def test_a_new_run_starts_its_start_node_at_once_and_queues_what_follows() -> None:
    """The start node's output is the run's input: it is started and completed at the
    run's start, in the transaction that creates the run, and the nodes after it are
    queued (no worker's trip through the queue is spent on it)."""
    wf = validate_definition(fan(2))
    steps = {n: StepRow(uuid.uuid4(), S.PENDING) for n in wf.nodes}  # type: ignore[attr-defined]
    at = datetime(2026, 11, 29, tzinfo=UTC)
    plan = plan_start(wf, steps, {"n": 1}, at)  # type: ignore[arg-type]
    assert plan.execution_status is ExecutionStatus.RUNNING
    assert [(e.kind, e.node_id, e.attempt, e.at) for e in plan.events] == [
        ("execution.started", None, None, None),
        ("step.started", "start", 1, at),
        ("step.completed", "start", None, None),
        ("step.queued", "split", None, None),
    ]
    [start] = [c for c in plan.steps if c.node_id == "start"]
    assert (start.status, start.output, start.started_at, start.attempt) == (
        S.COMPLETED, {"n": 1}, at, 1,
    )  # fmt: skip
    assert [(j.node_id, j.take) for j in plan.jobs] == [("split", False)]
    after = apply_plan(steps, plan)
    assert after["split"].status is S.QUEUED and after["b0"].status is S.PENDING


def test_branches_that_leave_their_join_waiting_hold_while_one_other_source_is_open() -> None:
    """A batch of branches that does not fire the join: the join's other sources not done
    when planned, latest first (one of them still open makes the plan hold whatever else
    was written meanwhile)."""
    wf, steps = running_fan(4)
    steps["b1"] = StepRow(steps["b1"].id, S.COMPLETED)
    plans = sequential(wf, steps, ["b0", "b2"])
    after = apply_plan(apply_plan(steps, plans[0]), plans[1])
    assert still_waiting_on(wf, after, combine(plans)) == [steps["b3"].id]  # type: ignore[arg-type]
    one = plan_completion(wf, steps, "b0", {})  # type: ignore[arg-type]
    assert still_waiting_on(wf, apply_plan(steps, one), one) == [  # type: ignore[arg-type]
        steps["b3"].id,
        steps["b2"].id,
    ]


def test_a_plan_that_fires_the_join_or_chooses_a_branch_needs_the_run_as_it_is() -> None:
    """The last branch (its join queued), an end, a condition: none holds over writes it
    did not see."""
    wf, steps = running_fan(2)
    steps["b0"] = StepRow(steps["b0"].id, S.COMPLETED)
    last = plan_completion(wf, steps, "b1", {})  # type: ignore[arg-type]
    assert last.jobs and still_waiting_on(wf, apply_plan(steps, last), last) is None  # type: ignore[arg-type]
    cond = validate_definition(
        {
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "split", "type": "fork"},
                {"id": "check", "type": "condition", "data": {"expression": "true"}},
                {"id": "other", "type": "transform", "data": {"output": 1}},
                {"id": "merge", "type": "join"},
                {"id": "end", "type": "end"},
            ],
            "edges": [
                {"source": "start", "target": "split"},
                {"source": "split", "target": "check"},
                {"source": "split", "target": "other"},
                {"source": "check", "target": "merge", "sourceHandle": "true"},
                {"source": "check", "target": "end", "sourceHandle": "false"},
                {"source": "other", "target": "merge"},
                {"source": "merge", "target": "end"},
            ],
        }
    )
    rows = {n: StepRow(uuid.uuid4(), S.RUNNING) for n in ("check", "other")}
    rows |= {n: StepRow(uuid.uuid4(), S.COMPLETED) for n in ("start", "split")}
    rows |= {n: StepRow(uuid.uuid4(), S.PENDING) for n in ("merge", "end")}
    chosen = plan_completion(cond, rows, "check", {"result": True})
    assert still_waiting_on(cond, apply_plan(rows, chosen), chosen) is None
    # A plain node, but into a join whose other source (the condition) is open: it holds.
    other = plan_completion(cond, rows, "other", 1)
    assert still_waiting_on(cond, apply_plan(rows, other), other) == [rows["check"].id]
