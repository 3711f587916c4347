"""Query resolvers: translate arguments, call a service, wrap its rows."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flowsync.errors import ConfigurationError, FlowSyncError, NotFound
from flowsync.resolvers.context import Context
from flowsync.schema.cost import query_cost
from flowsync.schema.rate import RateLimitType
from flowsync.schema.types import (
    ApiKeyType,
    Connection,
    ExecutionStatus,
    ExecutionType,
    ExpressionCheck,
    ExpressionKind,
    ExpressionProblem,
    Health,
    NodeTypeType,
    Problem,
    ValidationResult,
    WorkflowType,
    WorkflowVersionType,
)
from flowsync.services.expression_check import check_expression as check
from flowsync.services.node_types import node_types as all_node_types
from flowsync.services.observability import ObservabilityService
from flowsync.services.pagination import Page
from flowsync.services.workflows import WorkflowService

log = logging.getLogger("flowsync.graphql")

Ctx = Info[Context, None]


async def workflows(
    info: Ctx, first: int | None = None, after: str | None = None
) -> Connection[WorkflowType]:
    """The caller's workflows, newest first."""
    loaders = info.context.loaders()
    page = await info.context.services.workflows.list(loaders.principal, limit=first, cursor=after)
    return WorkflowType.page(page, loaders, after)


async def workflow(info: Ctx, id: strawberry.ID) -> WorkflowType | None:
    """One workflow, or null (also for another owner's or a deleted one)."""
    loaders = info.context.loaders()
    try:
        row = await info.context.services.workflows.get(loaders.principal, id)
    except NotFound:
        return None
    return WorkflowType.of(row, loaders)


async def workflow_versions(
    info: Ctx, workflow_id: strawberry.ID, first: int | None = None, after: str | None = None
) -> Connection[WorkflowVersionType] | None:
    """Every version of a workflow, newest first; null for a missing workflow."""
    try:
        page = await info.context.services.workflows.versions_page(
            info.context.principal, workflow_id, limit=first, cursor=after
        )
    except NotFound:
        return None
    return WorkflowVersionType.page(page, after)


async def workflow_version(
    info: Ctx, workflow_id: strawberry.ID, version: int
) -> WorkflowVersionType | None:
    """One version of a workflow (as a stale update's `currentVersion` names it), or
    null: no such version, or a missing workflow."""
    if version < 1:
        return None
    try:
        row = await info.context.services.workflows.get_definition(
            info.context.principal, workflow_id, version
        )
    except NotFound:
        return None
    return WorkflowVersionType.of(row)


async def executions(
    info: Ctx,
    workflow_id: strawberry.ID | None = None,
    status: ExecutionStatus | None = None,
    first: int | None = None,
    after: str | None = None,
    trigger_id: strawberry.ID | None = None,
) -> Connection[ExecutionType]:
    """The caller's executions, newest first, optionally of one workflow, status or
    trigger (the one that started them)."""
    loaders = info.context.loaders()
    try:
        page = await info.context.services.executions.list(
            loaders.principal, workflow_id=workflow_id,
            status=status.value if status is not None else None, trigger_id=trigger_id,
            limit=first, cursor=after,
        )  # fmt: skip
    except NotFound:  # a malformed workflow id: like another owner's, nothing
        return ExecutionType.page(Page([], None), loaders, after)
    return ExecutionType.page(page, loaders, after)


async def api_keys(
    info: Ctx, first: int | None = None, after: str | None = None
) -> Connection[ApiKeyType]:
    """The caller owner's API keys, newest first, revoked ones included (`revokedAt`)."""
    page = await info.context.services.api_keys.page(
        info.context.principal, limit=first, cursor=after
    )
    return ApiKeyType.page(page, after)


async def execution(info: Ctx, id: strawberry.ID) -> ExecutionType | None:
    """One execution, or null (also for another owner's)."""
    loaders = info.context.loaders()
    try:
        row = await info.context.services.executions.get(loaders.principal, id)
    except NotFound:
        return None
    return ExecutionType.of(row, loaders)


async def validate_workflow(info: Ctx, definition: JSON) -> ValidationResult:
    """Check a definition against every rule without storing anything."""
    info.context.require_credential()
    try:
        await WorkflowService.validate(definition)
    except FlowSyncError as exc:
        return ValidationResult(
            valid=False,
            problems=[
                Problem(path=p.path, message=p.message, node_id=p.node_id, edge=p.edge)
                for p in exc.details
            ]
            or [Problem(path="$.definition", message=exc.message)],
        )
    return ValidationResult(valid=True, problems=[])


def node_types(info: Ctx) -> list[NodeTypeType]:
    """Every node type the editor can place: its `data` schema and connection rules, as
    the validator applies them."""
    info.context.require_credential()
    return [NodeTypeType.of(t) for t in all_node_types()]


def check_expression(info: Ctx, expression: str, kind: ExpressionKind) -> ExpressionCheck:
    """Compile one condition expression or template string, as a save would, without
    evaluating it: for the editor's checks as one types."""
    info.context.require_credential()
    problems = [ExpressionProblem.of(p) for p in check(expression, kind.value)]
    return ExpressionCheck(valid=not problems, problems=problems)


def rate_limit(info: Ctx) -> RateLimitType:
    """The caller's request budget once this operation was counted (as every result's
    `extensions.rateLimit` reports it), and this operation's cost (as
    `extensions.cost.requested`). Like any operation, asking counts one request."""
    context = info.context
    context.require_credential()
    budget = context.rate_budget
    if budget is None:  # every face counts a request before it runs (flowsync.app)
        raise ConfigurationError("This server counts no requests.")
    raw = info._raw_info  # graphql-core's: strawberry's Info lacks the fragments
    schema, operation = raw.schema, raw.operation
    # The coerced values (graphql-core's typing says VariableValues; it passes a dict).
    values: Any = raw.variable_values
    variables: dict[str, object] = getattr(values, "coerced", values)
    cost = query_cost(
        operation.selection_set, raw.fragments, variables, schema,
        schema.get_root_type(operation.operation),
    )  # fmt: skip
    return RateLimitType.of(budget, cost, context.services.settings.max_query_cost)


async def health(info: Ctx) -> Health:
    """Whether this API process can serve: the same check as REST's readiness probe
    (the database within two seconds, its schema at the migrations' head) and the
    live-event listener."""
    info.context.require_credential()
    live = info.context.live
    report = await ObservabilityService.of(info.context.services).health(
        live.backend.listener_state if live is not None else None
    )
    polling = live is not None and live.backend.listener_state is None
    listener = "ok" if report.listener == "ok" else "polling" if polling else "disconnected"
    status = "ok" if report.ready and listener in ("ok", "polling") else "degraded"
    return Health(
        status=status, database=report.database, events_listener=listener,
        ready=report.ready, migrations=report.migrations,
    )  # fmt: skip
