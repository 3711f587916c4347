"""The workflow service: the one place where workflows are created, read, changed and
deleted, for GraphQL, REST and the CLI alike.

Every call is scoped to the principal's owner: another owner's workflow answers exactly as
a missing one (`NotFound`). Every change writes an audit entry in its own transaction.
"""

from __future__ import annotations

import builtins
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import Trigger, Workflow, WorkflowVersion
from flowsync.engine.validation import validate_definition, validate_workflow_document
from flowsync.errors import DefinitionInvalid, NotFound, PayloadTooLarge, Problem
from flowsync.services import audit
from flowsync.services.pagination import Page, decode_cursor, encode_cursor, page_size
from flowsync.services.principal import Principal

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class WorkflowUpdate:
    """A partial change; fields left as None stay as they are."""

    name: str | None = None
    description: str | None = None
    definition: object = _UNSET


def _parse_id(value: object, what: str = "workflow") -> uuid.UUID:
    """Ids come from users: a malformed one is simply not found."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(f"No {what} with id {value!r}.") from exc


class WorkflowService:
    """Create, list, read, update, delete and version workflows."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_definition_bytes: int):
        self._sessions = sessions
        self._max_bytes = max_definition_bytes

    def _check_size(self, definition: object) -> None:
        size = len(json.dumps(definition, separators=(",", ":")).encode())
        if size > self._max_bytes:
            raise PayloadTooLarge(
                f"The definition is {size} bytes of JSON; the limit is {self._max_bytes}.",
                [Problem("$.definition", f"{size} bytes, over the limit of {self._max_bytes}")],
            )

    async def create(
        self, principal: Principal, name: object, description: object, definition: object
    ) -> Workflow:
        """Validate and store a new workflow at version 1. Nothing is stored when any rule
        is broken: `DefinitionInvalid` lists every problem with its JSON path."""
        self._check_size(definition)
        doc = validate_workflow_document(
            {"name": name, "description": description, "definition": definition}
        )
        async with self._sessions.begin() as session:
            workflow = Workflow(
                owner_id=principal.owner_id,
                name=doc.name,
                description=doc.description,
                version=1,
            )
            session.add(workflow)
            await session.flush()
            session.add(
                WorkflowVersion(
                    workflow_id=workflow.id, version=1, definition=doc.workflow.definition
                )
            )
            await audit.record(
                session, principal, "workflow.created", "workflow", workflow.id,
                {"name": doc.name, "version": 1},
            )  # fmt: skip
            await session.flush()
            await session.refresh(workflow)
        return workflow

    async def _get_live(
        self, session: AsyncSession, principal: Principal, workflow_id: object, *, lock: bool
    ) -> Workflow:
        stmt = select(Workflow).where(
            Workflow.id == _parse_id(workflow_id),
            Workflow.owner_id == principal.owner_id,
            Workflow.deleted_at.is_(None),
        )
        if lock:
            stmt = stmt.with_for_update()
        workflow = (await session.execute(stmt)).scalar_one_or_none()
        if workflow is None:
            raise NotFound(f"No workflow with id {workflow_id}.")
        return workflow

    async def get(self, principal: Principal, workflow_id: object) -> Workflow:
        """The workflow, or NotFound (also for another owner's or a deleted one)."""
        async with self._sessions() as session:
            return await self._get_live(session, principal, workflow_id, lock=False)

    async def get_definition(
        self, principal: Principal, workflow_id: object, version: int | None = None
    ) -> WorkflowVersion:
        """One version of the workflow's definition (default: the newest)."""
        async with self._sessions() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=False)
            row = (
                await session.execute(
                    select(WorkflowVersion).where(
                        WorkflowVersion.workflow_id == workflow.id,
                        WorkflowVersion.version == (version or workflow.version),
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"Workflow {workflow_id} has no version {version}.")
            return row

    async def definitions(
        self, principal: Principal, workflow_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, WorkflowVersion]:
        """The newest definition of each of the caller's workflows, in one query (for
        list views and DataLoaders). Ids of other owners are left out."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(WorkflowVersion)
                .join(Workflow, Workflow.id == WorkflowVersion.workflow_id)
                .where(
                    Workflow.id.in_(workflow_ids),
                    Workflow.owner_id == principal.owner_id,
                    WorkflowVersion.version == Workflow.version,
                )
            )
            return {v.workflow_id: v for v in rows.scalars()}

    async def list(
        self, principal: Principal, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Workflow]:
        """The caller's workflows, newest first, a page at a time (keyset pagination)."""
        size = page_size(limit)
        stmt = select(Workflow).where(
            Workflow.owner_id == principal.owner_id, Workflow.deleted_at.is_(None)
        )
        if cursor is not None:
            after = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Workflow.created_at < after.created_at,
                    and_(
                        Workflow.created_at == after.created_at,
                        Workflow.id < uuid.UUID(after.id),
                    ),
                )
            )
        stmt = stmt.order_by(Workflow.created_at.desc(), Workflow.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
        return Page(rows, next_cursor)

    async def update(
        self, principal: Principal, workflow_id: object, change: WorkflowUpdate
    ) -> Workflow:
        """Apply a partial change. A new immutable version is made only when the
        definition really changes; renames and new descriptions keep the version."""
        fields: dict[str, object] = {}
        if change.name is not None:
            fields["name"] = change.name
        if change.description is not None:
            fields["description"] = change.description
        new_definition: dict[str, Any] | None = None
        if change.definition is not _UNSET:
            self._check_size(change.definition)
        async with self._sessions.begin() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=True)
            doc = validate_workflow_document(
                {
                    "name": fields.get("name", workflow.name),
                    "description": fields.get("description", workflow.description),
                    "definition": (
                        change.definition
                        if change.definition is not _UNSET
                        else await self._current_definition(session, workflow)
                    ),
                }
            )
            if change.definition is not _UNSET:
                current = await self._current_definition(session, workflow)
                if doc.workflow.definition != current:
                    new_definition = doc.workflow.definition
            bumped = new_definition is not None
            if bumped:
                workflow.version += 1
                session.add(
                    WorkflowVersion(
                        workflow_id=workflow.id,
                        version=workflow.version,
                        definition=new_definition,
                    )
                )
            workflow.name = doc.name
            workflow.description = doc.description
            workflow.updated_at = func.now()
            await audit.record(
                session, principal, "workflow.updated", "workflow", workflow.id,
                {"version": workflow.version, "versionBumped": bumped,
                 "fields": sorted([*fields, *(["definition"] if bumped else [])])},
            )  # fmt: skip
            await session.flush()
            await session.refresh(workflow)
        return workflow

    async def _current_definition(
        self, session: AsyncSession, workflow: Workflow
    ) -> dict[str, Any]:
        return (
            await session.execute(
                select(WorkflowVersion.definition).where(
                    WorkflowVersion.workflow_id == workflow.id,
                    WorkflowVersion.version == workflow.version,
                )
            )
        ).scalar_one()

    async def delete(self, principal: Principal, workflow_id: object) -> None:
        """Delete a workflow: it disappears from every read and its triggers stop firing.
        Executions already running keep their pinned version and run to their end; their
        history stays readable."""
        async with self._sessions.begin() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=True)
            workflow.deleted_at = func.now()
            await session.execute(
                update(Trigger).where(Trigger.workflow_id == workflow.id).values(enabled=False)
            )
            await audit.record(session, principal, "workflow.deleted", "workflow", workflow.id)

    async def versions(
        self, principal: Principal, workflow_id: object
    ) -> builtins.list[WorkflowVersion]:
        """Every version of the workflow, newest first."""
        async with self._sessions() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=False)
            rows = await session.execute(
                select(WorkflowVersion)
                .where(WorkflowVersion.workflow_id == workflow.id)
                .order_by(WorkflowVersion.version.desc())
            )
            return list(rows.scalars())

    @staticmethod
    def validate(definition: object) -> None:
        """Validate a definition without storing anything (raises DefinitionInvalid)."""
        validate_definition(definition, path="$.definition")


__all__ = ["DefinitionInvalid", "WorkflowService", "WorkflowUpdate"]
