"""The rule that advances a run (spec: "Running semantics"), as pure functions of data.

A node is ready when every incoming edge is resolved: taken (its source completed, and
for a condition the edge is on the side the condition chose) or dead (its source was
skipped, or the edge is the side the condition did not choose). A ready node runs if at
least one incoming edge was taken; otherwise it is skipped and its own outgoing edges
are dead (dead-path elimination). So a join after a fork waits for every branch, and a
node after an if/else runs once whichever side was taken.

No I/O, no clock: callers pass the step statuses and condition results they hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import JsonValue

from flowsync.engine.definition import NodeType
from flowsync.engine.validation import CompiledEdge, CompiledWorkflow

__all__ = [
    "WAITS",
    "Advance",
    "EdgeState",
    "ExecutionInfo",
    "ExecutionStatus",
    "StepStatus",
    "WaitOutcome",
    "advance",
    "approval_outcome",
    "edge_state",
    "outcome",
    "step_context",
    "taken_sources",
    "wait_edge",
]


class StepStatus(StrEnum):
    """A step's status; the values are the API's enum names."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class ExecutionStatus(StrEnum):
    """An execution's status; the values are the API's enum names."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


EdgeState = Literal["taken", "dead", "unresolved"]

# The statuses of a step that resolve its outgoing edges (edge_state): done with.
DONE = frozenset({StepStatus.COMPLETED, StepStatus.SKIPPED})


@dataclass(frozen=True, slots=True)
class Advance:
    """What became decidable: nodes to run now and nodes skipped, each in topological
    order. A node appears at most once, in one of the two."""

    ready: tuple[str, ...]
    skipped: tuple[str, ...]


def edge_state(
    wf: CompiledWorkflow,
    edge: CompiledEdge,
    statuses: Mapping[str, StepStatus],
    branches: Mapping[str, bool | str],
) -> EdgeState:
    """Whether `edge` is taken, dead or not yet resolved.

    `statuses` maps node ids to step statuses (a missing node counts as PENDING);
    `branches` maps each COMPLETED condition to its result, and each COMPLETED wait or
    approval to its outcome (`WaitOutcome`). A completed condition without
    a branch is a caller bug and raises ValueError rather than stalling the run.
    """
    status = statuses.get(edge.source, StepStatus.PENDING)
    if status is StepStatus.SKIPPED:
        return "dead"
    if status is not StepStatus.COMPLETED:
        return "unresolved"
    source_type = wf.nodes[edge.source].type
    if source_type in WAITS:
        return "taken" if edge.handle == wait_edge(branches.get(edge.source)) else "dead"
    if source_type is not NodeType.CONDITION:
        return "taken"
    if edge.source not in branches:
        raise ValueError(f"condition {edge.source!r} is COMPLETED but has no branch result")
    chosen = "true" if branches[edge.source] else "false"
    return "taken" if edge.handle == chosen else "dead"


WAITS = frozenset({NodeType.WAIT, NodeType.APPROVAL})
"""The node types whose step waits for a signal."""

WaitOutcome = Literal["signal", "approved", "rejected", "timeout"]
"""How a wait or approval step ended; the orchestrator stores it with the step (its
`input.outcome`) and reads it back as the step's branch."""


def wait_edge(outcome: object) -> str | None:
    """The `sourceHandle` of the edges a wait's or approval's outcome takes: none for a
    plain wait's signal, else the outcome's name. A completed wait whose outcome was not
    recorded (a caller bug) counts as a plain signal."""
    if outcome in ("approved", "rejected", "timeout"):
        return str(outcome)
    return None


def approval_outcome(payload: object) -> WaitOutcome:
    """An approval's branch from its signal's payload (`{"approved": true|false}`)."""
    approved = payload.get("approved") if isinstance(payload, dict) else None
    return "approved" if approved is True else "rejected"


def advance(
    wf: CompiledWorkflow,
    statuses: Mapping[str, StepStatus],
    branches: Mapping[str, bool | str],
) -> Advance:
    """Every PENDING node whose incoming edges are all resolved: ready if one was taken,
    else skipped. Skips cascade within the one call (a skipped node kills its outgoing
    edges, which may skip the next node). A PENDING start node is ready.

    Idempotent for the same input: nodes already past PENDING are never returned, so a
    caller that marks the returned nodes (QUEUED, SKIPPED) and calls again gets nothing
    twice.
    """
    current: Mapping[str, StepStatus] = statuses
    own: dict[str, StepStatus] | None = None  # the copy that records skips, made at the first
    ready: list[str] = []
    skipped: list[str] = []
    for node_id in wf.topological_order:
        if current.get(node_id, StepStatus.PENDING) is not StepStatus.PENDING:
            continue
        if node_id == wf.start_id:
            ready.append(node_id)
            continue
        # Latest edge first, and no further than the first unresolved one: a join's
        # branches are queued, and mostly finish, in edge order, so while any is still
        # out this reads one or a few of its edges, not all of them (a fork to 200
        # branches read 200 edges on each of its 200 completions).
        taken = False
        for edge in reversed(wf.incoming[node_id]):
            state = edge_state(wf, edge, current, branches)
            if state == "unresolved":
                break
            taken = taken or state == "taken"
        else:
            if taken:
                ready.append(node_id)
            else:
                skipped.append(node_id)
                if own is None:
                    current = own = dict(statuses)
                own[node_id] = StepStatus.SKIPPED
    return Advance(tuple(ready), tuple(skipped))


def outcome(wf: CompiledWorkflow, statuses: Mapping[str, StepStatus]) -> ExecutionStatus | None:
    """FAILED when any step failed; COMPLETED when every node is COMPLETED or SKIPPED;
    else None (still running). Cancellation is the caller's decision, never inferred."""
    if any(statuses.get(node_id) is StepStatus.FAILED for node_id in wf.nodes):
        return ExecutionStatus.FAILED
    return ExecutionStatus.COMPLETED if finished(wf, statuses) else None


def finished(wf: CompiledWorkflow, statuses: Mapping[str, StepStatus]) -> bool:
    """Whether every node is COMPLETED or SKIPPED (then none failed): `outcome` is
    COMPLETED. Read from the last node back, stopping at the first that is not done:
    while a run goes on, that is usually its end or join, read first. A completion asks
    only this; `outcome` also looks for a failed step among every node."""
    return all(statuses.get(node_id, StepStatus.PENDING) in DONE for node_id in reversed(wf.nodes))


def taken_sources(
    wf: CompiledWorkflow,
    node_id: str,
    statuses: Mapping[str, StepStatus],
    branches: Mapping[str, bool | str],
) -> tuple[str, ...]:
    """The sources of `node_id`'s taken incoming edges, in edge order: the keys of a
    join's output."""
    return tuple(
        edge.source
        for edge in wf.incoming[node_id]
        if edge_state(wf, edge, statuses, branches) == "taken"
    )


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """What expressions see as `execution`."""

    id: str | uuid.UUID
    workflow_id: str | uuid.UUID
    version: int
    started_at: datetime | None

    def as_json(self) -> dict[str, JsonValue]:
        """`{"id", "workflowId", "version", "startedAt"}`; times in RFC 3339, UTC as `Z`."""
        started = None
        if self.started_at is not None:
            started = self.started_at.isoformat()
            if started.endswith("+00:00"):
                started = started[:-6] + "Z"
        return {
            "id": str(self.id),
            "workflowId": str(self.workflow_id),
            "version": self.version,
            "startedAt": started,
        }


def step_context(
    *,
    input: JsonValue,
    outputs: Mapping[str, JsonValue],
    execution: ExecutionInfo,
    trigger: Mapping[str, JsonValue],
) -> dict[str, JsonValue]:
    """The context expressions and templates are evaluated against:
    `{"input", "steps": {id: {"output", "status"}}, "execution", "trigger"}`.

    `outputs` holds the output of every COMPLETED step (only those: a skipped or
    pending step is absent, so `has(steps.x)` tells whether `x` ran). `trigger` is passed
    through (`type`, and for webhooks `headers`, `query`, `body`). Values are shared, not
    copied: the evaluator never changes them.
    """
    steps: dict[str, JsonValue] = {
        node_id: {"output": output, "status": StepStatus.COMPLETED.value}
        for node_id, output in outputs.items()
    }
    return {
        "input": input,
        "steps": steps,
        "execution": execution.as_json(),
        "trigger": dict(trigger),
    }
