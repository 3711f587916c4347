"""Secret resolvers: the `secrets` query, `setSecret` and `deleteSecret`."""

from __future__ import annotations

from typing import cast

from strawberry.types import Info

from flowsync.resolvers.context import Context
from flowsync.resolvers.errors import outcome
from flowsync.schema.results import NotFoundError, ValidationError
from flowsync.schema.secrets import DeleteSecretResult, SecretPayload, SecretType, SetSecretResult

Ctx = Info[Context, None]


async def secrets(info: Ctx) -> list[SecretType]:
    """The caller owner's secrets by name: names, times and who set each, never values."""
    found = await info.context.services.secrets.list(info.context.principal)
    return [SecretType.of(s) for s in found]


async def set_secret(info: Ctx, name: str, value: str) -> SetSecretResult:
    """Set a secret's value (create it, or replace its value). A ValidationError names
    `name` (not an identifier) or `value` (empty, or over 64 KiB); nothing changes."""

    async def call() -> SecretPayload:
        found = await info.context.services.secrets.set(info.context.principal, name, value)
        return SecretPayload(secret=SecretType.of(found))

    return cast(SetSecretResult, await outcome((ValidationError,), call()))


async def delete_secret(info: Ctx, name: str) -> DeleteSecretResult:
    """Delete a secret; runs that read it later fail their step, naming it."""

    async def call() -> SecretPayload:
        found = await info.context.services.secrets.delete(info.context.principal, name)
        return SecretPayload(secret=SecretType.of(found))

    return cast(DeleteSecretResult, await outcome((NotFoundError,), call()))
