"""A bound on how much one GraphQL result may hold, enforced while it is produced.

The cost limit counts objects, not bytes: six aliases of `executions(first: 200) {
edges { node { definition } } }` cost 2,400, yet each `definition` may be a megabyte,
and that result was a 1 GB response (3 GB of process while it was serialised). Here
every leaf value is measured as it is completed (a JSON value by its serialised
length, a string by its UTF-8 length, anything else as a few bytes); once the sum is
past the limit no further field is resolved, and the whole result is one
`response_too_large` error (`data: null`), so that what was produced never grows
much past the limit and nothing of that size is serialised."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLLeafType,
    OperationType,
)

from flowsync import codec
from flowsync.errors import ResultTooLarge
from flowsync.schema.plain_fields import PlainLeaves

# What a leaf adds besides its value: its key, quotes, colon and comma, roughly.
_PER_LEAF = 16
# A string longer than this is measured in UTF-8 when it is not ASCII.
_SHORT = 64


def leaf_bytes(value: object) -> int:
    """About how many bytes of JSON a completed leaf value takes (never less, for an
    ASCII string or a JSON value without escapes)."""
    if isinstance(value, str):
        if len(value) <= _SHORT or value.isascii():
            return len(value) + 2
        return len(value.encode(errors="replace")) + 2
    if isinstance(value, dict | list):
        return len(codec.dumps(value, default=str))
    return 8


def leaf_cost(value: object) -> int:
    """What a completed leaf adds to a result's measure."""
    return _PER_LEAF + leaf_bytes(value)


def _skip_field(*_args: Any) -> None:
    """An executor's execute_field once its result is over the limit."""
    return None


class BoundedResults(PlainLeaves):
    """An executor that stops producing a result past `max_bytes` (0: no bound) and
    answers `response_too_large` instead. Each subscription event is bounded on its
    own. Subclass it with `max_bytes` set (see `bounded`)."""

    max_bytes: ClassVar[int] = 0

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = cast(BoundedResults, super().build_per_event_executor(payload))
        executor._used = 0
        executor._over = False
        vars(executor).pop("execute_field", None)  # a copy: this one's skipping is not its
        return executor

    def complete_leaf_value(  # type: ignore[override]
        self, return_type: GraphQLLeafType, result: Any
    ) -> Any:
        completed = super().complete_leaf_value(return_type, result)
        if self.max_bytes and not self._over:
            self._used += leaf_cost(completed)
            self._check_measure()
        return completed

    def _check_measure(self) -> None:
        if self._used > self.max_bytes and not self._over:
            self._over = True
            # The result is thrown away: resolve nothing more. Set on this executor
            # only once over, so that a result within the limit (all of them, but for
            # a few) pays no extra call per field: an override of execute_field cost
            # ~7 % of completing a batch start's 1,000 results.
            vars(self)["execute_field"] = _skip_field

    def _measured(self, back_to: int | None = None) -> int:
        if back_to is not None:
            self._used = back_to
        return self._used

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        if not self._over or not isinstance(response, ExecutionResult):
            return response
        done = (
            " The mutation was carried out: query what it changed."
            if self.operation.operation == OperationType.MUTATION
            else ""
        )
        cause = ResultTooLarge(
            f"The result is over the limit of {self.max_bytes} bytes "
            "(FLOWSYNC_GRAPHQL_MAX_RESPONSE_BYTES): ask for fewer objects (`first`, fewer "
            "aliases) or leave out large fields (`definition`, `input`, `output`) of "
            f"lists, reading them for one object at a time.{done}"
        )
        error = GraphQLError(cause.message, self.operation, original_error=cause)
        response.data = None
        response.errors = [error]
        return response


def bounded(executor: type[BoundedResults], max_bytes: int) -> type[BoundedResults]:
    """`executor` with results bounded to `max_bytes`."""
    # Lists of plain objects (plain_fields) measure their leaves with it.
    cost = staticmethod(leaf_cost) if max_bytes else None
    return type(executor.__name__, (executor,), {"max_bytes": max_bytes, "_leaf_cost": cost})
