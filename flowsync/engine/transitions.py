"""What a step's outcome changes, as data: the step rows to update, the jobs to enqueue,
the events to log and the execution's new status. Pure: the orchestrator writes a `Plan`
in one transaction; tests check plans without a database."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flowsync.engine.definition import NodeType
from flowsync.engine.graph import (
    DONE,
    WAITS,
    ExecutionStatus,
    StepStatus,
    WaitOutcome,
    advance,
    approval_outcome,
    finished,
)
from flowsync.engine.validation import CompiledNode, CompiledWorkflow

ACTIVE = frozenset({StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.WAITING})


@dataclass(frozen=True, slots=True)
class StepRow:
    """What the rules need of one stored step."""

    id: uuid.UUID
    status: StepStatus
    # A condition's result; a wait's or approval's outcome (see graph.WaitOutcome).
    branch: bool | str | None = None


@dataclass(frozen=True, slots=True)
class StepChange:
    """A new status for a step, with its output, error or stored input where given;
    `started_at` and `attempt` where the attempt's start is written with it."""

    step_id: uuid.UUID
    node_id: str
    status: StepStatus
    output: Any = None
    error: dict[str, Any] | None = None
    input: Any = None
    started_at: datetime | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue for a step. `take`: hand it to the finishing worker at once."""

    step_id: uuid.UUID
    node_id: str
    max_attempts: int
    run_at: datetime | None = None
    take: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the execution's event log; `at` None: when it is written."""

    kind: str
    status: str
    step_id: uuid.UUID | None = None
    node_id: str | None = None
    attempt: int | None = None
    data: dict[str, Any] | None = None
    at: datetime | None = None


@dataclass
class Plan:
    """Everything one transition writes."""

    steps: list[StepChange] = field(default_factory=list)
    jobs: list[NewJob] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    execution_status: ExecutionStatus | None = None
    execution_output: Any = None
    execution_error: dict[str, Any] | None = None
    drop_jobs: bool = False

    def change(self, row_id: uuid.UUID, node_id: str, status: StepStatus, **kw: Any) -> None:
        """Record a step's new status and its event."""
        self.steps.append(StepChange(row_id, node_id, status, **kw))
        data: dict[str, Any] | None = None
        if status is StepStatus.FAILED or status is StepStatus.CANCELLED:
            data = {"error": kw.get("error")} if kw.get("error") else None
        self.events.append(
            Event(f"step.{status.value.lower()}", status.value, row_id, node_id, data=data)
        )


def max_attempts(node: CompiledNode) -> int:
    """How many attempts a node's step gets: its retry policy's, else one."""
    retry = getattr(node.data, "retry", None)
    return int(getattr(retry, "max_attempts", 1) or 1)


def _enqueue(
    plan: Plan, wf: CompiledWorkflow, steps: Mapping[str, StepRow], ready: list[str], take: bool
) -> None:
    for i, node_id in enumerate(ready):
        row = steps[node_id]
        taken = take and i == 0
        plan.jobs.append(NewJob(row.id, node_id, max_attempts(wf.nodes[node_id]), take=taken))
        if taken:
            # Handed straight to the finishing worker: the step goes from PENDING to
            # RUNNING in this transaction and is never seen QUEUED.
            plan.steps.append(StepChange(row.id, node_id, StepStatus.RUNNING))
            plan.events.append(
                Event("step.started", StepStatus.RUNNING.value, row.id, node_id, attempt=1)
            )
        else:
            plan.steps.append(StepChange(row.id, node_id, StepStatus.QUEUED))
            plan.events.append(Event("step.queued", StepStatus.QUEUED.value, row.id, node_id))


def plan_start(
    wf: CompiledWorkflow, steps: Mapping[str, StepRow], input: Any, at: datetime
) -> Plan:
    """A new execution: log its start, run its start node at once and queue what
    follows it. The start node's output is the execution's input (nothing a worker
    could add), so it starts and completes at `at`, the execution's start, in the
    transaction that creates the execution, and no trip through the queue is spent
    on it."""
    plan = Plan(execution_status=ExecutionStatus.RUNNING)
    plan.events.append(Event("execution.started", ExecutionStatus.RUNNING.value))
    start = steps[wf.start_id]
    ran = with_start(plan_completion(wf, steps, wf.start_id, input), start.id, wf.start_id, 1, at)
    return combine([plan, ran])


def plan_queued(redriven: str | None = None) -> Plan:
    """A new execution waiting behind its workflow's concurrency limit (or its
    concurrency key's). `redriven`: the reason a failed execution was redriven, which
    waits PENDING the same way, its steps as they were, until it resumes."""
    if redriven is None:
        return Plan(events=[Event("execution.queued", ExecutionStatus.PENDING.value)])
    queued = Event("execution.queued", ExecutionStatus.PENDING.value, data={"reason": redriven})
    return Plan(execution_status=ExecutionStatus.PENDING, events=[queued])


def plan_completion(
    wf: CompiledWorkflow,
    steps: Mapping[str, StepRow],
    node_id: str,
    output: Any,
    *,
    take_next: bool = False,
    wait_outcome: WaitOutcome | None = None,
) -> Plan:
    """A step completed: record it, then queue what became ready, skip what became
    unreachable, and complete the execution when every node is done or skipped.
    A wait or approval step records `wait_outcome` (default: "signal") with it, in its
    stored input, which is where its branch is read from."""
    plan = Plan()
    row = steps[node_id]
    statuses = {n: r.status for n, r in steps.items()}
    statuses[node_id] = StepStatus.COMPLETED
    branches = {n: r.branch for n, r in steps.items() if r.branch is not None}
    if wf.nodes[node_id].type in WAITS:
        chosen = wait_outcome or "signal"
        branches[node_id] = chosen
        if chosen == "timeout":
            plan.events.append(
                Event("step.timed_out", StepStatus.RUNNING.value, row.id, node_id,
                      data={"signal": signal_of(wf.nodes[node_id])})
            )  # fmt: skip
        plan.change(row.id, node_id, StepStatus.COMPLETED, output=output,
                    input=wait_record(wf, node_id, chosen))  # fmt: skip
    else:
        plan.change(row.id, node_id, StepStatus.COMPLETED, output=output)
    if wf.nodes[node_id].type == "condition" and isinstance(output, dict):
        branches[node_id] = bool(output.get("result"))
    step = advance(wf, statuses, branches)
    for skipped in step.skipped:
        plan.change(steps[skipped].id, skipped, StepStatus.SKIPPED)
        statuses[skipped] = StepStatus.SKIPPED
    _enqueue(plan, wf, steps, list(step.ready), take=take_next)
    for ready in step.ready:
        statuses[ready] = StepStatus.QUEUED
    if finished(wf, statuses):
        plan.execution_status = ExecutionStatus.COMPLETED
        ends = [n for n in wf.end_ids if statuses.get(n) is StepStatus.COMPLETED]
        plan.execution_output = output if node_id in ends else {}
        plan.events.append(Event("execution.completed", ExecutionStatus.COMPLETED.value))
    return plan


def wait_record(wf: CompiledWorkflow, node_id: str, chosen: WaitOutcome) -> dict[str, Any]:
    """What a finished wait or approval step keeps as its input: the signal it waited
    for and its outcome (the branch it took)."""
    return {"signal": signal_of(wf.nodes[node_id]), "outcome": chosen}


def signal_of(node: CompiledNode) -> str:
    """The signal a wait or approval node waits for."""
    return str(getattr(node.data, "signal", None) or "approval")


def plan_failure(steps: Mapping[str, StepRow], node_id: str, error: dict[str, Any]) -> Plan:
    """A step failed for good: the execution fails and every other active step is
    cancelled (its job dropped, a running one told to stop)."""
    plan = Plan(drop_jobs=True, execution_status=ExecutionStatus.FAILED)
    plan.change(steps[node_id].id, node_id, StepStatus.FAILED, error=error)
    _cancel_active(plan, steps, exclude=node_id)
    plan.execution_error = {"nodeId": node_id, **error}
    plan.events.append(
        Event(
            "execution.failed", ExecutionStatus.FAILED.value, data={"error": plan.execution_error}
        )
    )
    return plan


def plan_cancel(steps: Mapping[str, StepRow], reason: str) -> Plan:
    """Cancel on request: drop queued work, stop running steps, end CANCELLED."""
    plan = Plan(drop_jobs=True, execution_status=ExecutionStatus.CANCELLED)
    _cancel_active(plan, steps, exclude=None)
    plan.execution_error = {"message": reason, "code": "cancelled"}
    plan.events.append(
        Event("execution.cancelled", ExecutionStatus.CANCELLED.value, data={"reason": reason})
    )
    return plan


def _cancel_active(plan: Plan, steps: Mapping[str, StepRow], exclude: str | None) -> None:
    for node_id, row in steps.items():
        if node_id != exclude and row.status in ACTIVE:
            plan.change(row.id, node_id, StepStatus.CANCELLED)


def plan_wait(steps: Mapping[str, StepRow], node_id: str, until: datetime, stored: Any) -> Plan:
    """A durable timer: the step waits until `until` with no worker holding it."""
    plan = Plan()
    row = steps[node_id]
    plan.steps.append(StepChange(row.id, node_id, StepStatus.WAITING, input=stored))
    plan.events.append(
        Event("step.waiting", StepStatus.WAITING.value, row.id, node_id,
              data={"until": until.isoformat()})
    )  # fmt: skip
    return plan


def plan_child_wait(steps: Mapping[str, StepRow], node_id: str, child_id: uuid.UUID) -> Plan:
    """A `workflow` step started its child run and waits for it, holding no worker; the
    child's id is kept as the step's input."""
    plan = Plan()
    row = steps[node_id]
    stored = {"childExecutionId": str(child_id)}
    plan.steps.append(StepChange(row.id, node_id, StepStatus.WAITING, input=stored))
    plan.events.append(Event("step.waiting", StepStatus.WAITING.value, row.id, node_id,
                             data=dict(stored)))  # fmt: skip
    return plan


def plan_signal_wait(steps: Mapping[str, StepRow], node_id: str, stored: dict[str, Any]) -> Plan:
    """A wait or approval step starts waiting for `stored["signal"]` (none was kept for
    it): it holds no worker; its job stays parked until `stored["timeoutAt"]` (None: no
    timeout). `stored` is kept as the step's input meanwhile."""
    plan = Plan()
    row = steps[node_id]
    plan.steps.append(StepChange(row.id, node_id, StepStatus.WAITING, input=stored))
    plan.events.append(
        Event("step.waiting", StepStatus.WAITING.value, row.id, node_id,
              data={"signal": stored.get("signal"), "timeoutAt": stored.get("timeoutAt")})
    )  # fmt: skip
    return plan


def signal_output(payload: Any) -> Any:
    """A signal's payload as the step's output: `{}` for none."""
    return {} if payload is None else payload


def plan_signalled(
    wf: CompiledWorkflow, steps: Mapping[str, StepRow], node_id: str, payload: Any
) -> Plan:
    """A signal completes the wait or approval step `node_id` with its payload as the
    output; an approval takes the edge of its decision, a wait its default edge."""
    node = wf.nodes[node_id]
    chosen: WaitOutcome = "signal"
    if node.type is NodeType.APPROVAL:
        chosen = approval_outcome(payload)
    return plan_completion(wf, steps, node_id, signal_output(payload), wait_outcome=chosen)


def plan_retry(
    steps: Mapping[str, StepRow], node_id: str, error: dict[str, Any], at: datetime, attempt: int
) -> Plan:
    """A failed attempt that will be tried again at `at`."""
    plan = Plan()
    row = steps[node_id]
    plan.steps.append(StepChange(row.id, node_id, StepStatus.QUEUED, error=error))
    plan.events.append(
        Event("step.retrying", StepStatus.QUEUED.value, row.id, node_id, attempt=attempt,
              data={"error": error, "nextAttemptAt": at.isoformat()})
    )  # fmt: skip
    return plan


def _advance_into(
    plan: Plan,
    wf: CompiledWorkflow,
    steps: Mapping[str, StepRow],
    statuses: dict[str, StepStatus],
    branches: Mapping[str, bool | str],
) -> None:
    step = advance(wf, statuses, branches)
    for skipped in step.skipped:
        plan.change(steps[skipped].id, skipped, StepStatus.SKIPPED)
    _enqueue(plan, wf, steps, list(step.ready), take=False)


def plan_resume(wf: CompiledWorkflow, steps: Mapping[str, StepRow], reason: str) -> Plan:
    """A failed execution resumes (a dead letter was redriven): the failed step and the
    steps its failure cancelled go back to PENDING, then whatever is ready is queued
    again. Completed steps keep their outputs."""
    plan = Plan(execution_status=ExecutionStatus.RUNNING)
    plan.events.append(
        Event("execution.resumed", ExecutionStatus.RUNNING.value, data={"reason": reason})
    )
    statuses = {n: r.status for n, r in steps.items()}
    reset = [n for n, s in statuses.items() if s in (StepStatus.FAILED, StepStatus.CANCELLED)]
    branches = {n: r.branch for n, r in steps.items() if r.branch is not None}
    ready = advance(wf, {**statuses, **{n: StepStatus.PENDING for n in reset}}, branches)
    queued = set(ready.ready)
    for node_id in reset:
        statuses[node_id] = StepStatus.PENDING
        if node_id not in queued and node_id not in ready.skipped:
            plan.steps.append(StepChange(steps[node_id].id, node_id, StepStatus.PENDING))
    _advance_into(plan, wf, steps, statuses, branches)
    return plan


def plan_rerun(
    wf: CompiledWorkflow,
    steps: Mapping[str, StepRow],
    reused: Mapping[str, Any],
    skipped: set[str],
    branches: Mapping[str, bool | str],
) -> Plan:
    """A new execution that retries a failed one: the steps that completed before are
    recorded as completed with their outputs (reused, not run), the ones skipped as
    skipped, and the rest runs from where the old execution stopped."""
    plan = Plan(execution_status=ExecutionStatus.RUNNING)
    plan.events.append(Event("execution.started", ExecutionStatus.RUNNING.value))
    statuses = {n: StepStatus.PENDING for n in steps}
    for node_id in (n for n in wf.topological_order if n in reused):
        row, output = steps[node_id], reused[node_id]
        kept = branches.get(node_id)
        stored = None
        if wf.nodes[node_id].type in WAITS and isinstance(kept, str):
            stored = {"signal": signal_of(wf.nodes[node_id]), "outcome": kept}
        plan.steps.append(
            StepChange(row.id, node_id, StepStatus.COMPLETED, output=output, input=stored)
        )
        plan.events.append(Event("step.reused", StepStatus.COMPLETED.value, row.id, node_id))
        statuses[node_id] = StepStatus.COMPLETED
    for node_id in skipped:
        plan.change(steps[node_id].id, node_id, StepStatus.SKIPPED)
        statuses[node_id] = StepStatus.SKIPPED
    _advance_into(plan, wf, steps, statuses, branches)
    return plan


def with_start(plan: Plan, step_id: uuid.UUID, node_id: str, attempt: int, at: datetime) -> Plan:
    """`plan`, the outcome of a step's attempt, preceded by that attempt's start when it
    was not written before (a claim writes only its job): the step.started event, at
    the time of the claim, and the attempt and start on the step's change."""
    started = Event("step.started", StepStatus.RUNNING.value, step_id, node_id, attempt, at=at)
    steps = [
        replace(c, started_at=at, attempt=attempt) if c.step_id == step_id else c
        for c in plan.steps
    ]
    return replace(plan, steps=steps, events=[started, *plan.events])


def combine(plans: Sequence[Plan]) -> Plan:
    """Plans made one after another (each from the steps as the ones before it left
    them), as one plan to write at once: their step changes, new jobs and events in
    order, and the last change of the execution's status. A step changed by two of them
    keeps the later status, and the output and input it was given last. Plans that drop
    jobs are written alone: the drop would come before everything else."""
    if len(plans) == 1:
        return plans[0]
    out = Plan()
    at: dict[uuid.UUID, int] = {}
    for plan in plans:
        if plan.drop_jobs:
            raise ValueError("a plan that drops jobs is written alone")
        for change in plan.steps:
            i = at.get(change.step_id)
            if i is None:
                at[change.step_id] = len(out.steps)
                out.steps.append(change)
                continue
            before = out.steps[i]
            out.steps[i] = replace(
                change,
                output=before.output if change.output is None else change.output,
                input=before.input if change.input is None else change.input,
                started_at=change.started_at or before.started_at,
                attempt=before.attempt if change.attempt is None else change.attempt,
            )
        out.jobs += plan.jobs
        out.events += plan.events
        if plan.execution_status is not None:
            out.execution_status = plan.execution_status
            out.execution_output = plan.execution_output
            out.execution_error = plan.execution_error
    return out


def branch_of(output: Any) -> bool | None:
    """A condition step's branch as the rules read it: its output's boolean `result`."""
    result = output.get("result") if isinstance(output, dict) else None
    return result if isinstance(result, bool) else None


def apply_plan(steps: Mapping[str, StepRow], plan: Plan) -> dict[str, StepRow]:
    """The steps as they are once `plan` is written over `steps` (the rows it was
    planned from): what the writer knows of the run without reading it again."""
    after = dict(steps)
    for change in plan.steps:
        old = after[change.node_id]
        branch = old.branch if change.output is None else branch_of(change.output)
        if isinstance(change.input, dict) and isinstance(change.input.get("outcome"), str):
            branch = change.input["outcome"]  # a wait's (see wait_record)
        after[change.node_id] = StepRow(change.step_id, change.status, branch)
    return after


_ACTIVE = frozenset({StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.WAITING})


def runs_alone(steps: Mapping[str, StepRow], node_id: str) -> bool:
    """Whether `node_id` is the run's only step that is queued, running or waiting:
    then no other worker has a reason to write to the run until it finishes (only a
    cancel, a lease lost or an operator could), and its worker may finish it from what
    it knows, guarded by the run's sequence number."""
    return (
        all(row.status not in _ACTIVE or node == node_id for node, row in steps.items())
        and steps[node_id].status is StepStatus.RUNNING
    )


def still_waiting_on(
    wf: CompiledWorkflow, steps: Mapping[str, StepRow], plan: Plan
) -> list[uuid.UUID] | None:
    """For a plan that only completes steps (branches of a fork, say) whose nodes all lead
    to one and the same node, which they leave waiting: the steps of that node's other
    sources that were not done when planned. Such a plan holds, whatever else was written
    to the run meanwhile, as long as one of them is still not done: its node still waits
    (advance reads an edge from a step not COMPLETED or SKIPPED as unresolved), nothing
    else in the run depends on the steps completed, and the run is still running while
    the completed steps' jobs are leased. So it may be written without the run's sequence
    as planned (finish_branches checks one of these steps under the run's lock instead), and two
    workers finishing branches of one run need not plan again after each other's writes.
    None for any other plan (a condition's or a wait's completion chooses a branch, a step
    queued or skipped, an end, a node with no other source left open)."""
    if plan.jobs or plan.drop_jobs or plan.execution_status is not None:
        return None
    done: set[str] = set()
    for change in plan.steps:
        if change.status is not StepStatus.COMPLETED:
            return None
        node = wf.nodes[change.node_id]
        if node.type is NodeType.CONDITION or node.type in WAITS:
            return None
        done.add(change.node_id)
    targets = {edge.target for node_id in done for edge in wf.outgoing[node_id]}
    if len(targets) != 1:
        return None
    (target,) = targets
    open_ids = [
        steps[edge.source].id
        for edge in reversed(wf.incoming[target])
        if edge.source not in done and steps[edge.source].status not in DONE
    ]
    return open_ids or None
