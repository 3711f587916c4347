"""The GraphQL object types. Each wraps a service-layer row and carries the DataLoaders of
its operation, so that nested fields batch their reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, cast

import strawberry
from strawberry.scalars import JSON

from flowsync.db.models import (
    ApiKey,
    Execution,
    ExecutionEvent,
    StepExecution,
    Workflow,
    WorkflowVersion,
    loaded_values,
)
from flowsync.errors import NotFound
from flowsync.resolvers.loaders import Loaders
from flowsync.services.expression_check import ExpressionProblem as ProblemFound
from flowsync.services.node_types import NodeTypeInfo
from flowsync.services.pagination import Page, encode_cursor
from flowsync.services.workflows import encode_version_cursor
from flowsync.tracing import trace_id_of

if TYPE_CHECKING:
    from flowsync.schema.operations import TriggerType

T = TypeVar("T")


def _json(value: object) -> JSON:
    """A JSON value from a row (strawberry's JSON scalar is typed as its own type)."""
    return cast(JSON, value)


@strawberry.enum
class ExecutionStatus(Enum):
    """Where an execution is in its life."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


_EXECUTION_STATUS = {status.value: status for status in ExecutionStatus}


@strawberry.enum
class StepStatus(Enum):
    """Where one step of an execution is."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


@strawberry.interface(
    description=(
        "An object with a global id (Relay's object identification): `Query.node` and "
        "`Query.nodes` fetch any of them by that id alone. The id is the object's own, "
        "as REST uses it (a UUID; an audit entry's a number)."
    )
)
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    """Relay page information."""

    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    """One item of a connection and the cursor after which the next page starts."""

    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    """A Relay connection: a page of items, newest first."""

    edges: list[Edge[T]]
    page_info: PageInfo


def connection(
    page: Page[Any], nodes: list[T], cursors: list[str], *, after: str | None
) -> Connection[T]:
    """A connection over a service page; `cursors[i]` is the cursor of `nodes[i]`."""
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        page_info=PageInfo(
            has_next_page=page.next_cursor is not None,
            has_previous_page=after is not None,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
    )


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


@strawberry.type(name="StepExecution")
class StepExecutionType(Node):
    """The state of one node in one execution."""

    id: strawberry.ID
    node_id: str
    node_type: str
    status: StepStatus
    attempt: int
    input: JSON | None
    output: JSON | None
    error: JSON | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    worker_id: str | None = strawberry.field(
        description="The `flowsync worker` process that ran the step's latest attempt (as "
        "in `workers`); null when no worker ran it (a step not started yet)."
    )
    worker_host: str | None = strawberry.field(description="The host name of that worker.")

    @classmethod
    def of(cls, row: StepExecution) -> StepExecutionType:
        return cls(
            id=strawberry.ID(str(row.id)),
            node_id=row.node_id,
            node_type=row.node_type,
            status=StepStatus(row.status),
            attempt=row.attempt,
            input=_json(row.input),
            output=_json(row.output),
            error=_json(row.error),
            queued_at=row.queued_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_ms=_ms(row.started_at, row.finished_at),
            worker_id=row.worker_id,
            worker_host=row.worker_host,
        )


@strawberry.type(name="ExecutionEvent")
class ExecutionEventType:
    """One entry of an execution's event log (or, with kind `snapshot`, the state a
    subscription starts from: `sequence` is the last event that state includes)."""

    execution_id: strawberry.ID
    workflow_id: strawberry.ID
    sequence: int
    kind: str
    at: datetime
    status: str = strawberry.field(
        description="The execution's status for execution.* kinds, the step's for step.*."
    )
    node_id: str | None
    attempt: int | None
    data: JSON | None
    step_id: strawberry.Private[uuid.UUID | None]
    loaders: strawberry.Private[Loaders]
    snapshot: strawberry.Private[Execution | None] = None
    # Set when one object is delivered to many subscribers: their identical renderings
    # (same document and variables) are made once (see schema.SharedRenderings).
    renders: strawberry.Private[dict[object, object] | None] = None

    @strawberry.field
    async def step(self) -> StepExecutionType | None:
        if self.step_id is None:
            return None
        row = await self.loaders.step.load(self.step_id)
        return StepExecutionType.of(row) if row is not None else None

    @strawberry.field
    async def steps(self) -> list[StepExecutionType] | None:
        """For a snapshot, the execution's steps exactly as of `sequence`; null for other
        kinds. A live view selects this instead of `execution { steps }`, which reads the
        whole run again for every event."""
        if self.snapshot is None:
            return None
        return [StepExecutionType.of(s) for s in await self.loaders.steps.load(self.snapshot.id)]

    @strawberry.field
    async def execution(self) -> ExecutionType | None:
        if self.snapshot is not None:
            return ExecutionType.of(self.snapshot, self.loaders)
        row = await self.loaders.execution.load(uuid.UUID(self.execution_id))
        return ExecutionType.of(row, self.loaders) if row is not None else None

    @classmethod
    def of(cls, row: ExecutionEvent, loaders: Loaders) -> ExecutionEventType:
        return cls(
            execution_id=strawberry.ID(str(row.execution_id)),
            workflow_id=strawberry.ID(str(row.workflow_id)),
            sequence=row.sequence,
            kind=row.kind,
            at=row.at,
            status=row.status,
            node_id=row.node_id,
            attempt=row.attempt,
            data=_json(row.data),
            step_id=row.step_id,
            loaders=loaders,
        )

    @classmethod
    def snapshot_of(cls, row: Execution, loaders: Loaders) -> ExecutionEventType:
        return cls(
            execution_id=strawberry.ID(str(row.id)),
            workflow_id=strawberry.ID(str(row.workflow_id)),
            sequence=row.last_sequence,
            kind="snapshot",
            at=row.finished_at or row.started_at or row.created_at,
            status=row.status,
            node_id=None,
            attempt=None,
            data=None,
            step_id=None,
            loaders=loaders,
            snapshot=row,
        )


@strawberry.type(name="Execution")
class ExecutionType(Node):
    """One run of a workflow, pinned to the version it started with."""

    id: strawberry.ID
    workflow_id: strawberry.ID
    workflow_version: int
    status: ExecutionStatus
    input: JSON | None
    output: JSON | None
    error: JSON | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    last_sequence: int
    row: strawberry.Private[Execution]
    loaders: strawberry.Private[Loaders]

    @strawberry.field
    async def workflow(self) -> WorkflowType | None:
        row = await self.loaders.workflow.load(self.row.workflow_id)
        return WorkflowType.of(row, self.loaders) if row is not None else None

    @strawberry.field
    async def definition(self) -> JSON:
        """The definition of the version this execution is pinned to (batched: one
        query for every execution of the operation)."""
        found = await self.loaders.version.load(self.row.workflow_version_id)
        if found is None:  # the version is a foreign key of the caller's own execution
            raise NotFound(f"The definition of execution {self.id} is gone.")
        return _json(found.definition)

    @strawberry.field
    def priority(self) -> int:
        """-100 to 100, higher first among due jobs: the start's, else its trigger's,
        else its definition's `priority`, else 0."""
        return self.row.priority

    @strawberry.field
    def concurrency_key(self) -> str | None:
        """Its definition's `concurrencyKey` as evaluated when it started (null: none):
        at most `concurrencyKeyLimit` runs of the workflow with this key run at once,
        the others wait PENDING in start order."""
        return self.row.concurrency_key

    @strawberry.field
    def retried_from_id(self) -> strawberry.ID | None:
        """The execution this one retries (`retryExecution`), or null."""
        origin = self.row.retry_of_id
        return strawberry.ID(str(origin)) if origin is not None else None

    @strawberry.field
    def trace_id(self) -> str | None:
        """The id (32 hex digits) of this execution's OpenTelemetry trace, or null when
        it was started with tracing off."""
        return trace_id_of(self.row.trace_context)

    @strawberry.field
    async def parent_execution(self) -> ExecutionType | None:
        """The execution whose `workflow` step started this one, or null."""
        parent = self.row.parent_execution_id
        if parent is None:
            return None
        row = await self.loaders.execution.load(parent)
        return ExecutionType.of(row, self.loaders) if row is not None else None

    @strawberry.field
    async def child_executions(self) -> list[ExecutionType]:
        """The executions this one's `workflow` steps started, oldest first."""
        rows = await self.loaders.children.load(self.row.id)
        return [ExecutionType.of(r, self.loaders) for r in rows]

    @strawberry.field
    async def steps(self) -> list[StepExecutionType]:
        return [StepExecutionType.of(s) for s in await self.loaders.steps.load(self.row.id)]

    @strawberry.field
    async def timeline(self) -> list[ExecutionEventType]:
        events = await self.loaders.timeline.load(self.row.id)
        return [ExecutionEventType.of(e, self.loaders) for e in events]

    _COLUMNS = frozenset((
        "id", "workflow_id", "version", "status", "input", "output", "error", "created_at",
        "started_at", "finished_at", "last_sequence",
    ))  # fmt: skip

    @classmethod
    def of(cls, row: Execution, loaders: Loaders) -> ExecutionType:
        # A batch start's result builds 1,000: the row is read as loaded, the status
        # looked up (an Enum call is ~0.6 µs), and the object made without the
        # dataclass's __init__, whose 14 keyword arguments cost as much as the rest (its
        # fields are these; tests/unit/test_loaded_values.py compares the two).
        values = loaded_values(row, cls._COLUMNS)
        started, finished = values["started_at"], values["finished_at"]
        status = values["status"]
        made = object.__new__(cls)
        vars(made).update(
            id=strawberry.ID(str(values["id"])),
            workflow_id=strawberry.ID(str(values["workflow_id"])),
            workflow_version=values["version"],
            status=_EXECUTION_STATUS.get(status) or ExecutionStatus(status),
            input=_json(values["input"]),
            output=_json(values["output"]),
            error=_json(values["error"]),
            created_at=values["created_at"],
            started_at=started,
            finished_at=finished,
            duration_ms=_ms(started, finished),
            last_sequence=values["last_sequence"],
            row=row,
            loaders=loaders,
        )
        return made

    @staticmethod
    def page(
        page: Page[Execution], loaders: Loaders, after: str | None
    ) -> Connection[ExecutionType]:
        return connection(
            page,
            [ExecutionType.of(e, loaders) for e in page.items],
            [encode_cursor(e.created_at, e.id) for e in page.items],
            after=after,
        )


@strawberry.type(name="WorkflowVersion")
class WorkflowVersionType(Node):
    """One immutable version of a workflow's definition."""

    id: strawberry.ID
    version: int
    definition: JSON
    created_at: datetime
    message: str | None = strawberry.field(
        description="What the author said of this version (`versionMessage`), or null."
    )
    author: str | None = strawberry.field(
        description="Who made this version: the credential as the audit log names it "
        "(`apikey:<id>`, `jwt:<sub>`, `cli`); null for versions made before it was kept."
    )

    @classmethod
    def of(cls, row: WorkflowVersion) -> WorkflowVersionType:
        return cls(
            id=strawberry.ID(str(row.id)),
            version=row.version,
            definition=_json(row.definition),
            created_at=row.created_at,
            message=row.message,
            author=row.author,
        )

    @staticmethod
    def page(page: Page[WorkflowVersion], after: str | None) -> Connection[WorkflowVersionType]:
        return connection(
            page,
            [WorkflowVersionType.of(v) for v in page.items],
            [encode_version_cursor(v.version) for v in page.items],
            after=after,
        )


@strawberry.type(name="Workflow")
class WorkflowType(Node):
    """A named workflow; `definition` is its newest version's."""

    id: strawberry.ID
    name: str
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[Workflow]
    loaders: strawberry.Private[Loaders]

    @strawberry.field
    async def definition(self) -> JSON | None:
        found = await self.loaders.definition.load(self.row.id)
        return _json(found.definition) if found is not None else None

    @strawberry.field
    async def executions(
        self,
        first: int | None = None,
        after: str | None = None,
        status: ExecutionStatus | None = None,
    ) -> Connection[ExecutionType]:
        state = status.value if status is not None else None
        page = await self.loaders.executions_page.load((self.row.id, first, state, after))
        return ExecutionType.page(page, self.loaders, after)

    @strawberry.field
    def max_concurrency(self) -> int | None:
        """Executions beyond this many running wait PENDING (null: no limit)."""
        return self.row.max_concurrency

    @strawberry.field
    async def triggers(
        self,
    ) -> list[Annotated[TriggerType, strawberry.lazy("flowsync.schema.operations")]]:
        from flowsync.schema.operations import TriggerType

        found = await self.loaders.triggers.load(self.row.id)
        return [TriggerType.of(r, self.loaders) for r in found]

    @classmethod
    def of(cls, row: Workflow, loaders: Loaders) -> WorkflowType:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            description=row.description,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
            loaders=loaders,
        )

    @staticmethod
    def page(page: Page[Workflow], loaders: Loaders, after: str | None) -> Connection[WorkflowType]:
        return connection(
            page,
            [WorkflowType.of(w, loaders) for w in page.items],
            [encode_cursor(w.created_at, w.id) for w in page.items],
            after=after,
        )


@strawberry.enum(name="Role")
class RoleType(Enum):
    """What a member of a team, or an API key, may do there; each role may do all that
    the roles above it in this list may."""

    VIEWER = strawberry.enum_value("viewer", description="Reads and subscribes.")
    OPERATOR = strawberry.enum_value(
        "operator", description="Also starts, cancels, retries, signals and redrives runs."
    )
    EDITOR = strawberry.enum_value("editor", description="Also changes workflows and triggers.")
    ADMIN = strawberry.enum_value("admin", description="Also members and API keys.")


@strawberry.type(name="ApiKey")
class ApiKeyType(Node):
    """An API key; the secret itself is shown only once, by `createApiKey`."""

    id: strawberry.ID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    role: RoleType = strawberry.field(
        description="What the key may do in its team; never above its creator's role."
    )

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyType:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            prefix=row.prefix,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            role=RoleType(row.role),
        )

    @staticmethod
    def page(page: Page[ApiKey], after: str | None) -> Connection[ApiKeyType]:
        return connection(
            page,
            [ApiKeyType.of(k) for k in page.items],
            [encode_cursor(k.created_at, k.id) for k in page.items],
            after=after,
        )


@strawberry.type
class Problem:
    """One thing wrong with an input: its JSON path and what is wrong."""

    path: str
    message: str
    node_id: str | None = None
    edge: int | None = None


@strawberry.type
class ValidationResult:
    """The outcome of `validateWorkflow`."""

    valid: bool
    problems: list[Problem]


@strawberry.type(name="NodeType")
class NodeTypeType:
    """A node type the editor offers, described by the rules that validate a save."""

    type: str = strawberry.field(description='The JSON `type` of such nodes ("action").')
    label: str
    description: str
    data_schema: JSON | None = strawberry.field(
        description="The JSON Schema of the node's `data`, from the model that validates "
        'it; fields holding CEL carry `"x-flowsync": "expression"` or `"template"`. Null '
        "when the type takes no data."
    )
    has_target: bool = strawberry.field(description="Whether it may have incoming edges.")
    has_source: bool = strawberry.field(description="Whether it may have outgoing edges.")
    source_handles: list[str] = strawberry.field(
        description="The `sourceHandle` each outgoing edge carries, each once (condition: "
        '"true" and "false"); empty: its edges carry none.'
    )
    optional_handles: list[str] = strawberry.field(
        description="Handles an outgoing edge may also carry, at most once each, besides "
        "those (a wait's and an approval's \"timeout\"); empty for most types."
    )
    min_outgoing: int
    max_outgoing: int | None = strawberry.field(description="Null: no upper bound.")
    min_incoming: int = strawberry.field(
        description="The fewest incoming edges (a join: 2; the start: 0)."
    )

    @classmethod
    def of(cls, info: NodeTypeInfo) -> NodeTypeType:
        return cls(
            type=info.type,
            label=info.label,
            description=info.description,
            data_schema=_json(info.data_schema),
            has_target=info.has_target,
            has_source=info.has_source,
            source_handles=list(info.source_handles),
            optional_handles=list(info.optional_handles),
            min_outgoing=info.min_outgoing,
            max_outgoing=info.max_outgoing,
            min_incoming=info.min_incoming,
        )


@strawberry.enum
class ExpressionKind(Enum):
    """What `checkExpression` checks."""

    EXPRESSION = strawberry.enum_value(
        "EXPRESSION", description="A condition's CEL expression (no `{{ }}`)."
    )
    TEMPLATE = strawberry.enum_value(
        "TEMPLATE", description="A template string: text with `{{ expr }}` placeholders."
    )


@strawberry.type
class ExpressionProblem:
    """What is wrong with the text, and where."""

    message: str
    position: int | None = strawberry.field(
        description="A 0-based offset into the text, in characters (Unicode code points); "
        "null when no place is known."
    )

    @classmethod
    def of(cls, found: ProblemFound) -> ExpressionProblem:
        return cls(message=found.message, position=found.position)


@strawberry.type
class ExpressionCheck:
    """The outcome of `checkExpression`."""

    valid: bool
    problems: list[ExpressionProblem]


@strawberry.type
class Health:
    """Whether this API process can serve: its database and its event listener.
    `status` is "ok" when it is `ready` and its listener connected (or it polls, with no
    listener to connect), else "degraded".
    REST's `/api/health` reports the same check."""

    status: str
    database: str = strawberry.field(description='"ok", or "unreachable".')
    events_listener: str = strawberry.field(
        description='"ok", "disconnected", or "polling" (no LISTEN connection: '
        "FLOWSYNC_DATABASE_POOLER=transaction without FLOWSYNC_LISTEN_DATABASE_URL).",
    )
    ready: bool = strawberry.field(
        description="The database answers and this release's code can run on its schema "
        "(at the migrations' head, or newer by additive changes only: a rolling upgrade)."
    )
    migrations: str = strawberry.field(
        description='"ok" (see ready), "at <revision>" or "not migrated".'
    )
