"""Resolvers of a team's members, and of API keys with a role: each calls one service
method and returns its typed result. A caller whose role is too low gets a GraphQL error
with code `forbidden` (not a typed result: no union member stands for it)."""

from __future__ import annotations

from typing import cast

from strawberry.types import Info

from flowsync.resolvers.context import Context
from flowsync.resolvers.errors import outcome
from flowsync.schema.members import AddMemberResult, ChangeMemberResult, MemberPayload, MemberType
from flowsync.schema.results import ConflictError, NotFoundError, ValidationError
from flowsync.schema.types import RoleType

Ctx = Info[Context, None]


async def members(info: Ctx) -> list[MemberType]:
    """The caller's team's members, admins first."""
    found = await info.context.services.members.list(info.context.principal)
    return [MemberType.of(m) for m in found]


async def add_member(info: Ctx, subject: str, role: RoleType) -> AddMemberResult:
    """Add a JWT subject (`jwt:<issuer>|<sub>`) to the caller's team with a role."""
    principal, service = info.context.principal, info.context.services.members

    async def call() -> MemberPayload:
        return MemberPayload(
            member=MemberType.of(await service.add(principal, subject, role.value))
        )

    return cast(AddMemberResult, await outcome((ValidationError, ConflictError), call()))


async def set_member_role(info: Ctx, subject: str, role: RoleType) -> ChangeMemberResult:
    """Change a member's role; demoting the team's last admin is a ConflictError."""
    principal, service = info.context.principal, info.context.services.members

    async def call() -> MemberPayload:
        row = await service.set_role(principal, subject, role.value)
        return MemberPayload(member=MemberType.of(row))

    allowed = (ValidationError, NotFoundError, ConflictError)
    return cast(ChangeMemberResult, await outcome(allowed, call()))


async def remove_member(info: Ctx, subject: str) -> ChangeMemberResult:
    """Remove a member; removing the team's last admin is a ConflictError."""
    principal, service = info.context.principal, info.context.services.members

    async def call() -> MemberPayload:
        return MemberPayload(member=MemberType.of(await service.remove(principal, subject)))

    allowed = (ValidationError, NotFoundError, ConflictError)
    return cast(ChangeMemberResult, await outcome(allowed, call()))
