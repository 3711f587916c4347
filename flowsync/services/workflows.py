"""The workflow service: the one place where workflows are created, read, changed and
deleted, for GraphQL, REST and the CLI alike.

Every call is scoped to the principal's owner: another owner's workflow answers exactly as
a missing one (`NotFound`). Every change writes an audit entry in its own transaction.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import Trigger, Workflow, WorkflowVersion
from flowsync.engine.validation import (
    WorkflowDocument,
    validate_definition,
    validate_workflow_document,
)
from flowsync.errors import (
    DefinitionInvalid,
    InvalidInput,
    NotFound,
    Problem,
    VersionConflict,
    shown,
)
from flowsync.services import audit
from flowsync.services.child_workflows import check_children
from flowsync.services.inputs import checked_json_size, parse_id
from flowsync.services.pagination import (
    Page,
    cursor_items,
    decode_cursor,
    encode_cursor,
    page_size,
)
from flowsync.services.principal import Principal, require
from flowsync.services.secrets import check_secrets_known

_UNSET: Any = object()

MAX_VERSION_MESSAGE = 500


@dataclass(frozen=True, slots=True)
class WorkflowUpdate:
    """A partial change; fields left as None stay as they are (an empty description
    clears it)."""

    name: str | None = None
    description: str | None = None
    definition: object = _UNSET
    # A positive limit on running executions; None removes the limit; unset keeps it.
    max_concurrency: object = _UNSET
    # The version the caller last read: when the workflow is at another one, nothing
    # changes and the update is a Conflict (two editors cannot overwrite each other).
    expected_version: int | None = None
    # What the new version changes, kept with the version a new definition makes.
    version_message: object = None


def check_concurrency(value: object) -> int | None:
    """A workflow's concurrency limit: a positive integer, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise InvalidInput(
            "maxConcurrency must be a whole number from 1 to 100000, or null for no limit.",
            [Problem("$.maxConcurrency", f"got {shown(value)!r}")],
        )
    return value


def check_version_message(value: object) -> str | None:
    """A version's message: text of at most MAX_VERSION_MESSAGE characters once its
    surrounding whitespace is cut; blank is none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            "versionMessage must be a string.", [Problem("$.versionMessage", "must be a string")]
        )
    text = value.strip()
    if len(text) > MAX_VERSION_MESSAGE:
        raise InvalidInput(
            f"versionMessage is at most {MAX_VERSION_MESSAGE} characters long.",
            [Problem("$.versionMessage", f"{len(text)} characters, over {MAX_VERSION_MESSAGE}")],
        )
    if "\x00" in text:
        raise InvalidInput(
            "versionMessage cannot hold a NUL character (U+0000).",
            [Problem("$.versionMessage", "holds a NUL character (U+0000)")],
        )
    return text or None


# Versions are a 32-bit column: no workflow reaches a larger one.
MAX_VERSION = 2**31 - 1


def check_expected_version(value: object) -> int:
    """An expected version: a whole number from 1 to MAX_VERSION. Past it, the number
    is malformed, not stale (found by QA: 2**70 was a 409)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise InvalidInput(
            f"expectedVersion must be a whole number from 1 to {MAX_VERSION} "
            "(the version you read).",
            [Problem("$.expectedVersion", f"got {shown(value)!r}")],
        )
    return value


class WorkflowService:
    """Create, list, read, update, delete and version workflows."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_definition_bytes: int,
        on_limit_change: Callable[[uuid.UUID], Awaitable[None]] | None = None,
    ):
        self._sessions = sessions
        self._max_bytes = max_definition_bytes
        # Called after a change of a workflow's concurrency limit, to start what waits.
        self._on_limit_change = on_limit_change

    def _check_size(self, definition: object) -> None:
        checked_json_size(definition, "$.definition", self._max_bytes)

    async def create(
        self,
        principal: Principal,
        name: object,
        description: object,
        definition: object,
        max_concurrency: object = None,
        version_message: object = None,
    ) -> Workflow:
        """Validate and store a new workflow at version 1, its author the caller and its
        message `version_message`. Nothing is stored when any rule is broken:
        `DefinitionInvalid` lists every problem with its JSON path. With
        `max_concurrency`, executions beyond that many running wait PENDING, in order."""
        require(principal, "WorkflowService.create")
        limit = check_concurrency(max_concurrency)
        message = check_version_message(version_message)
        self._check_size(definition)
        doc = await _validated({"name": name, "description": description, "definition": definition})
        async with self._sessions.begin() as session:
            await check_children(session, principal.owner_id, None, doc.workflow.definition)
            await check_secrets_known(session, principal.owner_id, doc.workflow)
            workflow = Workflow(
                owner_id=principal.owner_id,
                name=doc.name,
                description=doc.description,
                version=1,
                max_concurrency=limit,
            )
            session.add(workflow)
            await session.flush()
            session.add(
                WorkflowVersion(
                    workflow_id=workflow.id,
                    version=1,
                    definition=doc.workflow.definition,
                    message=message,
                    author=principal.actor,
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
            Workflow.id == parse_id(workflow_id, "workflow"),
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
        require(principal, "WorkflowService.get")
        async with self._sessions() as session:
            return await self._get_live(session, principal, workflow_id, lock=False)

    async def get_definition(
        self, principal: Principal, workflow_id: object, version: int | None = None
    ) -> WorkflowVersion:
        """One version of the workflow's definition (default: the newest). InvalidInput
        naming `version` below 1 (0 is no version, not the newest)."""
        require(principal, "WorkflowService.get_definition")
        if version is not None and version < 1:
            raise InvalidInput(
                "A version is a whole number from 1 on.",
                [Problem("version", f"must be a whole number from 1 on, not {version}")],
            )
        async with self._sessions() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=False)
            row = (
                await session.execute(
                    select(WorkflowVersion).where(
                        WorkflowVersion.workflow_id == workflow.id,
                        WorkflowVersion.version
                        == (workflow.version if version is None else version),
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
        require(principal, "WorkflowService.definitions")
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

    async def versions_by_id(
        self, principal: Principal, version_ids: builtins.list[uuid.UUID]
    ) -> dict[uuid.UUID, WorkflowVersion]:
        """Versions by id, in one query (for DataLoaders: the version each execution is
        pinned to). A deleted workflow's versions are included, since its executions stay
        readable; other owners' are left out."""
        require(principal, "WorkflowService.versions_by_id")
        async with self._sessions() as session:
            rows = await session.execute(
                select(WorkflowVersion)
                .join(Workflow, Workflow.id == WorkflowVersion.workflow_id)
                .where(
                    WorkflowVersion.id.in_(version_ids),
                    Workflow.owner_id == principal.owner_id,
                )
            )
            return {v.id: v for v in rows.scalars()}

    async def list(
        self, principal: Principal, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Workflow]:
        """The caller's workflows, newest first, a page at a time (keyset pagination)."""
        require(principal, "WorkflowService.list")
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
        definition really changes; renames and new descriptions keep the version. A new
        version's author is the caller and its message `version_message` (which needs a
        definition; it is dropped when the definition is unchanged). With
        `expected_version`, a workflow at another version is a `VersionConflict` naming
        both, and nothing changes (the check and the change hold the workflow's row
        lock)."""
        require(principal, "WorkflowService.update")
        if change.expected_version is not None:
            check_expected_version(change.expected_version)
        message = check_version_message(change.version_message)
        if message is not None and change.definition is _UNSET:
            raise InvalidInput(
                "versionMessage describes the version a new definition makes; send the "
                "definition with it.",
                [Problem("$.versionMessage", "given without a definition")],
            )
        fields: dict[str, object] = {}
        if change.name is not None:
            fields["name"] = change.name
        if change.description is not None:
            fields["description"] = change.description or None  # "" clears it
        if change.max_concurrency is not _UNSET:
            fields["max_concurrency"] = check_concurrency(change.max_concurrency)
        new_definition: dict[str, Any] | None = None
        if change.definition is not _UNSET:
            self._check_size(change.definition)
        async with self._sessions.begin() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=True)
            expected = change.expected_version
            if expected is not None and expected != workflow.version:
                raise VersionConflict(
                    f"Workflow {workflow.id} is at version {workflow.version}, not the expected "
                    f"version {expected}: it changed since you read it. Nothing was changed; "
                    "read it again and reapply your change.",
                    workflow.version,
                    [Problem("$.expectedVersion", f"expected {expected}, current "
                             f"{workflow.version}")],
                )  # fmt: skip
            doc = await _validated(
                {
                    "name": fields.get("name", workflow.name),
                    "description": fields.get("description", workflow.description),
                    "definition": (
                        change.definition
                        if change.definition is not _UNSET
                        else await self._current_definition(session, workflow)
                    ),
                },
                stored=change.definition is _UNSET,
            )
            if change.definition is not _UNSET:
                current = await self._current_definition(session, workflow)
                if doc.workflow.definition != current:
                    new_definition = doc.workflow.definition
            bumped = new_definition is not None
            if new_definition is not None:
                await check_children(session, principal.owner_id, workflow.id, new_definition)
                await check_secrets_known(session, principal.owner_id, doc.workflow)
            if bumped:
                workflow.version += 1
                session.add(
                    WorkflowVersion(
                        workflow_id=workflow.id,
                        version=workflow.version,
                        definition=new_definition,
                        message=message,
                        author=principal.actor,
                    )
                )
            workflow.name = doc.name
            workflow.description = doc.description
            if "max_concurrency" in fields:
                workflow.max_concurrency = fields["max_concurrency"]  # type: ignore[assignment]
            workflow.updated_at = func.now()
            await audit.record(
                session, principal, "workflow.updated", "workflow", workflow.id,
                {"version": workflow.version, "versionBumped": bumped,
                 "fields": sorted([*fields, *(["definition"] if bumped else [])])},
            )  # fmt: skip
            await session.flush()
            await session.refresh(workflow)
        if "max_concurrency" in fields and self._on_limit_change is not None:
            await self._on_limit_change(workflow.id)
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
        require(principal, "WorkflowService.delete")
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
        require(principal, "WorkflowService.versions")
        async with self._sessions() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=False)
            rows = await session.execute(
                select(WorkflowVersion)
                .where(WorkflowVersion.workflow_id == workflow.id)
                .order_by(WorkflowVersion.version.desc())
            )
            return list(rows.scalars())

    async def get_many(
        self, principal: Principal, workflow_ids: builtins.list[uuid.UUID]
    ) -> dict[uuid.UUID, Workflow]:
        """Several of the caller's live workflows by id, in one query (for DataLoaders);
        other owners' and deleted ones are left out."""
        require(principal, "WorkflowService.get_many")
        async with self._sessions() as session:
            rows = await session.execute(
                select(Workflow).where(
                    Workflow.id.in_(workflow_ids),
                    Workflow.owner_id == principal.owner_id,
                    Workflow.deleted_at.is_(None),
                )
            )
            return {w.id: w for w in rows.scalars()}

    async def versions_page(
        self,
        principal: Principal,
        workflow_id: object,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[WorkflowVersion]:
        """The workflow's versions, newest first, a page at a time; the cursor is the
        last version number of the previous page."""
        require(principal, "WorkflowService.versions_page")
        size = page_size(limit)
        after: int | None = None
        if cursor is not None:
            after = _decode_version_cursor(cursor)
        async with self._sessions() as session:
            workflow = await self._get_live(session, principal, workflow_id, lock=False)
            stmt = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow.id)
            if after is not None:
                stmt = stmt.where(WorkflowVersion.version < after)
            rows = list(
                (
                    await session.execute(
                        stmt.order_by(WorkflowVersion.version.desc()).limit(size + 1)
                    )
                ).scalars()
            )
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, encode_version_cursor(rows[-1].version) if more else None)

    @staticmethod
    async def validate(definition: object) -> None:
        """Validate a definition without storing anything (raises DefinitionInvalid);
        in a thread, as a save's (see _validated)."""
        await asyncio.to_thread(validate_definition, definition, path="$.definition")


async def _validated(document: dict[str, Any], *, stored: bool = False) -> WorkflowDocument:
    """validate_workflow_document in a thread: a large definition's checks (each of its
    expressions compiled) take seconds of CPU, which must not stop the event loop and
    with it every other request of the process (and, under `flowsync dev`, its worker).
    The default executor's few threads bound how many run at once."""
    return await asyncio.to_thread(
        functools.partial(validate_workflow_document, document, stored=stored)
    )


def encode_version_cursor(version: int) -> str:
    """An opaque cursor after version `version` of a workflow."""
    return base64.urlsafe_b64encode(json.dumps(["v", version]).encode()).decode().rstrip("=")


def _decode_version_cursor(cursor: str) -> int:
    items = cursor_items(cursor)
    if len(items) == 2 and items[0] == "v":
        version = items[1]
        # A version is an integer column: anything past it is no cursor of ours.
        if isinstance(version, int) and not isinstance(version, bool) and 0 <= version < 2**31:
            return version
    raise InvalidInput(
        "The cursor is not valid; use a cursor from a previous page.",
        [Problem("cursor", "not a cursor returned by this API")],
    )


__all__ = ["DefinitionInvalid", "WorkflowService", "WorkflowUpdate"]
