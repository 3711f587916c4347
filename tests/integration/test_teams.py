"""Teams and roles at the service level on a real PostgreSQL: members and their roles,
the refusals that change nothing (a role that does not exist, a key above its creator's,
the last admin), keys that carry their role, and the migration of a database made by
the previous schema: each owner becomes a one-member team and its keys admin."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from flowsync.config import Settings, to_asyncpg_dsn
from flowsync.db import migrate
from flowsync.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from flowsync.roles import Role
from flowsync.services.auth import Authenticator
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.conftest import new_subject
from tests.graphql.jwks import AUDIENCE, ISSUER, Provider, jwks_server

ALICE = "jwt:https://issuer.test|alice"
BOB = "jwt:https://issuer.test|bob"


async def team(services: Services, role: Role = Role.ADMIN) -> Principal:
    owner = await services.api_keys.ensure_owner(new_subject())
    return Principal(owner, "test", role)


async def test_members_are_added_listed_changed_and_removed(services: Services) -> None:
    admin = await team(services)
    await services.members.add(admin, ALICE, "admin")
    await services.members.add(admin, BOB, "viewer")
    assert [(m.subject, m.role) for m in await services.members.list(admin)] == [
        (ALICE, "admin"), (BOB, "viewer"),
    ]  # fmt: skip
    assert (await services.members.set_role(admin, BOB, "Editor")).role == "editor"
    assert await services.members.role_of(admin.owner_id, BOB) is Role.EDITOR
    await services.members.remove(admin, BOB)
    assert await services.members.role_of(admin.owner_id, BOB) is None
    # Another team sees none of them, and cannot touch them.
    other = await team(services)
    assert await services.members.list(other) == []
    with pytest.raises(NotFound):
        await services.members.remove(other, ALICE)


async def test_bad_member_changes_say_what_and_change_nothing(services: Services) -> None:
    admin = await team(services)
    await services.members.add(admin, ALICE, "admin")
    await services.members.add(admin, BOB, "operator")
    before = [(m.subject, m.role) for m in await services.members.list(admin)]

    with pytest.raises(InvalidInput) as bad_role:
        await services.members.set_role(admin, BOB, "owner")
    assert "viewer, operator, editor, admin" in bad_role.value.message
    assert bad_role.value.details[0].path == "role"
    with pytest.raises(InvalidInput) as bad_subject:
        await services.members.add(admin, "alice", "viewer")
    assert "jwt:<issuer>|<sub>" in bad_subject.value.message
    with pytest.raises(Conflict, match="member already"):
        await services.members.add(admin, BOB, "viewer")
    with pytest.raises(Conflict, match="last admin") as last:
        await services.members.remove(admin, ALICE)
    assert ALICE in last.value.message
    with pytest.raises(Conflict, match="last admin"):
        await services.members.set_role(admin, ALICE, "editor")
    with pytest.raises(NotFound):
        await services.members.set_role(admin, "jwt:https://issuer.test|carol", "viewer")
    operator = Principal(admin.owner_id, "apikey:x", Role.OPERATOR)
    with pytest.raises(Forbidden, match="needs the admin role"):
        await services.members.set_role(operator, BOB, "admin")

    assert [(m.subject, m.role) for m in await services.members.list(admin)] == before
    # With a second admin, the first may step down.
    await services.members.set_role(admin, BOB, "admin")
    await services.members.set_role(admin, ALICE, "viewer")


async def test_the_last_admin_survives_two_demotions_at_once(services: Services) -> None:
    admin = await team(services)
    await services.members.add(admin, ALICE, "admin")
    await services.members.add(admin, BOB, "admin")
    results = await asyncio.gather(
        services.members.set_role(admin, ALICE, "viewer"),
        services.members.set_role(admin, BOB, "viewer"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1
    roles = [m.role for m in await services.members.list(admin)]
    assert roles.count("admin") == 1


async def test_a_key_carries_its_role_and_never_more_than_its_creators(
    services: Services,
) -> None:
    admin = await team(services)
    issued = await services.api_keys.create(admin, "ci", "operator")
    assert issued.key.role == "operator"
    principal = await services.api_keys.authenticate(issued.secret)
    assert principal.role is Role.OPERATOR and principal.owner_id == admin.owner_id
    # Made by an operator: at most operator, and by default its creator's role.
    assert (await services.api_keys.create(principal, "mine")).key.role == "operator"
    keys_before = len(await services.api_keys.list(admin))
    with pytest.raises(Forbidden) as above:
        await services.api_keys.create(principal, "escalate", "editor")
    assert "editor" in above.value.message and "operator" in above.value.message
    with pytest.raises(InvalidInput, match="not a role"):
        await services.api_keys.create(admin, "typo", "superuser")
    assert len(await services.api_keys.list(admin)) == keys_before


async def test_a_jwt_subjects_personal_team_starts_with_it_as_admin(services: Services) -> None:
    owner = await services.api_keys.ensure_owner(
        "https://issuer.test|dana", admin="jwt:https://issuer.test|dana"
    )
    me = Principal(owner, "jwt:dana", Role.ADMIN)
    assert [(m.subject, m.role) for m in await services.members.list(me)] == [
        ("jwt:https://issuer.test|dana", "admin")
    ]
    # On the next sign-in the owner exists: no second member is made.
    again = await services.api_keys.ensure_owner(
        "https://issuer.test|dana", admin="jwt:https://issuer.test|dana"
    )
    assert again == owner and len(await services.members.list(me)) == 1


async def test_existing_owners_migrate_to_one_member_teams_with_admin_keys(db_url: str) -> None:
    """A database made by the previous schema (0011), with a CLI owner, a JWT subject's
    owner and their keys, upgraded to teams."""
    await asyncio.to_thread(migrate.downgrade, db_url, "0011")
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        cli, person = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO owners (id, subject, display_name) VALUES "
            "($1, 'local:ci', 'ci'), ($2, 'https://issuer.test|erin', 'Erin')",
            cli, person,
        )  # fmt: skip
        for owner, name in ((cli, "deploy"), (person, "laptop"), (person, "old")):
            await conn.execute(
                "INSERT INTO api_keys (owner_id, name, prefix, key_hash) VALUES ($1, $2, 'p', $3)",
                owner, name, uuid.uuid4().hex,
            )  # fmt: skip
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'old'")
    finally:
        await conn.close()

    await migrate.upgrade_async(db_url)

    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        members = await conn.fetch("SELECT owner_id, subject, role, added_by FROM members")
        keys = await conn.fetch("SELECT name, role FROM api_keys ORDER BY name")
    finally:
        await conn.close()
    assert [tuple(m) for m in members] == [
        (person, "jwt:https://issuer.test|erin", "admin", "migration")
    ]
    assert [tuple(k) for k in keys] == [("deploy", "admin"), ("laptop", "admin"), ("old", "admin")]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with jwks_server() as running:
        yield running


def authenticator(services: Services, provider: Provider, **settings: str) -> Authenticator:
    config = Settings(
        database_url=services.url, jwks_url=provider.url, jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE, _env_file=None, **settings,  # type: ignore[call-arg]
    )  # fmt: skip
    return Authenticator(config, services.api_keys, services.sessions)


async def test_clerk_organisation_claims_name_the_team_and_the_role(
    services: Services, provider: Provider
) -> None:
    auth = authenticator(services, provider)

    async def signed_in(sub: str, **claims: object) -> Principal:
        return (await auth.authenticate(f"Bearer {provider.token(sub, **claims)}")).principal

    admin = await signed_in("ann", org_id="org_1", org_role="org:admin")
    member = await signed_in("ben", org_id="org_1", org_role="org:member")
    plain = await signed_in("cy", org_id="org_1", org_role="editor")
    unknown = await signed_in("dee", org_id="org_1", org_role="org:billing")
    missing = await signed_in("eve", org_id="org_1")
    assert len({p.owner_id for p in (admin, member, plain, unknown, missing)}) == 1
    assert [p.role for p in (admin, member, plain, unknown, missing)] == [
        Role.ADMIN, Role.OPERATOR, Role.EDITOR, Role.VIEWER, Role.VIEWER,
    ]  # fmt: skip
    team = await services.api_keys.ensure_owner(f"{ISSUER}|org:org_1")
    assert admin.owner_id == team

    # A members row overrides what the claims say, at once.
    await services.members.add(admin, f"jwt:{ISSUER}|ben", "editor")
    assert (await signed_in("ben", org_id="org_1", org_role="org:member")).role is Role.EDITOR

    # Without the team claim: the subject's own team, where it is admin.
    own = await signed_in("ben")
    assert own.owner_id != team and own.role is Role.ADMIN
    assert [m.subject for m in await services.members.list(own)] == [f"jwt:{ISSUER}|ben"]

    with pytest.raises(Unauthenticated, match="'org_id' claim"):
        await signed_in("ann", org_id="")


async def test_the_claims_and_the_role_map_are_settings(
    services: Services, provider: Provider
) -> None:
    auth = authenticator(
        services, provider, jwt_team_claim="o.id", jwt_role_claim="o.rol",
        jwt_role_map="owner=admin,dev=editor",
    )  # fmt: skip
    token = provider.token("fay", o={"id": "team-9", "rol": "dev"})
    principal = (await auth.authenticate(f"Bearer {token}")).principal
    assert principal.role is Role.EDITOR
    assert principal.owner_id == await services.api_keys.ensure_owner(f"{ISSUER}|org:team-9")
    with pytest.raises(ValueError, match=r"'boss' .* is not a role"):
        Settings(jwt_role_map="x=boss", _env_file=None)  # type: ignore[call-arg]
