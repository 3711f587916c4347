"""Mutation resolvers: each calls one service method and returns its typed result."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flowsync.resolvers.context import Context
from flowsync.resolvers.errors import outcome
from flowsync.schema.inputs import CreateWorkflowInput, StartExecutionItem, UpdateWorkflowInput
from flowsync.schema.results import (
    ApiKeyPayload,
    BackpressureError,
    CancelExecutionResult,
    ConflictError,
    CreateApiKeyPayload,
    CreateApiKeyResult,
    CreateWorkflowResult,
    DeletedPayload,
    DeleteWorkflowResult,
    ExecutionPayload,
    NotFoundError,
    RevokeApiKeyResult,
    SignalExecutionPayload,
    SignalExecutionResult,
    StartExecutionPayload,
    StartExecutionResult,
    StartExecutionsPayload,
    StartExecutionsResult,
    UpdateWorkflowResult,
    ValidationError,
    WorkflowPayload,
)
from flowsync.schema.types import ApiKeyType, ExecutionType, RoleType, WorkflowType
from flowsync.services.executions import StartItem
from flowsync.services.workflows import WorkflowUpdate

Ctx = Info[Context, None]


async def create_workflow(info: Ctx, input: CreateWorkflowInput) -> CreateWorkflowResult:
    """Validate and store a new workflow at version 1."""
    loaders = info.context.loaders()

    async def call() -> WorkflowPayload:
        row = await info.context.services.workflows.create(
            loaders.principal, input.name, input.description, input.definition,
            input.max_concurrency, input.version_message,
        )  # fmt: skip
        return WorkflowPayload(workflow=WorkflowType.of(row, loaders))

    return cast(CreateWorkflowResult, await outcome((ValidationError,), call()))


async def update_workflow(
    info: Ctx, id: strawberry.ID, input: UpdateWorkflowInput
) -> UpdateWorkflowResult:
    """Rename, re-describe or redefine a workflow (a new definition is a new version,
    `versionMessage` its message). A stale `expectedVersion` is a ConflictError with the
    `currentVersion`."""
    loaders = info.context.loaders()
    given: dict[str, object] = {}
    if input.definition is not strawberry.UNSET:
        given["definition"] = input.definition
    if input.max_concurrency is not strawberry.UNSET:
        given["max_concurrency"] = input.max_concurrency
    change = WorkflowUpdate(
        input.name,
        input.description,
        expected_version=input.expected_version,
        version_message=input.version_message,
        **given,
    )

    async def call() -> WorkflowPayload:
        row = await info.context.services.workflows.update(loaders.principal, id, change)
        return WorkflowPayload(workflow=WorkflowType.of(row, loaders))

    allowed = (ValidationError, NotFoundError, ConflictError)
    return cast(UpdateWorkflowResult, await outcome(allowed, call()))


async def delete_workflow(info: Ctx, id: strawberry.ID) -> DeleteWorkflowResult:
    """Delete a workflow (running executions finish on their pinned version)."""
    principal = info.context.principal

    async def call() -> DeletedPayload:
        await info.context.services.workflows.delete(principal, id)
        return DeletedPayload(id=id)

    return cast(DeleteWorkflowResult, await outcome((NotFoundError,), call()))


async def start_execution(
    info: Ctx,
    workflow_id: strawberry.ID,
    input: JSON | None = None,
    idempotency_key: str | None = None,
    priority: int | None = None,
) -> StartExecutionResult:
    """Start the workflow's current version; a repeated idempotency key returns the
    first execution (`created: false`). `priority`: -100 to 100, higher first among due
    jobs (null: the definition's)."""
    loaders = info.context.loaders()

    async def call() -> StartExecutionPayload:
        started = await info.context.services.executions.start(
            loaders.principal, workflow_id, input, idempotency_key=idempotency_key,
            priority=priority,
        )  # fmt: skip
        return StartExecutionPayload(
            execution=ExecutionType.of(started.execution, loaders), created=started.created
        )

    allowed = (ValidationError, NotFoundError, ConflictError, BackpressureError)
    return cast(StartExecutionResult, await outcome(allowed, call()))


async def start_executions(
    info: Ctx,
    workflow_id: strawberry.ID,
    inputs: list[StartExecutionItem],
    priority: int | None = None,
) -> StartExecutionsResult:
    """Start the workflow's current version once per item, all in one transaction (at
    most `FLOWSYNC_MAX_BATCH_STARTS` items; any error starts none, and an invalid item is
    named by its index, `$.inputs[3]...`). Each item's idempotency key acts as
    `startExecution`'s. `priority`: every run's (see `startExecution`)."""
    loaders = info.context.loaders()
    items = [StartItem(i.input, i.idempotency_key) for i in inputs]

    async def call() -> StartExecutionsPayload:
        started = await info.context.services.executions.start_many(
            loaders.principal, workflow_id, items, priority
        )
        return StartExecutionsPayload(
            results=[
                StartExecutionPayload(
                    execution=ExecutionType.of(s.execution, loaders), created=s.created
                )
                for s in started
            ]
        )

    allowed = (ValidationError, NotFoundError, BackpressureError)
    return cast(StartExecutionsResult, await outcome(allowed, call()))


async def cancel_execution(info: Ctx, id: strawberry.ID) -> CancelExecutionResult:
    """Cancel a running execution (a ConflictError when it already ended)."""
    loaders = info.context.loaders()

    async def call() -> ExecutionPayload:
        row = await info.context.services.executions.cancel(loaders.principal, id)
        return ExecutionPayload(execution=ExecutionType.of(row, loaders))

    return cast(CancelExecutionResult, await outcome((NotFoundError, ConflictError), call()))


async def signal_execution(
    info: Ctx, id: strawberry.ID, name: str, payload: JSON | None = None
) -> SignalExecutionResult:
    """Send signal `name` (with `payload`, default `{}`) to an execution: the wait or
    approval step waiting for it completes with the payload as its output, or, when none
    waits yet, the run keeps the signal for the one that will. A ValidationError for a
    name no wait of the run's version waits for, a bad approval payload (`{approved,
    by, comment}`) or one over the size limit; a ConflictError when the run has ended."""
    loaders = info.context.loaders()

    async def call() -> SignalExecutionPayload:
        row, sent = await info.context.services.executions.signal_execution(
            loaders.principal, id, name, payload
        )
        return SignalExecutionPayload(
            execution=ExecutionType.of(row, loaders), taken_by=sent.node_id
        )

    allowed = (ValidationError, NotFoundError, ConflictError)
    return cast(SignalExecutionResult, await outcome(allowed, call()))


async def create_api_key(
    info: Ctx,
    name: str,
    role: Annotated[
        RoleType | None,
        strawberry.argument(description="At most the caller's own role (the default)."),
    ] = None,
) -> CreateApiKeyResult:
    """Issue an API key for the caller's owner; the secret is in this reply only. A
    role above the caller's is refused with a `forbidden` error."""
    principal = info.context.principal

    async def call() -> CreateApiKeyPayload:
        issued = await info.context.services.api_keys.create(
            principal, name, None if role is None else role.value
        )
        return CreateApiKeyPayload(api_key=ApiKeyType.of(issued.key), secret=issued.secret)

    return cast(CreateApiKeyResult, await outcome((ValidationError,), call()))


async def revoke_api_key(info: Ctx, id: strawberry.ID) -> RevokeApiKeyResult:
    """Revoke one of the caller's keys: it stops authenticating at once, and the
    subscriptions opened with it end within `FLOWSYNC_CREDENTIAL_CHECK_SECONDS`."""
    principal = info.context.principal

    async def call() -> ApiKeyPayload:
        return ApiKeyPayload(
            api_key=ApiKeyType.of(await info.context.services.api_keys.revoke(principal, id))
        )

    return cast(RevokeApiKeyResult, await outcome((NotFoundError,), call()))
