"""Signals: what a person or another system sends to an execution for its wait and
approval steps (spec: docs/workflow-definition.md, "Waits, signals and approvals").

The checks here are pure: a signal's name and payload, and whether the run's workflow
version waits for that name anywhere. `ExecutionService.signal_execution` runs them and
delivers the signal through the orchestrator in one transaction with its audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowsync import codec
from flowsync.engine.definition import SIGNAL_NAME
from flowsync.engine.graph import WAITS
from flowsync.engine.transitions import signal_of
from flowsync.engine.validation import CompiledWorkflow
from flowsync.errors import InvalidInput, Problem, shown
from flowsync.services.inputs import checked_json_size

# Only data: the checks are the signal operation's parts (ExecutionService.signal_execution),
# not operations of their own.
__all__ = ["APPROVAL", "MAX_PAYLOAD_BYTES", "Signalled"]

APPROVAL = "approval"
# A payload becomes a step's output; the same limit as an execution's input.
MAX_PAYLOAD_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Signalled:
    """A delivered signal: `node_id` is the step that took it now, None when it is kept
    for a step that waits for it later."""

    name: str
    node_id: str | None


def checked_signal(name: str, payload: Any, actor: str) -> Any:
    """The payload to store for signal `name` (`{}` for none), or InvalidInput naming
    the field; PayloadTooLarge over MAX_PAYLOAD_BYTES. An approval's payload must be
    `{"approved": bool, "by"?: str, "comment"?: str}`; `by` defaults to `actor`."""
    if not SIGNAL_NAME.fullmatch(name):
        raise InvalidInput(
            f"{shown(name)!r} is not a signal name.",
            [Problem("name", "starts with a letter or _ and holds letters, digits, _ . -")],
        )
    value = {} if payload is None else payload
    checked_json_size(value, "$.payload", MAX_PAYLOAD_BYTES)
    codec.stored(value)  # a NUL is refused here, before anything is written
    if name == APPROVAL:
        value = _approval(value, actor)
    return value


def _approval(payload: Any, actor: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput(
            "An approval's payload is an object: {approved, by, comment}.",
            [Problem("$.payload", "must be an object")],
        )
    problems = []
    if not isinstance(payload.get("approved"), bool):
        problems.append(Problem("$.payload.approved", "must be true or false"))
    for key in ("by", "comment"):
        if key in payload and not isinstance(payload[key], str):
            problems.append(Problem(f"$.payload.{key}", "must be a string"))
    for key in sorted(set(payload) - {"approved", "by", "comment"}):
        problems.append(Problem(f"$.payload.{key}", "unknown key (approved, by, comment)"))
    if problems:
        raise InvalidInput("The approval's payload is not {approved, by, comment}.", problems)
    by = payload.get("by") or actor
    return {"approved": payload["approved"], "by": by, "comment": payload.get("comment")}


def waits_for(wf: CompiledWorkflow) -> list[str]:
    """The signal names a workflow version's wait and approval nodes wait for, sorted."""
    return sorted({signal_of(n) for n in wf.nodes.values() if n.type in WAITS})


def check_known(name: str, wf: CompiledWorkflow) -> None:
    """InvalidInput unless some wait or approval node of `wf` waits for `name`: such a
    signal could never be taken, so it is refused rather than kept for good."""
    names = waits_for(wf)
    if name not in names:
        known = ", ".join(repr(n) for n in names) or "none (it has no wait or approval node)"
        message = f"The execution's workflow version waits for no signal {shown(name)!r}"
        raise InvalidInput(
            f"{message}; it waits for {known}.",
            [Problem("name", f"no wait or approval node waits for {shown(name)!r}")],
        )
