"""The members of a team (an owner) and their roles. A member is a JWT subject, named
`jwt:<issuer>|<sub>`; API keys carry their own role (`ApiKeyService`). A change that
would leave a team that has an admin member without one is refused (Conflict), so a
team cannot lock itself out of its own members."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import Member, Owner
from flowsync.errors import Conflict, InvalidInput, NotFound, Problem, shown
from flowsync.roles import Role, parse_role
from flowsync.services import audit
from flowsync.services.principal import Principal, require

SUBJECT_PREFIX = "jwt:"
MAX_SUBJECT_CHARS = 500


def check_subject(value: object, path: str = "subject") -> str:
    """A member's subject, `jwt:<issuer>|<sub>`; `InvalidInput` at `path` otherwise."""
    if not isinstance(value, str):
        raise InvalidInput("A member's subject must be a string.", [Problem(path, "not a string")])
    subject = value.strip()
    issuer, bar, sub = subject.removeprefix(SUBJECT_PREFIX).partition("|")
    if (
        not subject.startswith(SUBJECT_PREFIX)
        or not bar
        or not issuer
        or not sub
        or len(subject) > MAX_SUBJECT_CHARS
        or "\x00" in subject
    ):
        raise InvalidInput(
            f"{shown(value)!r} is not a member subject: write jwt:<issuer>|<sub>, the JWT's 'iss' "
            f"and 'sub' claims (at most {MAX_SUBJECT_CHARS} characters).",
            [Problem(path, "must read jwt:<issuer>|<sub>")],
        )
    return subject


class MemberService:
    """Who is in a team, with which role."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def list(self, principal: Principal) -> list[Member]:
        """The team's members, admins first, then by subject."""
        require(principal, "MemberService.list")
        async with self._sessions() as session:
            rows = await session.execute(
                select(Member).where(Member.owner_id == principal.owner_id)
            )
            members = list(rows.scalars())
        return sorted(members, key=lambda m: (-parse_role(m.role).rank, m.subject))

    async def add(self, principal: Principal, subject: object, role: object) -> Member:
        """Add a member with `role`; Conflict when the subject is a member already (change
        a member's role with `set_role`)."""
        require(principal, "MemberService.add")
        name, wanted = check_subject(subject), parse_role(role)
        async with self._sessions.begin() as session:
            added = (
                await session.execute(
                    pg_insert(Member)
                    .values(
                        owner_id=principal.owner_id,
                        subject=name,
                        role=wanted.value,
                        added_by=principal.actor,
                    )
                    .on_conflict_do_nothing(constraint="uq_members_owner_subject")
                    .returning(Member)
                )
            ).scalar_one_or_none()
            if added is None:
                raise Conflict(f"{name} is a member already; set its role instead.")
            await audit.record(session, principal, "member.added", "member", name,
                               {"role": wanted.value})  # fmt: skip
        return added

    async def set_role(self, principal: Principal, subject: object, role: object) -> Member:
        """Set a member's role (NotFound when the subject is no member). Demoting the
        team's last admin is a Conflict that changes nothing."""
        require(principal, "MemberService.set_role")
        name, wanted = check_subject(subject), parse_role(role)
        async with self._sessions.begin() as session:
            member = await self._locked(session, principal.owner_id, name)
            if member.role == Role.ADMIN.value and wanted is not Role.ADMIN:
                await self._keep_an_admin(session, principal.owner_id, name, "demote")
            before = member.role
            member.role = wanted.value
            await audit.record(session, principal, "member.role_set", "member", name,
                               {"role": wanted.value, "was": before})  # fmt: skip
        return member

    async def remove(self, principal: Principal, subject: object) -> Member:
        """Remove a member (NotFound when the subject is no member). Removing the team's
        last admin is a Conflict that changes nothing."""
        require(principal, "MemberService.remove")
        name = check_subject(subject)
        async with self._sessions.begin() as session:
            member = await self._locked(session, principal.owner_id, name)
            if member.role == Role.ADMIN.value:
                await self._keep_an_admin(session, principal.owner_id, name, "remove")
            await session.execute(delete(Member).where(Member.id == member.id))
            await audit.record(session, principal, "member.removed", "member", name,
                               {"role": member.role})  # fmt: skip
        return member

    async def role_of(self, owner_id: uuid.UUID, subject: str) -> Role | None:
        """The role a members row gives `subject` in the team, or None when it has none."""
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Member.role).where(
                        Member.owner_id == owner_id, Member.subject == subject
                    )
                )
            ).scalar_one_or_none()
        return None if found is None else parse_role(found)

    @staticmethod
    async def _locked(session: AsyncSession, owner_id: uuid.UUID, subject: str) -> Member:
        # The owner's row is the team's lock: two changes to its admins never interleave,
        # so they cannot both pass the last-admin check.
        await session.execute(select(Owner.id).where(Owner.id == owner_id).with_for_update())
        member = (
            await session.execute(
                select(Member).where(Member.owner_id == owner_id, Member.subject == subject)
            )
        ).scalar_one_or_none()
        if member is None:
            raise NotFound(f"{shown(subject)} is not a member of this team.")
        return member

    @staticmethod
    async def _keep_an_admin(
        session: AsyncSession, owner_id: uuid.UUID, subject: str, change: str
    ) -> None:
        others = (
            await session.execute(
                select(func.count()).where(
                    Member.owner_id == owner_id,
                    Member.role == Role.ADMIN.value,
                    Member.subject != subject,
                )
            )
        ).scalar_one()
        if others == 0:
            raise Conflict(
                f"{subject} is the team's last admin: make another member admin before "
                f"you {change} it."
            )
