"""DataLoaders: each batches one kind of nested read into one service call, so that a
list costs a constant number of SQL statements whatever its length. A `Loaders` is made
per operation (and per message of a subscription), so nothing is cached longer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cached_property

from strawberry.dataloader import DataLoader

from flowsync.db.models import (
    Execution,
    ExecutionEvent,
    StepExecution,
    Trigger,
    Workflow,
    WorkflowVersion,
)
from flowsync.services.container import Services
from flowsync.services.pagination import Page
from flowsync.services.principal import Principal

# (workflow id, page size, status, cursor): a page of a workflow's executions.
PageKey = tuple[uuid.UUID, int | None, str | None, str | None]


class Loaders:
    """The loaders of one operation, scoped to its principal."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.principal = principal

    # Made on first use: a subscription message that selects no nested field makes none.
    @cached_property
    def steps(self) -> DataLoader[uuid.UUID, list[StepExecution]]:
        return DataLoader(load_fn=self._steps)

    @cached_property
    def step(self) -> DataLoader[uuid.UUID, StepExecution | None]:
        return DataLoader(load_fn=self._step)

    @cached_property
    def execution(self) -> DataLoader[uuid.UUID, Execution | None]:
        return DataLoader(load_fn=self._execution)

    @cached_property
    def children(self) -> DataLoader[uuid.UUID, list[Execution]]:
        return DataLoader(load_fn=self._children)

    @cached_property
    def timeline(self) -> DataLoader[uuid.UUID, list[ExecutionEvent]]:
        return DataLoader(load_fn=self._timeline)

    @cached_property
    def workflow(self) -> DataLoader[uuid.UUID, Workflow | None]:
        return DataLoader(load_fn=self._workflow)

    @cached_property
    def definition(self) -> DataLoader[uuid.UUID, WorkflowVersion | None]:
        return DataLoader(load_fn=self._definition)

    @cached_property
    def version(self) -> DataLoader[uuid.UUID, WorkflowVersion | None]:
        """Workflow versions by id (an execution's pinned definition)."""
        return DataLoader(load_fn=self._version)

    @cached_property
    def triggers(self) -> DataLoader[uuid.UUID, list[Trigger]]:
        return DataLoader(load_fn=self._triggers)

    async def _triggers(self, keys: Sequence[uuid.UUID]) -> list[list[Trigger]]:
        found = await self.services.triggers.of_workflows(self.principal, list(keys))
        return [found.get(k, []) for k in keys]

    @cached_property
    def executions_page(self) -> DataLoader[PageKey, Page[Execution]]:
        return DataLoader(load_fn=self._pages)

    async def _steps(self, keys: Sequence[uuid.UUID]) -> list[list[StepExecution]]:
        found = await self.services.executions.steps(self.principal, list(keys))
        return [found.get(k, []) for k in keys]

    async def _step(self, keys: Sequence[uuid.UUID]) -> list[StepExecution | None]:
        found = await self.services.executions.steps_by_id(self.principal, list(keys))
        return [found.get(k) for k in keys]

    async def _execution(self, keys: Sequence[uuid.UUID]) -> list[Execution | None]:
        found = await self.services.executions.get_many(self.principal, list(keys))
        return [found.get(k) for k in keys]

    async def _children(self, keys: Sequence[uuid.UUID]) -> list[list[Execution]]:
        found = await self.services.executions.children(self.principal, list(keys))
        return [found.get(k, []) for k in keys]

    async def _timeline(self, keys: Sequence[uuid.UUID]) -> list[list[ExecutionEvent]]:
        found = await self.services.executions.timelines(self.principal, list(keys))
        return [found.get(k, []) for k in keys]

    async def _workflow(self, keys: Sequence[uuid.UUID]) -> list[Workflow | None]:
        found = await self.services.workflows.get_many(self.principal, list(keys))
        return [found.get(k) for k in keys]

    async def _definition(self, keys: Sequence[uuid.UUID]) -> list[WorkflowVersion | None]:
        found = await self.services.workflows.definitions(self.principal, list(keys))
        return [found.get(k) for k in keys]

    async def _version(self, keys: Sequence[uuid.UUID]) -> list[WorkflowVersion | None]:
        found = await self.services.workflows.versions_by_id(self.principal, list(keys))
        return [found.get(k) for k in keys]

    async def _pages(self, keys: Sequence[PageKey]) -> list[Page[Execution]]:
        # One query per distinct (size, status, cursor): one for a whole list of
        # workflows that ask alike.
        groups: dict[tuple[int | None, str | None, str | None], list[uuid.UUID]] = {}
        for workflow_id, size, status, cursor in keys:
            groups.setdefault((size, status, cursor), []).append(workflow_id)
        pages: dict[PageKey, Page[Execution]] = {}
        for (size, status, cursor), ids in groups.items():
            found = await self.services.executions.first_pages(
                self.principal, ids, limit=size, status=status, cursor=cursor
            )
            for workflow_id, page in found.items():
                pages[(workflow_id, size, status, cursor)] = page
        return [pages[k] for k in keys]
