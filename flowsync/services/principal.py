"""Who is calling: the owner (team) every service call is scoped to, and the caller's role
in it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flowsync.errors import Forbidden
from flowsync.roles import OPERATION_ROLES, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `owner_id` scopes every read and write (it is the team);
    `actor` names the credential in audit entries (`apikey:<id>`, `jwt:<sub>`, `cli`);
    `role` is what the caller may do in the team (the CLI and the engine act as admin)."""

    owner_id: uuid.UUID
    actor: str
    role: Role = Role.ADMIN


def require(principal: Principal, operation: str) -> None:
    """Return when the principal's role may call `operation` (a key of
    `flowsync.roles.OPERATION_ROLES`); `Forbidden`, naming the operation, the role it
    needs and the caller's, when it may not. A name missing from the table is a bug:
    KeyError, so that an unlisted operation is never open by mistake."""
    needed = OPERATION_ROLES[operation]
    if principal.role < needed:
        raise Forbidden(
            f"{operation} needs the {needed.value} role; this caller ({principal.actor}) "
            f"is {principal.role.value} in the team."
        )
