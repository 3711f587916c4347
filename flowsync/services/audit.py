"""Audit entries, written in the caller's transaction so that they exist exactly when the
change they describe was committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from flowsync.db.models import AuditEntry
from flowsync.services.principal import Principal
from flowsync.worker.queue import Connection


async def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
) -> None:
    """Add one audit entry to the session's open transaction."""
    await session.execute(
        insert(AuditEntry).values(
            owner_id=principal.owner_id,
            actor=principal.actor,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            data=data or {},
        )
    )


_INSERT_SQL = """
INSERT INTO audit_log (owner_id, actor, action, entity_type, entity_id, data)
VALUES ($1, $2, $3, $4, $5, $6)
"""


async def record_in(
    conn: Connection,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
) -> None:
    """The same entry, inside an asyncpg transaction (the engine's services use one)."""
    await conn.execute(
        _INSERT_SQL, principal.owner_id, principal.actor, action, entity_type,
        str(entity_id), data or {},
    )  # fmt: skip
