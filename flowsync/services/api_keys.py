"""API keys and owners. A key is shown once, at creation; only its SHA-256 hash is stored
(keys are 256 random bits, so a fast hash is safe and lets every request check in one
indexed lookup)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import ApiKey, Member, Owner
from flowsync.errors import Forbidden, InvalidInput, NotFound, Problem, Unauthenticated
from flowsync.roles import Role, parse_role
from flowsync.services import audit
from flowsync.services.inputs import parse_id
from flowsync.services.pagination import Page, decode_cursor, encode_cursor, page_size
from flowsync.services.principal import Principal, require

KEY_PREFIX = "fsk_"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly created key: `secret` is the only time the plaintext is available."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


_AUTHENTICATE_SQL = """
SELECT id, owner_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
"""


class ApiKeyService:
    """Owners and their API keys."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], pool: asyncpg.Pool):
        self._sessions = sessions
        self._pool = pool

    async def ensure_owner(
        self, subject: str, display_name: str | None = None, *, admin: str | None = None
    ) -> uuid.UUID:
        """The owner with this subject, created on first use (safe under concurrency).
        `admin` names the member (`jwt:<issuer>|<sub>`) a new owner starts with as its
        admin: a JWT subject's personal team is a one-member team."""
        async with self._sessions.begin() as session:
            created = (
                await session.execute(
                    pg_insert(Owner)
                    .values(subject=subject, display_name=display_name or subject)
                    .on_conflict_do_nothing(index_elements=["subject"])
                    .returning(Owner.id)
                )
            ).scalar_one_or_none()
            if created is not None and admin is not None:
                await session.execute(
                    pg_insert(Member).values(
                        owner_id=created, subject=admin, role=Role.ADMIN.value, added_by=admin
                    )
                )
            if created is not None:
                return created
            return (
                await session.execute(select(Owner.id).where(Owner.subject == subject))
            ).scalar_one()

    async def create(
        self, principal: Principal, name: str, role: object | None = None
    ) -> IssuedKey:
        """Issue a new key for the principal's owner, with `role` (default: the
        creator's own). A role above the creator's is Forbidden: a key never does more
        than whoever made it."""
        require(principal, "ApiKeyService.create")
        wanted = principal.role if role is None else parse_role(role)
        if wanted > principal.role:
            raise Forbidden(
                f"A key with the {wanted.value} role cannot be made by a caller who is "
                f"{principal.role.value}: a key's role is at most its creator's."
            )
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput(
                "A key's name must be 1 to 200 characters.",
                [Problem("name", "must be 1 to 200 characters")],
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            key = ApiKey(
                owner_id=principal.owner_id,
                name=name,
                prefix=secret[: len(KEY_PREFIX) + 6],
                key_hash=hash_key(secret),
                role=wanted.value,
            )
            session.add(key)
            await session.flush()
            await audit.record(session, principal, "api_key.created", "api_key", key.id,
                               {"name": name, "role": wanted.value})  # fmt: skip
            await session.refresh(key)
        return IssuedKey(key, secret)

    async def page(
        self, principal: Principal, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[ApiKey]:
        """The owner's keys, newest first, revoked ones included (with `revoked_at`), a
        page at a time (keyset pagination over ix_api_keys_owner)."""
        require(principal, "ApiKeyService.page")
        size = page_size(limit)
        stmt = select(ApiKey).where(ApiKey.owner_id == principal.owner_id)
        if cursor is not None:
            after = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    ApiKey.created_at < after.created_at,
                    and_(ApiKey.created_at == after.created_at, ApiKey.id < uuid.UUID(after.id)),
                )
            )
        stmt = stmt.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)

    async def get_many(
        self, principal: Principal, key_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ApiKey]:
        """Several of the owner's keys by id (revoked ones included), in one query;
        others are left out (for `Query.node`)."""
        require(principal, "ApiKeyService.get_many")
        if not key_ids:
            return {}
        stmt = select(ApiKey).where(
            ApiKey.owner_id == principal.owner_id, ApiKey.id.in_(list(key_ids))
        )
        async with self._sessions() as session:
            return {k.id: k for k in (await session.execute(stmt)).scalars()}

    async def list(self, principal: Principal) -> list[ApiKey]:
        """The owner's keys, newest first, revoked ones included."""
        require(principal, "ApiKeyService.list")
        async with self._sessions() as session:
            rows = await session.execute(
                select(ApiKey)
                .where(ApiKey.owner_id == principal.owner_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            )
            return list(rows.scalars())

    async def revoke(self, principal: Principal, key_id: object) -> ApiKey:
        """Revoke one of the owner's keys; it stops authenticating at once."""
        require(principal, "ApiKeyService.revoke")
        kid = parse_id(key_id, "API key")
        async with self._sessions.begin() as session:
            key = (
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == kid, ApiKey.owner_id == principal.owner_id)
                    .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
                    .returning(ApiKey)
                )
            ).scalar_one_or_none()
            if key is None:
                raise NotFound(f"No API key with id {key_id}.")
            await audit.record(session, principal, "api_key.revoked", "api_key", key.id)
        return key

    async def authenticate(self, secret: str) -> Principal:
        """The principal a key stands for; Unauthenticated when unknown or revoked."""
        if not secret.startswith(KEY_PREFIX):
            raise Unauthenticated("The API key is not valid.")
        # One statement on the asyncpg pool: every request with a key makes it, and an ORM
        # session around it cost ~1.5 ms of the API's CPU (a tenth of a small request's).
        row = await self._pool.fetchrow(_AUTHENTICATE_SQL, hash_key(secret))
        if row is None:
            raise Unauthenticated("The API key is not valid or was revoked.")
        return Principal(
            owner_id=row["owner_id"], actor=f"apikey:{row['id']}", role=parse_role(row["role"])
        )
