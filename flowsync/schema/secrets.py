"""GraphQL types for secrets: what anyone may see of one (never its value) and the
results of setting and deleting one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from flowsync.schema.results import NotFoundError, ValidationError
from flowsync.services.secrets import SecretInfo


@strawberry.type(name="Secret")
class SecretType:
    """A named secret of the caller's owner. Its value is never readable: templates use it
    as `{{ secrets.NAME }}` in an action's url, headers and body."""

    name: str
    created_at: datetime
    updated_at: datetime
    set_by: str = strawberry.field(description="The actor that last set the value.")

    @classmethod
    def of(cls, info: SecretInfo) -> SecretType:
        return cls(
            name=info.name, created_at=info.created_at, updated_at=info.updated_at,
            set_by=info.set_by,
        )  # fmt: skip


@strawberry.type
class SecretPayload:
    secret: SecretType


SetSecretResult = Annotated[SecretPayload | ValidationError, strawberry.union("SetSecretResult")]
DeleteSecretResult = Annotated[
    SecretPayload | NotFoundError, strawberry.union("DeleteSecretResult")
]
