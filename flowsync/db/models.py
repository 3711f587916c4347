"""The data model of the whole product: typed SQLAlchemy 2 tables.

Designed up front for every issue: owners and API keys, workflows and their immutable
versions, executions pinned to a version, one step row per node, the per-execution event
log (its `sequence` feeds timelines and live subscriptions), triggers and their firings,
the job queue and dead letters, the audit log. Every hot query has an index; the queue's
claim runs over a partial index. Finished jobs are deleted from `jobs`, so the hot table
holds only work that is queued or running (the history lives in `step_executions`).
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ColumnElement,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
    any_,
    func,
    text,
)
from sqlalchemy import cast as cast_
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

if TYPE_CHECKING:
    from asyncpg import Record

# Names for constraints, so that Alembic's autogenerate and our migrations agree.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = dict[str, Any]


class Base(DeclarativeBase):
    """Declarative base with FlowSync's naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
        Json: JSONB,
        Any: JSONB,
    }


M = TypeVar("M", bound=Base)


@functools.cache
def _loader(cls: type[Base]) -> tuple[Callable[[], Any], tuple[tuple[str, str], ...]]:
    """`cls`'s instance factory and (attribute, column) pairs: looked up once."""
    mapper = sa_inspect(cls)
    return mapper.class_manager.new_instance, tuple(
        (a.key, a.columns[0].name) for a in mapper.column_attrs
    )


def loaded_many(cls: type[M], rows: Sequence[Record]) -> list[M]:
    """Instances of `cls`, each holding its row's value of each of its columns as a
    query's load would (no change history, in no session): for rows that a statement of
    the queue's SQL returned (`RETURNING *`), instead of reading them back. All rows are
    one statement's (the same columns in the same order), so each column's place is
    found once. ~1.5 µs a row, where the constructor's attribute events cost ~20."""
    if not rows:
        return []
    new, columns = _loader(cls)
    names = list(rows[0].keys())
    values = operator.itemgetter(*(names.index(name) for _, name in columns))
    keys = [key for key, _ in columns]
    out = []
    for row in rows:
        instance = new()
        instance.__dict__.update(zip(keys, values(row), strict=True))
        out.append(instance)
    return out


def loaded_values(row: Base, names: AbstractSet[str]) -> Mapping[str, Any]:
    """`row`'s values of the columns `names` as it has them loaded, without an attribute
    read each (~0.25 µs apiece through the ORM: a batch start's reply reads 1,000 rows);
    through the ORM when one of them is not loaded (expired, deferred, never set)."""
    values = row.__dict__
    if names <= values.keys():
        return values
    return {name: getattr(row, name) for name in names}


def among(
    column: ColumnElement[uuid.UUID] | Mapped[uuid.UUID], ids: Iterable[uuid.UUID]
) -> ColumnElement[bool]:
    """`column = ANY($1::uuid[])`: one array parameter, so one statement (and one
    prepared plan) for any number of ids, where `in_` sends one parameter per id."""
    return column == any_(cast_(list(ids), ARRAY(Uuid)))


def _uuid_pk(default: str = "gen_random_uuid()") -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=text(default))


# Runs' and steps' ids: time-ordered, so that new rows append to their indexes
# (flowsync/ids.py, migration 0019).
_UUID7 = "flowsync_uuid7()"


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


_ROLE_CHECK = "role IN ('viewer', 'operator', 'editor', 'admin')"


class Owner(Base):
    """A tenant: every workflow, execution, trigger and audit entry belongs to one.

    `subject` is the stable identity: `key:<name>` for owners created with API keys, or
    `<issuer>|<sub>` for JWT principals."""

    __tablename__ = "owners"

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject: Mapped[str] = mapped_column(Text, unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class ApiKey(Base):
    """An API key, stored only as a SHA-256 hash; `prefix` is shown to users to tell keys
    apart and is never enough to authenticate."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # What the key may do in its owner's team (flowsync.roles); never above its creator's.
    role: Mapped[str] = mapped_column(Text, server_default=text("'admin'"))

    __table_args__ = (
        Index("ix_api_keys_owner", "owner_id", "created_at"),
        CheckConstraint(_ROLE_CHECK, name="role"),
    )


class Member(Base):
    """A JWT subject's role in an owner's team. `subject` is `jwt:<issuer>|<sub>`. A
    personal owner's own subject is its first admin; in a team named by a JWT claim, a
    row here overrides the role the claims give."""

    __tablename__ = "members"

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    added_by: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("owner_id", "subject", name="uq_members_owner_subject"),
        CheckConstraint(_ROLE_CHECK, name="role"),
    )


class Workflow(Base):
    """A named workflow. Its definition lives in immutable `WorkflowVersion` rows;
    `version` is the newest. Deleting sets `deleted_at`: running executions keep their
    pinned version and finish; the workflow disappears from every read."""

    __tablename__ = "workflows"

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        # Keyset pagination of an owner's live workflows, newest first.
        Index(
            "ix_workflows_owner_page",
            "owner_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        CheckConstraint("max_concurrency IS NULL OR max_concurrency > 0", name="concurrency"),
    )


class WorkflowVersion(Base):
    """One immutable version of a workflow's definition. `message` is what its author
    said of it (at most 500 characters); `author` the credential that made it, as audit
    entries name it (null for versions made before authors were kept)."""

    __tablename__ = "workflow_versions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[Json]
    created_at: Mapped[datetime] = _created()
    message: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("workflow_id", "version", name="uq_workflow_versions_number"),
        CheckConstraint("char_length(message) <= 500", name="message_length"),
    )


# A run's steps, events and jobs: written by the engine only in a transaction that
# inserts the run or holds its row locked, so none can refer to a run that is gone. They
# have no foreign key to it (each key check cost every row written: ~40 % of a batch
# start); the trigger executions_children_gone (migration 0018) deletes them with it,
# once per DELETE statement, as the keys' cascade did.
EXECUTION_CHILDREN = ("step_executions", "execution_events", "jobs")


class Execution(Base):
    """One run of a workflow, pinned to the version it started with.

    `last_sequence` is the sequence number of the newest event in `execution_events`;
    bumping it also serialises the engine's transitions of one execution."""

    __tablename__ = "executions"

    id: Mapped[uuid.UUID] = _uuid_pk(_UUID7)
    # The owner and version are the workflow's, read with it when the run is inserted
    # (migration 0020). No key either to the workflow, which a start reads FOR KEY SHARE
    # once instead of a check per run; a deleted workflow's runs go with it by trigger
    # (migration 0021), and so an owner's, through its workflows' cascade.
    owner_id: Mapped[uuid.UUID]
    workflow_id: Mapped[uuid.UUID]
    workflow_version_id: Mapped[uuid.UUID]
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    input: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    output: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[Json | None]
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    # This and the other links below (retry_of_id, parent_execution_id) are no foreign
    # keys: a check queued for every run inserted, NULL or not; what their ON DELETE SET
    # NULL did, triggers do (migration 0022), and their writers hold the linked row.
    trigger_id: Mapped[uuid.UUID | None]
    trigger_type: Mapped[str] = mapped_column(Text, server_default=text("'MANUAL'"))
    trigger_data: Mapped[Json] = mapped_column(server_default=text("'{}'::jsonb"))
    retry_of_id: Mapped[uuid.UUID | None]
    last_sequence: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A child workflow's run: the execution and the `workflow` step that started it, and
    # how deep it is under its root run (0: not a child). The step is no foreign key
    # (step_executions already refers to executions); it goes with its parent run.
    parent_execution_id: Mapped[uuid.UUID | None]
    parent_step_id: Mapped[uuid.UUID | None]
    workflow_depth: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Higher runs first (-100..100): its jobs carry it negated, as the claim takes the
    # lowest jobs.priority first (ix_jobs_claim).
    priority: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    # The definition's concurrencyKey as evaluated at the start, and its limit then: at
    # most that many runs of the workflow with the same key RUNNING, the rest PENDING.
    concurrency_key: Mapped[str | None] = mapped_column(Text)
    concurrency_key_limit: Mapped[int | None] = mapped_column(Integer)
    # The run's trace: the W3C traceparent of its execution span (flowsync/tracing.py),
    # which every worker continues; None when it was started with tracing off.
    trace_context: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_executions_parent",
            "parent_execution_id",
            postgresql_where=text("parent_execution_id IS NOT NULL"),
        ),
        Index(
            "uq_executions_idempotency",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_executions_owner_page", "owner_id", text("created_at DESC"), text("id DESC")),
        Index(
            "ix_executions_workflow_page",
            "workflow_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        # A trigger's runs, newest first (the `triggerId` filter; it also keeps deleting a
        # trigger, which clears their trigger_id, from scanning every execution).
        Index(
            "ix_executions_trigger_page",
            "trigger_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("trigger_id IS NOT NULL"),
        ),
        # Active runs per workflow: concurrency limits and "what is still running".
        Index(
            "ix_executions_active",
            "workflow_id",
            "status",
            postgresql_where=text("status IN ('PENDING', 'RUNNING')"),
        ),
        # A trigger's maxConcurrentRuns: its running runs counted, its oldest waiting
        # run found (a backfill's, made in one transaction, in fire-time order).
        Index(
            "ix_executions_trigger_running",
            "trigger_id",
            postgresql_where=text("trigger_id IS NOT NULL AND status = 'RUNNING'"),
        ),
        Index(
            "ix_executions_trigger_pending",
            "trigger_id",
            "created_at",
            text("(trigger_data ->> 'scheduledAt')"),
            "id",
            postgresql_where=text("trigger_id IS NOT NULL AND status = 'PENDING'"),
        ),
        # Retention's scan: finished runs, oldest first.
        Index(
            "ix_executions_finished",
            "finished_at",
            postgresql_where=text("status IN ('COMPLETED', 'FAILED', 'CANCELLED')"),
        ),
        # Deleting a run sets its retries' retry_of_id to NULL: found by index, not a scan.
        Index(
            "ix_executions_retry_of",
            "retry_of_id",
            postgresql_where=text("retry_of_id IS NOT NULL"),
        ),
        # A key's running runs counted, its oldest waiting run found (concurrencyKey).
        Index(
            "ix_executions_key_running",
            "workflow_id",
            "concurrency_key",
            postgresql_where=text("concurrency_key IS NOT NULL AND status = 'RUNNING'"),
        ),
        Index(
            "ix_executions_key_pending",
            "workflow_id",
            "concurrency_key",
            "created_at",
            "id",
            postgresql_where=text("concurrency_key IS NOT NULL AND status = 'PENDING'"),
        ),
        CheckConstraint(
            "status IN ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')", name="status"
        ),
        CheckConstraint("priority BETWEEN -100 AND 100", name="priority"),
        # Every transition bumps last_sequence: leave room for HOT updates.
        {"postgresql_with": {"fillfactor": "70"}},
    )


class StepExecution(Base):
    """The state of one node in one execution: one row per node, created with the run.
    `attempt` counts the attempts made; each attempt is also an event."""

    __tablename__ = "step_executions"

    id: Mapped[uuid.UUID] = _uuid_pk(_UUID7)
    # No foreign key (see EXECUTION_CHILDREN): it goes with its execution by trigger.
    execution_id: Mapped[uuid.UUID]
    node_id: Mapped[str] = mapped_column(Text)
    node_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'PENDING'"))
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    input: Mapped[Any | None] = mapped_column(JSONB)
    output: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[Json | None]
    # No foreign key: cleared by trigger when the step it names goes (migration 0022).
    reused_from_id: Mapped[uuid.UUID | None]
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The `flowsync worker` process that ran the step's latest attempt (its id, as in the
    # workers table, and its host name); NULL for a step no worker ran.
    worker_id: Mapped[str | None] = mapped_column(Text)
    worker_host: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("execution_id", "node_id", name="uq_step_executions_node"),
        # Deleting a run's steps clears the reused_from_id of steps that reused them.
        Index(
            "ix_step_executions_reused_from",
            "reused_from_id",
            postgresql_where=text("reused_from_id IS NOT NULL"),
        ),
        CheckConstraint(
            "status IN ('PENDING','QUEUED','RUNNING','WAITING','COMPLETED','FAILED',"
            "'SKIPPED','CANCELLED')",
            name="status",
        ),
        # Each step row is updated two or three times: leave room for HOT updates.
        {"postgresql_with": {"fillfactor": "70"}},
    )


class ExecutionEvent(Base):
    """The append-only event log: every change of an execution and its steps, numbered by
    `sequence` per execution (1, 2, 3, … with no gap). `id` orders events across
    executions for owner- and workflow-wide subscriptions.

    No foreign key: execution, owner, workflow and step are copied from rows that the
    same transaction has locked, and every key check costs each step; the events go
    with their execution by trigger (see EXECUTION_CHILDREN)."""

    __tablename__ = "execution_events"

    execution_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    owner_id: Mapped[uuid.UUID]
    workflow_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    step_id: Mapped[uuid.UUID | None]
    node_id: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[Json | None]
    at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # Owner-wide reads (and workflow-wide ones, filtered) go by id after a cursor.
        Index("ix_execution_events_owner", "owner_id", "id"),
    )


class EventWatcher(Base):
    """An API process that has live subscribers for an owner's events. Transitions send
    NOTIFY only while such a row is fresh, so that runs nobody watches pay nothing for it
    (every NOTIFY wakes every listening backend). Unlogged: it is rebuilt by the API
    processes within seconds of a restart."""

    __tablename__ = "event_watchers"

    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    watcher: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime]

    __table_args__ = ({"prefixes": ["UNLOGGED"]},)


class Trigger(Base):
    """How executions start: MANUAL, WEBHOOK (optionally signed with `secret`) or CRON
    (`config` holds the expression, time zone and misfire policy)."""

    __tablename__ = "triggers"

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    config: Mapped[Json] = mapped_column(server_default=text("'{}'::jsonb"))
    secret: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    # At most this many of its runs RUNNING at once; the rest wait PENDING (None: no limit).
    max_concurrent_runs: Mapped[int | None] = mapped_column(Integer)
    # Its runs' priority, unless a start gives one (None: the definition's).
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (
        Index("ix_triggers_owner_page", "owner_id", text("created_at DESC"), text("id DESC")),
        Index("ix_triggers_workflow", "workflow_id"),
        # The scheduler's scan: enabled cron triggers that are due.
        Index(
            "ix_triggers_due",
            "next_run_at",
            postgresql_where=text("enabled AND type = 'CRON'"),
        ),
        CheckConstraint("type IN ('MANUAL','WEBHOOK','CRON')", name="type"),
        CheckConstraint(
            "max_concurrent_runs IS NULL OR max_concurrent_runs > 0", name="max_concurrent_runs"
        ),
        CheckConstraint("priority IS NULL OR priority BETWEEN -100 AND 100", name="priority"),
    )


class TriggerFiring(Base):
    """One firing of a cron trigger. The primary key (trigger, fire time) makes every tick
    fire once, however many schedulers race for it."""

    __tablename__ = "trigger_firings"

    trigger_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("triggers.id", ondelete="CASCADE"), primary_key=True
    )
    fire_at: Mapped[datetime] = mapped_column(primary_key=True)
    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("executions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        # Deleting a run (retention) clears its firing's execution_id: found by index.
        Index(
            "ix_trigger_firings_execution",
            "execution_id",
            postgresql_where=text("execution_id IS NOT NULL"),
        ),
    )


class Job(Base):
    """A unit of queued work: run one step. Rows exist only while queued or running.

    Unclaimed: `lease_token IS NULL`. A claim sets `lease_token` and `lease_expires_at`;
    completion and failure must present the token. `attempts` counts claims."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No foreign keys (see EXECUTION_CHILDREN): a job goes with its execution by trigger.
    execution_id: Mapped[uuid.UUID]
    step_id: Mapped[uuid.UUID]
    priority: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    run_at: Mapped[datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    lease_token: Mapped[uuid.UUID | None]
    lease_expires_at: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        # The claim: unclaimed jobs in (priority, run_at, id) order; an index-ordered LIMIT.
        Index(
            "ix_jobs_claim",
            "priority",
            "run_at",
            "id",
            postgresql_where=text("lease_token IS NULL"),
        ),
        # The reaper: leased jobs whose lease expired.
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            postgresql_where=text("lease_token IS NOT NULL"),
        ),
        Index("ix_jobs_execution", "execution_id"),
        # Room on each page for HOT updates: a claim rewrites the row in place.
        {"postgresql_with": {"fillfactor": "70"}},
    )


class DeadLetter(Base):
    """A job that failed its last attempt, kept with its error for inspection and redrive."""

    __tablename__ = "dead_letters"

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    step_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("step_executions.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[Json]
    payload: Mapped[Json] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created()
    redriven_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_dead_letters_owner_page", "owner_id", text("created_at DESC"), text("id DESC")),
        Index(
            "ix_dead_letters_execution", "execution_id", text("created_at DESC"), text("id DESC")
        ),
        # Retention's scan, oldest first; and the cascade from a deleted step.
        Index("ix_dead_letters_created", "created_at"),
        Index("ix_dead_letters_step", "step_id"),
    )


class AuditEntry(Base):
    """Who did what to which object, written in the same transaction as the change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No key (a check per entry): an owner's deletion takes its entries by trigger
    # (migration 0021).
    owner_id: Mapped[uuid.UUID]
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str] = mapped_column(Text)
    data: Mapped[Json] = mapped_column(server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("ix_audit_log_owner_page", "owner_id", text("id DESC")),
        Index("ix_audit_log_entity", "owner_id", "entity_type", "entity_id"),
        # One actor's entries, newest first (the `actor` filter).
        Index("ix_audit_log_actor", "owner_id", "actor", text("id DESC")),
        # Retention's scan, oldest first.
        Index("ix_audit_log_at", "at"),
    )


class WebhookSignature(Base):
    """A signature a signed webhook delivery was accepted with, kept until it would be
    stale anyway (`expires_at`): the primary key refuses its second use (a replay)."""

    __tablename__ = "webhook_signatures"

    trigger_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("triggers.id", ondelete="CASCADE"), primary_key=True
    )
    signature: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        # Expired rows are deleted in bulk (see services.webhooks).
        Index("ix_webhook_signatures_expires_at", "expires_at"),
    )


class WorkerProcess(Base):
    """A running `flowsync worker` process (or one that stopped without saying so). Each
    writes its row at start, refreshes `last_heartbeat_at` and `running` (steps in flight)
    on every lease heartbeat, and deletes it on a clean exit; a row whose heartbeat is
    older than three of its intervals is a dead worker's. Not owned by a tenant."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    hostname: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    heartbeat_ms: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = _created()
    last_heartbeat_at: Mapped[datetime] = _created()

    __table_args__ = (
        # The list reads recent heartbeats only; old rows of crashed workers are pruned.
        Index("ix_workers_heartbeat", "last_heartbeat_at"),
    )


class Signal(Base):
    """A signal sent to an execution (a wait or approval step's outcome). Kept
    (`taken_at` NULL) until a step waiting for its `name` takes it, oldest first; then
    `taken_at` and `node_id` say which step took it. Written in the same transaction as
    the step it completes."""

    __tablename__ = "signals"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any] = mapped_column(server_default=text("'{}'::jsonb"))
    actor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    taken_at: Mapped[datetime | None]
    node_id: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # A run's kept signals of one name, oldest first: what a wait step takes.
        Index(
            "ix_signals_kept",
            "execution_id",
            "name",
            "id",
            postgresql_where=text("taken_at IS NULL"),
        ),
        # The cascade from a deleted execution (retention), and a run's signals.
        Index("ix_signals_execution", "execution_id", "id"),
    )


class Secret(Base):
    """A named secret of an owner, encrypted (flowsync/secrets_crypto.py): `ciphertext` is
    the nonce and the AES-GCM output, `key_id` names the key that encrypted it. No face
    ever reads the value back; only a worker decrypts it, to render an action's request.
    `set_by` is the actor that last set it."""

    __tablename__ = "secrets"

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    set_by: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_secrets_owner_name"),)
