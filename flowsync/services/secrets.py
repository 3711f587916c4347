"""Secrets: an owner's named values, encrypted at rest (flowsync/secrets_crypto.py) and
never read back by any face: a list gives names, times and who set each. Only a worker
decrypts a value, to render the action request that names it as `{{ secrets.NAME }}`
(see flowsync/worker/redaction.py for how it is kept out of everything stored).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import Secret
from flowsync.engine.validation import CompiledWorkflow
from flowsync.errors import DefinitionInvalid, InvalidInput, NotFound, Problem, shown
from flowsync.secrets_crypto import Keyring
from flowsync.services import audit
from flowsync.services.principal import Principal, require
from flowsync.worker.queue import Connection

__all__ = [
    "MAX_SECRET_BYTES",
    "SECRET_NAME",
    "SecretInfo",
    "SecretService",
    "check_secrets_known",
    "read_secret_values",
]

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What anyone may see of a secret: never its value."""

    name: str
    created_at: datetime
    updated_at: datetime
    set_by: str


def check_name(name: str) -> str:
    """`name` when it is a secret name; InvalidInput naming `name` otherwise."""
    if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
        raise InvalidInput(
            f"{shown(name)!r} is not a secret name: a letter or _ first, then letters, "
            "digits or _, at most 64 characters.",
            [Problem("name", "must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
        )
    return name


def check_value(value: str) -> str:
    """`value` when it can be stored; InvalidInput naming `value` when it is empty or over
    MAX_SECRET_BYTES of UTF-8. The message never holds the value."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            "A secret's value must be a non-empty string.",
            [Problem("value", "must be a non-empty string")],
        )
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_SECRET_BYTES:
        raise InvalidInput(
            f"A secret's value is at most {MAX_SECRET_BYTES:,} bytes (got {size:,}).",
            [Problem("value", f"at most {MAX_SECRET_BYTES:,} bytes of UTF-8 (got {size:,})")],
        )
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidInput(
            "A secret's value must be valid Unicode text.",
            [Problem("value", "holds a lone surrogate")],
        ) from None
    return value


def _info(row: Secret) -> SecretInfo:
    return SecretInfo(row.name, row.created_at, row.updated_at, row.set_by)


class SecretService:
    """Setting, listing and deleting an owner's secrets; rotating the key."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: Keyring):
        self._sessions = sessions
        self.keyring = keyring

    async def list(self, principal: Principal) -> list[SecretInfo]:
        """The owner's secrets by name: names, times and who set each, no values."""
        require(principal, "SecretService.list")
        async with self._sessions() as session:
            rows = await session.execute(
                select(Secret).where(Secret.owner_id == principal.owner_id).order_by(Secret.name)
            )
            return [_info(r) for r in rows.scalars()]

    async def set(self, principal: Principal, name: str, value: str) -> SecretInfo:
        """Create the secret `name`, or replace its value; an audit entry names it and the
        actor, never the value. InvalidInput for a bad name or value (nothing changes);
        NoSecretKey when no key is configured."""
        require(principal, "SecretService.set")
        check_name(name)
        check_value(value)
        sealed, key_id = self.keyring.encrypt(principal.owner_id, name, value)
        async with self._sessions.begin() as session:
            stmt = pg_insert(Secret).values(
                owner_id=principal.owner_id, name=name, ciphertext=sealed, key_id=key_id,
                set_by=principal.actor,
            )  # fmt: skip
            row = (
                await session.execute(
                    stmt.on_conflict_do_update(
                        constraint="uq_secrets_owner_name",
                        set_={
                            "ciphertext": stmt.excluded.ciphertext,
                            "key_id": stmt.excluded.key_id,
                            "set_by": stmt.excluded.set_by,
                            "updated_at": func.now(),
                        },
                    ).returning(Secret)
                )
            ).scalar_one()
            await audit.record(session, principal, "secret.set", "secret", name, {"name": name})
            return _info(row)

    async def delete(self, principal: Principal, name: str) -> SecretInfo:
        """Delete the owner's secret `name`; NotFound when it has none of that name (a
        name that is no secret name included)."""
        require(principal, "SecretService.delete")
        if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
            # Never sent to the database: a NUL byte, say, is no text PostgreSQL stores.
            raise NotFound(f"No secret named {shown(name)!r}.")
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    delete(Secret)
                    .where(Secret.owner_id == principal.owner_id, Secret.name == name)
                    .returning(Secret)
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"No secret named {shown(name)!r}.")
            await audit.record(session, principal, "secret.deleted", "secret", name, {"name": name})
            return _info(row)

    async def rotate_key(self) -> int:
        """Encrypt every secret (of every owner) again with the current key, in one
        transaction: the number of rows it encrypted again. Rows already under the current
        key are left alone; a row that does not decrypt stops it with SecretUnreadable
        and nothing changes."""
        key = self.keyring.require()
        changed = 0
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(Secret).where(Secret.key_id != key.id).with_for_update()
                )
            ).scalars()
            for row in rows:
                value = self.keyring.decrypt(row.owner_id, row.name, row.ciphertext, row.key_id)
                row.ciphertext, row.key_id = self.keyring.encrypt(row.owner_id, row.name, value)
                changed += 1
        return changed


_VALUES_SQL = """
SELECT name, ciphertext, key_id FROM secrets WHERE owner_id = $1 AND name = ANY($2::text[])
"""


async def read_secret_values(
    conn: Connection, keyring: Keyring, owner_id: uuid.UUID, names: Collection[str]
) -> dict[str, str]:
    """The values of the owner's secrets among `names` (those it has; a missing one is
    left out for the caller to report). SecretUnreadable when one does not decrypt."""
    if not names:
        return {}
    rows = await conn.fetch(_VALUES_SQL, owner_id, sorted(names))
    return {
        r["name"]: keyring.decrypt(owner_id, r["name"], bytes(r["ciphertext"]), r["key_id"])
        for r in rows
    }


async def check_secrets_known(
    session: AsyncSession, owner_id: uuid.UUID, workflow: CompiledWorkflow
) -> None:
    """DefinitionInvalid naming every `{{ secrets.NAME }}` of `workflow` whose NAME the
    owner has no secret of (each at its node and JSON path); a save checks this in its
    transaction, so that a missing secret is found then and not when a run gets there."""
    uses = [(node.id, name, path) for node in workflow.nodes.values()
            for name, path in node.secret_uses]  # fmt: skip
    if not uses:
        return
    wanted = sorted({name for _, name, _ in uses})
    rows = await session.execute(
        select(Secret.name).where(Secret.owner_id == owner_id, Secret.name.in_(wanted))
    )
    known = set(rows.scalars())
    missing = [n for n in wanted if n not in known]
    if not missing:
        return
    problems = [
        Problem(
            path,
            f"no secret named {shown(name)!r}: set it first (PUT /api/secrets/{shown(name)})",
            node,
        )
        for node, name, path in uses
        if name not in known
    ]
    raise DefinitionInvalid(
        f"the workflow uses secrets that are not set: {', '.join(missing)}", problems
    )
