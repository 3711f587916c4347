"""What mutations return: a success payload or one of the expected failures, as typed
results (a union per mutation), never as bare error strings."""

from __future__ import annotations

from typing import Annotated

import strawberry

from flowsync.schema.types import ApiKeyType, ExecutionType, Problem, WorkflowType


@strawberry.interface
class UserError:
    """An expected failure: `code` is stable (the REST face uses the same codes)."""

    code: str
    message: str


@strawberry.type
class ValidationError(UserError):
    """The input breaks a rule; `problems` names each one by its JSON path."""

    problems: list[Problem]


@strawberry.type
class NotFoundError(UserError):
    """No such object, or another owner's (the two look the same)."""


@strawberry.type
class ConflictError(UserError):
    """The change clashes with the object's current state."""

    current_version: int | None = strawberry.field(
        default=None,
        description="For an update from a stale `expectedVersion`: the workflow's version "
        "now, to fetch and compare with yours; null for other conflicts.",
    )


@strawberry.type
class BackpressureError(UserError):
    """The queue sheds load; try again after `retryAfter` seconds."""

    retry_after: float


@strawberry.type
class WorkflowPayload:
    workflow: WorkflowType


@strawberry.type
class DeletedPayload:
    id: strawberry.ID


@strawberry.type
class StartExecutionPayload:
    execution: ExecutionType
    created: bool = strawberry.field(
        description="False when the idempotency key was used before: `execution` is the first."
    )


@strawberry.type
class StartExecutionsPayload:
    results: list[StartExecutionPayload] = strawberry.field(
        description="One per item of `inputs`, in order."
    )


@strawberry.type
class ExecutionPayload:
    execution: ExecutionType


@strawberry.type
class SignalExecutionPayload:
    execution: ExecutionType
    taken_by: str | None = strawberry.field(
        description="The node id of the wait or approval step that took the signal now; "
        "null when none waits for it yet and it is kept for the one that will."
    )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKeyType
    secret: str = strawberry.field(description="The key itself: shown this once, never again.")


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKeyType


CreateWorkflowResult = Annotated[
    WorkflowPayload | ValidationError, strawberry.union("CreateWorkflowResult")
]
UpdateWorkflowResult = Annotated[
    WorkflowPayload | ValidationError | NotFoundError | ConflictError,
    strawberry.union("UpdateWorkflowResult"),
]
DeleteWorkflowResult = Annotated[
    DeletedPayload | NotFoundError, strawberry.union("DeleteWorkflowResult")
]
StartExecutionResult = Annotated[
    StartExecutionPayload | ValidationError | NotFoundError | ConflictError | BackpressureError,
    strawberry.union("StartExecutionResult"),
]
StartExecutionsResult = Annotated[
    StartExecutionsPayload | ValidationError | NotFoundError | BackpressureError,
    strawberry.union("StartExecutionsResult"),
]
CancelExecutionResult = Annotated[
    ExecutionPayload | NotFoundError | ConflictError, strawberry.union("CancelExecutionResult")
]
SignalExecutionResult = Annotated[
    SignalExecutionPayload | ValidationError | NotFoundError | ConflictError,
    strawberry.union("SignalExecutionResult"),
]
CreateApiKeyResult = Annotated[
    CreateApiKeyPayload | ValidationError, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[
    ApiKeyPayload | NotFoundError, strawberry.union("RevokeApiKeyResult")
]
