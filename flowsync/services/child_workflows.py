"""Save-time checks of `workflow` nodes (child workflows) that need the database: the
workflow a node calls exists and is the owner's (another owner's answers as a missing
one, so that its existence is not revealed), a pinned version exists, and no chain of
workflows calls back the workflow being saved (A → B → A).

A chain is followed through the versions that would run if a step started now: a
node's pinned version, else its workflow's newest. Versions change later, so the
engine also limits the depth of child runs (FLOWSYNC_MAX_WORKFLOW_DEPTH).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flowsync.db.models import Workflow, WorkflowVersion
from flowsync.engine.definition import NodeType
from flowsync.errors import DefinitionInvalid, Problem

__all__ = ["ChildRef", "check_children", "child_refs"]

# How many workflows a cycle search reads at most: past this, the chain is refused as
# too deep (the run-time depth limit would stop it anyway).
MAX_WORKFLOWS_FOLLOWED = 1_000


@dataclass(frozen=True, slots=True)
class ChildRef:
    """One `workflow` node of a definition: where it is and what it calls."""

    index: int
    node_id: str
    workflow_id: uuid.UUID
    version: int | None


def child_refs(definition: Mapping[str, Any]) -> Iterator[ChildRef]:
    """The `workflow` nodes of a (validated, normalized) definition, in document order."""
    nodes = definition.get("nodes")
    for index, node in enumerate(nodes if isinstance(nodes, list) else ()):
        if not isinstance(node, dict) or node.get("type") != NodeType.WORKFLOW.value:
            continue
        data = node.get("data")
        if not isinstance(data, dict):
            continue
        try:
            target = uuid.UUID(str(data.get("workflowId")))
        except ValueError:
            continue
        version = data.get("version")
        yield ChildRef(
            index, str(node.get("id")), target, version if isinstance(version, int) else None
        )


def _path(base: str, ref: ChildRef, key: str) -> str:
    return f"{base}.nodes[{ref.index}].data.{key}"


async def check_children(
    session: AsyncSession,
    owner_id: uuid.UUID,
    saving: uuid.UUID | None,
    definition: Mapping[str, Any],
    base: str = "$.definition",
) -> None:
    """Raise `DefinitionInvalid` listing every `workflow` node of `definition` (to be
    saved as workflow `saving`, None for a new one) that calls an unknown workflow (or
    another owner's, or a deleted one), a version that does not exist, or a workflow
    whose chain of calls leads back to `saving`."""
    refs = list(child_refs(definition))
    if not refs:
        return
    problems: list[Problem] = []
    for ref in refs:
        found = await _workflow(session, owner_id, ref.workflow_id)
        if found is None:
            problems.append(
                Problem(
                    _path(base, ref, "workflowId"),
                    f"no workflow with id {ref.workflow_id}",
                    ref.node_id,
                )
            )
            continue
        if ref.version is not None and ref.version > found.version:
            problems.append(
                Problem(
                    _path(base, ref, "version"),
                    f"workflow {ref.workflow_id} has no version {ref.version} "
                    f"(its newest is {found.version})",
                    ref.node_id,
                )
            )
            continue
        if saving is None:
            continue  # nothing can call a workflow that does not exist yet
        if ref.workflow_id == saving:
            problems.append(
                Problem(_path(base, ref, "workflowId"), "a workflow cannot call itself",
                        ref.node_id)
            )  # fmt: skip
            continue
        chain = await _chain_back(session, owner_id, saving, ref)
        if chain is not None:
            names = " → ".join(str(w) for w in [saving, *chain])
            problems.append(
                Problem(
                    _path(base, ref, "workflowId"),
                    f"workflows would call each other in a cycle: {names}",
                    ref.node_id,
                )
            )
    if problems:
        first = problems[0]
        raise DefinitionInvalid(
            f"the workflow is invalid: {first.path}: {first.message}"
            if len(problems) == 1
            else f"the workflow has {len(problems)} problems; the first: "
            f"{first.path}: {first.message}",
            problems,
        )


async def _workflow(
    session: AsyncSession, owner_id: uuid.UUID, workflow_id: uuid.UUID
) -> Workflow | None:
    return (
        await session.execute(
            select(Workflow).where(
                Workflow.id == workflow_id,
                Workflow.owner_id == owner_id,
                Workflow.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()


async def _definition(
    session: AsyncSession, owner_id: uuid.UUID, workflow_id: uuid.UUID, version: int | None
) -> Mapping[str, Any] | None:
    """The definition of `version` of the owner's workflow (None: its newest)."""
    query = (
        select(WorkflowVersion.definition)
        .join(Workflow, Workflow.id == WorkflowVersion.workflow_id)
        .where(
            Workflow.id == workflow_id,
            Workflow.owner_id == owner_id,
            Workflow.deleted_at.is_(None),
            WorkflowVersion.version == (version if version is not None else Workflow.version),
        )
    )
    found = (await session.execute(query)).scalar_one_or_none()
    return found if isinstance(found, dict) else None


async def _chain_back(
    session: AsyncSession, owner_id: uuid.UUID, saving: uuid.UUID, ref: ChildRef
) -> list[uuid.UUID] | None:
    """The chain of workflows from `ref`'s back to `saving`, if there is one (depth
    first, each workflow read once)."""
    seen: set[tuple[uuid.UUID, int | None]] = set()
    stack: list[tuple[uuid.UUID, int | None, list[uuid.UUID]]] = [
        (ref.workflow_id, ref.version, [ref.workflow_id])
    ]
    while stack:
        workflow_id, version, chain = stack.pop()
        if (workflow_id, version) in seen:
            continue
        seen.add((workflow_id, version))
        if len(seen) > MAX_WORKFLOWS_FOLLOWED:
            return chain
        definition = await _definition(session, owner_id, workflow_id, version)
        if definition is None:
            continue
        for child in child_refs(definition):
            if child.workflow_id == saving:
                return [*chain, saving]
            stack.append((child.workflow_id, child.version, [*chain, child.workflow_id]))
    return None
