"""The GraphQL types of a team's members: `Member`, and the results of the mutations
that add, change and remove one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from flowsync.db.models import Member
from flowsync.schema.results import ConflictError, NotFoundError, ValidationError
from flowsync.schema.types import RoleType


@strawberry.type(name="Member")
class MemberType:
    """A JWT subject's role in the caller's team."""

    subject: str = strawberry.field(description="`jwt:<issuer>|<sub>`: whose the role is.")
    role: RoleType
    created_at: datetime
    added_by: str = strawberry.field(description="Who added it (an audit actor).")

    @classmethod
    def of(cls, row: Member) -> MemberType:
        return cls(
            subject=row.subject,
            role=RoleType(row.role),
            created_at=row.created_at,
            added_by=row.added_by,
        )


@strawberry.type
class MemberPayload:
    member: MemberType


AddMemberResult = Annotated[
    MemberPayload | ValidationError | ConflictError, strawberry.union("AddMemberResult")
]
ChangeMemberResult = Annotated[
    MemberPayload | ValidationError | NotFoundError | ConflictError,
    strawberry.union("ChangeMemberResult"),
]
