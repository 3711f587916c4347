"""Step handlers: what each node type does, looked up by type in a registry.

A handler takes a `StepContext` and returns an `Outcome`: `Completed(output)`,
`Waiting(until)` (a durable timer: the job waits in the table, no worker holds it),
`ChildRun` (a `workflow` step: start its child execution, or look at it) or
`Failed(error, retryable)`. Handlers never write to the database; the worker records the
outcome through the orchestrator, so every handler gets the same lease, retry and event
rules. Plugins (and tests) add or replace handlers with `FLOWSYNC_EXTRA_HANDLERS`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from flowsync.engine.definition import DelayData, WorkflowData, parse_instant
from flowsync.engine.graph import ExecutionInfo, StepStatus, step_context, taken_sources
from flowsync.engine.transitions import signal_of
from flowsync.engine.validation import CompiledNode, CompiledWorkflow
from flowsync.errors import ExpressionFailed
from flowsync.worker.evaluation import Evaluator, default_evaluator
from flowsync.worker.queue import ClaimedJob


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a handler may read: its job, node, workflow, the expression variables
    (`input`, `steps`, `execution`, `trigger`) and the current time."""

    job: ClaimedJob
    node: CompiledNode
    workflow: CompiledWorkflow
    variables: Mapping[str, Any]
    now: datetime


@dataclass(frozen=True, slots=True)
class Completed:
    """The step succeeded with `output`."""

    output: Any


@dataclass(frozen=True, slots=True)
class Waiting:
    """Run the step again at `until`; `stored` is kept as the step's input meanwhile."""

    until: datetime
    stored: Any = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The step failed. A retryable failure runs again at `retry_at` while attempts last."""

    error: dict[str, Any]
    retryable: bool = False
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A `workflow` step: start a child execution of `workflow_id` (at `version`, else
    its newest) with `input`, or, once started (`child_id`), complete or fail with how
    that child ended. The orchestrator does either in a transaction of its own
    (Orchestrator.run_child); the step holds no worker while the child runs."""

    workflow_id: uuid.UUID
    version: int | None
    input: Any = None
    child_id: uuid.UUID | None = None


Outcome = Completed | Waiting | Failed | ChildRun


class Handler(Protocol):
    """One node type's behaviour."""

    def needs_steps(self, node: CompiledNode) -> bool:
        """Whether `run` reads other steps' outputs (they are loaded only then)."""
        ...

    async def run(self, ctx: StepContext) -> Outcome:
        """Do the step's work."""
        ...


def build_variables(job: ClaimedJob, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The expression context for a job, from the outputs of completed steps."""
    trigger = {"type": job.trigger_type, **(job.trigger_data or {})}
    return step_context(
        input=job.execution_input,
        outputs=outputs,
        execution=ExecutionInfo(
            job.execution_id, job.workflow_id, job.version, job.execution_started_at
        ),
        trigger=trigger,
    )


def _reads_steps(node: CompiledNode) -> bool:
    expressions = [*(node.output.expressions if node.output else ()),
                   *(node.until.expressions if node.until else ()),
                   *(node.input.expressions if node.input else ()),
                   *([node.condition] if node.condition else [])]  # fmt: skip
    return any("steps" in expr.variables for expr in expressions)


class _Base:
    """A built-in handler: its expressions and output go through `evaluator` (time and
    size limits; see worker/evaluation.py)."""

    def __init__(self, evaluator: Evaluator | None = None) -> None:
        self.evaluator = evaluator or default_evaluator()

    def needs_steps(self, node: CompiledNode) -> bool:
        return _reads_steps(node)

    async def close(self) -> None:
        """Stop the evaluator's processes."""
        await self.evaluator.close()

    def completed(self, ctx: StepContext, output: Any) -> Completed:
        """The step's success with `output`, unless that is over the size limit."""
        return Completed(self.evaluator.output(output, ctx.node.id))


class StartHandler(_Base):
    """`start`: its output is the execution's input. A new execution completes its start
    step itself (`plan_start`); this runs a start step that was queued instead (by an
    older FlowSync, or by a retry of a run whose start never ran)."""

    async def run(self, ctx: StepContext) -> Outcome:
        return self.completed(ctx, ctx.job.execution_input)


class PassHandler(_Base):
    """`fork`: no work; its output is `{}`."""

    async def run(self, ctx: StepContext) -> Outcome:
        return Completed({})


class TemplateHandler(_Base):
    """`transform` and `end`: the output template's value (`end` without one: `{}`)."""

    async def run(self, ctx: StepContext) -> Outcome:
        if ctx.node.output is None:
            return Completed({})
        output = await self.evaluator.render(ctx.node.output, ctx.variables, ctx.node.id)
        return self.completed(ctx, output)


class ConditionHandler(_Base):
    """`condition`: `{"result": true|false}`; a non-boolean value fails the step."""

    async def run(self, ctx: StepContext) -> Outcome:
        assert ctx.node.condition is not None
        result = await self.evaluator.condition(ctx.node.condition, ctx.variables, ctx.node.id)
        return Completed({"result": result})


class JoinHandler(_Base):
    """`join`: each taken incoming node's output, keyed by its id."""

    def needs_steps(self, node: CompiledNode) -> bool:
        return True

    async def run(self, ctx: StepContext) -> Outcome:
        steps: Mapping[str, Any] = ctx.variables["steps"]
        statuses = {n: StepStatus.COMPLETED for n in steps}
        branches = {
            n: bool(s["output"].get("result"))
            for n, s in steps.items()
            if ctx.workflow.nodes[n].type == "condition" and isinstance(s["output"], dict)
        }
        sources = taken_sources(ctx.workflow, ctx.node.id, statuses, branches)
        return self.completed(ctx, {source: steps[source]["output"] for source in sources})


class DelayHandler(_Base):
    """`delay`: a durable timer. The first run stores the due time and parks the job;
    the run at that time completes with `{"resumedAt"}`."""

    async def run(self, ctx: StepContext) -> Outcome:
        stored = ctx.job.step_input
        if isinstance(stored, dict) and isinstance(stored.get("until"), str):
            until = parse_instant(stored["until"])
        else:
            until = await self._due(ctx)
        if ctx.now >= until:
            return Completed({"resumedAt": ctx.now.isoformat().replace("+00:00", "Z")})
        return Waiting(until, {"until": until.isoformat()})

    async def _due(self, ctx: StepContext) -> datetime:
        data = ctx.node.data
        assert isinstance(data, DelayData)
        if data.seconds is not None:
            return ctx.now + timedelta(seconds=data.seconds)
        value: Any = data.until
        if ctx.node.until is not None:
            value = await self.evaluator.render(ctx.node.until, ctx.variables, ctx.node.id)
        if not isinstance(value, str):
            raise ExpressionFailed(f"delay until gave {value!r}, not an ISO-8601 time")
        try:
            return parse_instant(value)
        except ValueError as exc:
            raise ExpressionFailed(f"delay until: {exc}") from exc


class WorkflowHandler(_Base):
    """`workflow`: a child workflow. The first run renders the input and asks for the
    child to be started; once it was (its id is kept as the step's input), a run looks
    at the child, which its end wakes (see Orchestrator.run_child)."""

    async def run(self, ctx: StepContext) -> Outcome:
        data = ctx.node.data
        assert isinstance(data, WorkflowData)
        target = uuid.UUID(data.workflow_id)
        stored = ctx.job.step_input
        if isinstance(stored, dict) and isinstance(stored.get("childExecutionId"), str):
            return ChildRun(target, data.version, child_id=uuid.UUID(stored["childExecutionId"]))
        value: Any = {}
        if ctx.node.input is not None:
            value = await self.evaluator.render(ctx.node.input, ctx.variables, ctx.node.id)
        return ChildRun(target, data.version, self.evaluator.output(value, ctx.node.id))


# How long a wait without a timeout stays parked before its job comes round again (and
# parks once more): far enough never to matter, near enough for any clock arithmetic.
NO_TIMEOUT = timedelta(days=36_500)


class WaitHandler(_Base):
    """`wait` and `approval`: the first run parks the step (its job stays in the table,
    unleased, no worker holds it) until its timeout; the orchestrator then takes a kept
    signal instead, if one was sent already. A signal completes the step without a
    worker (see Orchestrator.signal). So a worker runs the step again only when its
    timeout falls due: it then completes with `{"timedOut": true, ...}` when the node has
    a "timeout" edge (the orchestrator records the outcome "timeout"), and fails, not
    retried, when it has none."""

    async def run(self, ctx: StepContext) -> Outcome:
        signal = signal_of(ctx.node)
        stored = ctx.job.step_input
        # What this job parked before (a job keeps its id when it is parked, reclaimed or
        # run at its timeout); a new job (a redriven step) waits afresh.
        if not (isinstance(stored, dict) and stored.get("jobId") == ctx.job.job_id
                and "timeoutAt" in stored):  # fmt: skip
            timeout = getattr(ctx.node.data, "timeout_seconds", None)
            deadline = ctx.now + timedelta(seconds=timeout) if timeout else None
            at = deadline.isoformat() if deadline is not None else None
            parked = {"signal": signal, "timeoutAt": at, "jobId": ctx.job.job_id}
            return Waiting(deadline or ctx.now + NO_TIMEOUT, parked)
        if stored["timeoutAt"] is None:
            return Waiting(ctx.now + NO_TIMEOUT, stored)
        deadline = parse_instant(str(stored["timeoutAt"]))
        if ctx.now < deadline:
            return Waiting(deadline, stored)
        if any(edge.handle == "timeout" for edge in ctx.workflow.outgoing[ctx.node.id]):
            return Completed({"timedOut": True, "signal": signal, "timeoutAt": stored["timeoutAt"]})
        return Failed(
            {
                "code": "WAIT_TIMED_OUT",
                "message": f"no signal {signal!r} came before the timeout ({stored['timeoutAt']})",
            }
        )
