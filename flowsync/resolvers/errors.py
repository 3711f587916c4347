"""The one mapping from FlowSync's exception tree to GraphQL: typed results for a
mutation's expected failures, and error `extensions` (code, problems, retryAfter) for
everything else a client caused. Anything not from the tree is masked by the schema."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from graphql import GraphQLError

from flowsync.echo import bounded
from flowsync.errors import (
    Backpressure,
    Conflict,
    DatabaseUnavailable,
    FlowSyncError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    VersionConflict,
)
from flowsync.schema.results import (
    BackpressureError,
    ConflictError,
    NotFoundError,
    UserError,
    ValidationError,
)
from flowsync.schema.types import Problem

T = TypeVar("T")

# Service argument names as the GraphQL face spells them.
_ARGUMENTS = {"limit": "first", "cursor": "after"}


def problems(error: FlowSyncError) -> list[Problem]:
    """The error's details, with paths in GraphQL's argument names."""
    return [
        Problem(path=_ARGUMENTS.get(p.path, p.path), message=bounded(p.message),
                node_id=p.node_id, edge=p.edge)
        for p in error.details
    ]  # fmt: skip


def user_error(error: FlowSyncError) -> UserError | None:
    """The typed result for an expected failure, or None when it is not one."""
    if isinstance(error, InvalidInput | PayloadTooLarge):
        return ValidationError(
            code=error.code, message=bounded(error.message), problems=problems(error)
        )
    if isinstance(error, NotFound):
        return NotFoundError(code=error.code, message=bounded(error.message))
    if isinstance(error, Backpressure):
        return BackpressureError(
            code=error.code, message=bounded(error.message), retry_after=error.retry_after
        )
    if isinstance(error, VersionConflict):
        return ConflictError(
            code=error.code, message=bounded(error.message), current_version=error.current_version
        )
    if isinstance(error, Conflict):
        return ConflictError(code=error.code, message=bounded(error.message))
    return None


async def outcome(allowed: tuple[type[UserError], ...], call: Awaitable[T]) -> T | UserError:
    """Await a service call; an expected failure that the mutation's union holds comes
    back as its typed result, anything else propagates (and is masked if unexpected)."""
    try:
        return await call
    except FlowSyncError as exc:
        result = user_error(exc)
        if result is None or not isinstance(result, allowed):
            raise
        return result


def extensions(error: FlowSyncError) -> dict[str, Any]:
    """The `extensions` of a GraphQL error caused by `error`."""
    out: dict[str, Any] = {"code": error.code}
    if error.details:
        out["problems"] = [
            {"path": p.path, "message": p.message, "nodeId": p.node_id} for p in problems(error)
        ]
    if isinstance(error, RateLimited | Backpressure | DatabaseUnavailable):
        out["retryAfter"] = error.retry_after
    return out


def as_graphql_error(error: GraphQLError, cause: FlowSyncError) -> GraphQLError:
    """The client-facing form of an error a FlowSync exception caused."""
    return GraphQLError(
        bounded(cause.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions(cause),
    )
