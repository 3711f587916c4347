"""The schema object: root types with names fixed by the API contract, the limits, and
the error policy (FlowSync's errors reach clients with a code; anything else is masked
and logged)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError, GraphQLSyntaxError, OperationDefinitionNode
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    validate_document,
)
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from flowsync import codec, echo
from flowsync.config import Settings
from flowsync.db.outage import as_unavailable
from flowsync.db.timeouts import as_timeout
from flowsync.errors import FlowSyncError, InvalidInput
from flowsync.resolvers import members as member_resolvers
from flowsync.resolvers import mutation, operations, query, subscription
from flowsync.resolvers import node as node_resolvers
from flowsync.resolvers import secrets as secret_resolvers
from flowsync.resolvers.errors import as_graphql_error
from flowsync.schema.boundary import InputBoundary
from flowsync.schema.budget import BoundedResults, bounded
from flowsync.schema.cost import QueryCostLimiter
from flowsync.schema.limits import ShapeLimits, with_coded_rules
from flowsync.schema.members import MemberType
from flowsync.schema.operations import (
    AuditEntry,
    DeadLetterType,
    MetricsSeries,
    MetricsSnapshot,
    QueueStats,
    SchedulerStatus,
    TriggerType,
    WorkerType,
)
from flowsync.schema.rate import RateLimitReport, RateLimitType
from flowsync.schema.secrets import SecretType
from flowsync.schema.types import (
    ApiKeyType,
    Connection,
    ExecutionEventType,
    ExecutionType,
    ExpressionCheck,
    Health,
    Node,
    NodeTypeType,
    ValidationResult,
    WorkflowType,
    WorkflowVersionType,
)

log = logging.getLogger("flowsync.graphql")


@strawberry.type
class Query:
    workflows: Connection[WorkflowType] = strawberry.field(resolver=query.workflows)
    workflow: WorkflowType | None = strawberry.field(resolver=query.workflow)
    workflow_versions: Connection[WorkflowVersionType] | None = strawberry.field(
        resolver=query.workflow_versions
    )
    executions: Connection[ExecutionType] = strawberry.field(resolver=query.executions)
    execution: ExecutionType | None = strawberry.field(resolver=query.execution)
    validate_workflow: ValidationResult = strawberry.field(resolver=query.validate_workflow)
    health: Health = strawberry.field(resolver=query.health)
    triggers: Connection[TriggerType] = strawberry.field(resolver=operations.triggers)
    trigger: TriggerType | None = strawberry.field(resolver=operations.trigger)
    queue_stats: QueueStats = strawberry.field(resolver=operations.queue_stats)
    dead_letters: Connection[DeadLetterType] = strawberry.field(resolver=operations.dead_letters)
    dead_letter: DeadLetterType | None = strawberry.field(resolver=operations.dead_letter)
    metrics: MetricsSnapshot = strawberry.field(resolver=operations.metrics)
    audit_log: Connection[AuditEntry] = strawberry.field(resolver=operations.audit_log)
    scheduler_status: SchedulerStatus = strawberry.field(resolver=operations.scheduler_status)
    api_keys: Connection[ApiKeyType] = strawberry.field(resolver=query.api_keys)
    members: list[MemberType] = strawberry.field(resolver=member_resolvers.members)
    secrets: list[SecretType] = strawberry.field(resolver=secret_resolvers.secrets)
    workers: list[WorkerType] = strawberry.field(resolver=operations.workers)
    metrics_series: MetricsSeries = strawberry.field(resolver=operations.metrics_series)
    workflow_version: WorkflowVersionType | None = strawberry.field(resolver=query.workflow_version)
    node_types: list[NodeTypeType] = strawberry.field(resolver=query.node_types)
    check_expression: ExpressionCheck = strawberry.field(resolver=query.check_expression)
    rate_limit: RateLimitType = strawberry.field(resolver=query.rate_limit)
    node: Node | None = strawberry.field(resolver=node_resolvers.node)
    nodes: list[Node | None] = strawberry.field(resolver=node_resolvers.nodes)


@strawberry.type
class Mutation:
    create_workflow = strawberry.mutation(resolver=mutation.create_workflow)
    update_workflow = strawberry.mutation(resolver=mutation.update_workflow)
    delete_workflow = strawberry.mutation(resolver=mutation.delete_workflow)
    start_execution = strawberry.mutation(resolver=mutation.start_execution)
    start_executions = strawberry.mutation(resolver=mutation.start_executions)
    cancel_execution = strawberry.mutation(resolver=mutation.cancel_execution)
    signal_execution = strawberry.mutation(resolver=mutation.signal_execution)
    create_api_key = strawberry.mutation(resolver=mutation.create_api_key)
    revoke_api_key = strawberry.mutation(resolver=mutation.revoke_api_key)
    add_member = strawberry.mutation(resolver=member_resolvers.add_member)
    set_member_role = strawberry.mutation(resolver=member_resolvers.set_member_role)
    remove_member = strawberry.mutation(resolver=member_resolvers.remove_member)
    set_secret = strawberry.mutation(resolver=secret_resolvers.set_secret)
    delete_secret = strawberry.mutation(resolver=secret_resolvers.delete_secret)
    retry_execution = strawberry.mutation(resolver=operations.retry_execution)
    create_trigger = strawberry.mutation(resolver=operations.create_trigger)
    update_trigger = strawberry.mutation(resolver=operations.update_trigger)
    delete_trigger = strawberry.mutation(resolver=operations.delete_trigger)
    backfill_trigger = strawberry.mutation(resolver=operations.backfill_trigger)
    redrive_dead_letter = strawberry.mutation(resolver=operations.redrive_dead_letter)
    rotate_trigger_secret = strawberry.mutation(resolver=operations.rotate_trigger_secret)


@strawberry.type
class Subscription:
    execution_updated = strawberry.subscription(resolver=subscription.execution_updated)
    execution_events = strawberry.subscription(resolver=subscription.execution_events)
    queue_stats_updated = strawberry.subscription(resolver=operations.queue_stats_updated)


# Why an operation type is refused where it was sent: queries by the transports that carry
# subscriptions only (the legacy graphql-ws protocol, multipart subscriptions), mutations
# by those and by GET, subscriptions by GET (a plain POST of one is refused in `execute`).
_NOT_HERE = {
    OperationType.QUERY: "This transport carries subscriptions only (graphql-ws, multipart "
    "subscriptions): send queries by HTTP GET or POST, or over graphql-transport-ws.",
    OperationType.MUTATION: "Mutations are not allowed here, as this transport carries "
    "subscriptions only or this is a GET: send them by HTTP POST (GraphQL over SSE "
    "included) or over graphql-transport-ws.",
    OperationType.SUBSCRIPTION: "A subscription over HTTP is a POST with `Accept: "
    "text/event-stream` (GraphQL over SSE) or `Accept: multipart/mixed;subscriptionSpec=1.0`, "
    "or goes over the websocket.",
}


def _expected(error: GraphQLError) -> FlowSyncError | None:
    cause = error.original_error
    if isinstance(cause, InvalidOperationTypeError):
        return InvalidInput(_NOT_HERE[cause.operation_type])
    if isinstance(cause, MissingQueryError):  # a stream's request (SSE) without one
        return InvalidInput("The request has no `query`: send the operation's document as `query`.")
    if isinstance(cause, CannotGetOperationTypeError):
        return InvalidInput("The document has no operation with that name.")
    if cause is not None and (timeout := as_timeout(cause)) is not None:
        return timeout
    if cause is not None and (unavailable := as_unavailable(cause)) is not None:
        return unavailable
    if cause is not None and (unstorable := codec.unstorable(cause)) is not None:
        return unstorable  # raised by the JSON codec, wrapped by the database driver
    return cause if isinstance(cause, FlowSyncError) and cause.status < 500 else None


def _unexpected(error: GraphQLError) -> bool:
    cause = error.original_error
    return cause is not None and not isinstance(cause, GraphQLError) and _expected(error) is None


class ParseOnce(ParserCache):
    """strawberry's ParserCache, minus its one flaw: a syntax error raised from the
    cache escapes the error handling of websocket operations (a traceback instead of an
    error message). Here a document that does not parse is left to strawberry's own
    parser, which reports it as usual."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        document = context.graphql_document
        if document is not None and context._provided_operation_name is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                # Strawberry would run the first; the spec (and graphql-core) refuse.
                raise GraphQLError(
                    "The document has several operations: name the one to run in `operationName`.",
                    extensions={"code": "invalid_input"},
                )
        yield


def client_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """What a client sees of `errors`: FlowSync's errors with their code, anything
    unexpected as "Unexpected error.", every message's echo of an input bounded
    (applying it twice changes nothing)."""
    out: list[GraphQLError] = []
    for error in errors:
        cause = _expected(error)
        if cause is not None:
            out.append(as_graphql_error(error, cause))
        elif _unexpected(error):
            out.append(
                GraphQLError(
                    "Unexpected error.",
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                )
            )
        else:
            out.append(_echoing_little(_coded(error)))
    return out


def _coded(error: GraphQLError) -> GraphQLError:
    """`error` with `extensions.code` when graphql-core wrote none: `syntax_error` for a
    document that does not parse (or has too many tokens), `invalid_query` for one that
    breaks the schema's rules or whose variables do not fit (graphql-core's own
    validation and coercion: no path, no cause but graphql-core's). Found by QA: only
    their message told a client what they were."""
    if error.extensions and "code" in error.extensions:
        return error
    if isinstance(error, GraphQLSyntaxError):
        code = "syntax_error"
    elif error.path is None and (
        error.original_error is None or isinstance(error.original_error, GraphQLError)
    ):
        code = "invalid_query"
    else:
        return error
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


def _echoing_little(error: GraphQLError) -> GraphQLError:
    """`error` with the values its message echoes bounded (flowsync.echo): graphql-core's
    and Strawberry's messages quote a refused value, name or literal whole."""
    message = echo.bounded(error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


class ValidateOnce(SchemaExtension):
    """Validates each distinct valid document once per schema.

    strawberry's ValidationCache keys on the rule classes, which the limiters create
    anew for every operation, so it never hits; and graphql-core 3.3 takes 3-6 ms to
    validate even a one-field mutation. Every rule here (the specification's, depth,
    aliases, introspection) depends on the document alone, and the schema is fixed,
    so a document that validated once validates again. Documents with errors are not
    cached (they are rare, and their errors are per request). Put it after the
    extensions whose `on_validate` may refuse an operation first (the cost limit, which
    reads variables): then this one does nothing."""

    def __init__(self, cache: OrderedDict[str, bool], maxsize: int) -> None:
        self._cache = cache
        self._maxsize = maxsize

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if context.pre_execution_errors is None and query and context.graphql_document:
            if query in self._cache:
                self._cache.move_to_end(query)
                context.pre_execution_errors = []
            else:
                rules = with_coded_rules(context.validation_rules)
                errors = validate_document(context.schema._schema, context.graphql_document, rules)
                context.pre_execution_errors = errors
                if not errors:
                    self._cache[query] = True
                    while len(self._cache) > self._maxsize:
                        self._cache.popitem(last=False)
        yield


class FlowSyncErrors(MaskErrors):
    """FlowSync's client errors go out with `extensions.code` (and problems); any other
    exception becomes "Unexpected error." with no SQL, parameters or traceback.

    Streamed results (subscription events) are masked by `Schema.stream` instead of
    MaskErrors' `on_stream_result` hook: strawberry builds a context manager for each
    extension hook on every streamed result, a sixth of the API's CPU per delivered
    event."""

    on_stream_result = SchemaExtension.on_stream_result  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(should_mask_error=_unexpected, error_message="Unexpected error.")

    def _process_result(self, result: object) -> None:
        # MaskErrors tests `isinstance(result, <runtime-checkable Protocol>)`: slow, and
        # the attribute is all it needs.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = client_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return client_errors(errors)


# What only an operation's first result reports: its cost and the caller's rate budget
# as of its start. On a subscription's later events they would only repeat, or be stale.
_ONCE = frozenset({"cost", "rateLimit"})


async def _masked(results: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """Masks each result's errors; drops the `_ONCE` extensions after the first."""
    first = True
    async with contextlib.aclosing(results):
        async for result in results:
            errors = getattr(result, "errors", None)
            if errors:
                result.errors = client_errors(errors)
            if not first and getattr(result, "extensions", None):
                kept = {k: v for k, v in result.extensions.items() if k not in _ONCE}
                result.extensions = kept or None
            first = False
            yield result


class _Rendered:
    """A per-event executor whose event was already rendered for the same document."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return _shared(self.result)


def _shared(result: Any) -> Any:
    """A shared rendering as one subscriber awaits it: a subscriber that goes away (its
    wait cancelled) must not cancel the rendering under the others, nor before it has
    started (its field coroutines would then never be awaited)."""
    return asyncio.shield(result) if isinstance(result, asyncio.Future) else result


_NO_KEY: Any = object()


class SharedRenderings(BoundedResults):
    """Renders a shared subscription event once per distinct document and variables: a
    thousand subscribers with the same subscription cost one GraphQL execution per
    event, not a thousand (see `flowsync.resolvers.shared`). A subscriber whose event
    is already rendered skips graphql-core's per-event copy of the executor too."""

    _key: Any = _NO_KEY

    def build_per_event_executor(self, payload: Any) -> Any:
        renders = payload.renders if isinstance(payload, ExecutionEventType) else None
        if renders is not None:
            found = renders.get(self.render_key())
            if found is not None:
                return _Rendered(found)
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        root = self.root_value
        renders = root.renders if isinstance(root, ExecutionEventType) else None
        key = self.render_key() if renders is not None else None
        if renders is None or key is None:
            return super().execute_operation(serially)
        found = renders.get(key)
        if found is not None:
            return found
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            result = asyncio.ensure_future(result)
        renders[key] = result
        return _shared(result)

    def render_key(self) -> tuple[str, str | None, bytes] | None:
        """The document, operation and variables, computed once per subscription (the
        per-event copies inherit it)."""
        if self._key is _NO_KEY:
            self._key = self._compute_key()
        return self._key  # type: ignore[no-any-return]

    def _compute_key(self) -> tuple[str, str | None, bytes] | None:
        loc = self.operation.loc
        if loc is None:
            return None
        try:
            variables = orjson.dumps(self.variable_values.coerced, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        name = self.operation.name.value if self.operation.name else None
        return (loc.source.body, name, variables)


class _NoHooks:
    """A context manager (sync and async) that does nothing."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_HOOKS = _NoHooks()


class ExtensionsRunner(SchemaExtensionsRunner):
    """strawberry's runner without the per-result work that no extension here asks for.
    For every streamed result (each subscription event sent to each subscriber)
    strawberry gathers every extension's `get_results()` (awaiting each) and builds an
    `on_stream_result` context manager over all of them: a tenth of the API's CPU per
    delivered event, for nothing when no extension overrides either. Any extension that
    does gets strawberry's own behaviour."""

    _stream_hooks: bool | None = None
    _results: bool | None = None

    def on_stream_result(self, result: Any) -> Any:
        if self._stream_hooks is None:
            self._stream_hooks = _overrides(self.extensions, "on_stream_result")
        return super().on_stream_result(result) if self._stream_hooks else _NO_HOOKS

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        if self._results is None:
            self._results = _overrides(self.extensions, "get_results")
        if self._results:
            return await super().get_extensions_results(ctx)
        return dict(ctx.extensions_results)


def _overrides(extensions: list[SchemaExtension], hook: str) -> bool:
    default = getattr(SchemaExtension, hook)
    return any(getattr(type(e), hook) is not default for e in extensions)


class Schema(strawberry.Schema):
    """Logs unexpected errors with their traceback; clients' mistakes are not errors of
    the server, so they are logged at debug level only."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return ExtensionsRunner(execution_context=execution_context, extensions=extensions)

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # `execute` serves HTTP. graphql-core would run a subscription there as a query
        # and fail inside; refusing the operation type answers 400 with a clear reason.
        allowed = kwargs.get("allowed_operation_types") or DEFAULT_ALLOWED_OPERATION_TYPES
        kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().execute(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        # Every streamed result (subscription events, and the single result of an
        # operation sent over a websocket) is masked here; see FlowSyncErrors.
        return _masked(await super().stream(*args, **kwargs))

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if _unexpected(error):
                log.error("unexpected error in %s", error.path, exc_info=error.original_error)
            else:
                log.debug("client error: %s", error.message)


def build_schema(settings: Settings) -> Schema:
    """The schema with the configured limits."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        FlowSyncErrors,
        # Clients send the same few documents again and again (every subscriber of a
        # dashboard the same subscription): parse and validate each once.
        functools.partial(ParseOnce, maxsize=256),
        functools.partial(
            ShapeLimits,
            max_depth=settings.max_query_depth,
            max_introspection_depth=settings.max_introspection_depth,
            max_aliases=settings.max_query_aliases,
        ),
        functools.partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        # NUL and numbers no double holds, in variables and literals (flowsync.codec).
        InputBoundary,
        functools.partial(QueryCostLimiter, max_cost=settings.max_query_cost),
        RateLimitReport,
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    # Last: after every extension that adds rules or refuses an operation first.
    extensions.append(functools.partial(ValidateOnce, OrderedDict(), 256))
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=bounded(SharedRenderings, settings.graphql_max_response_bytes),
    )
