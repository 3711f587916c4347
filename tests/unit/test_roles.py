"""The pure rules of teams and roles: the order of the roles, parsing their names, and
the operation → role table that `require` applies."""

from __future__ import annotations

import uuid

import pytest

from flowsync.errors import Forbidden, InvalidInput
from flowsync.roles import NO_CALLER, OPERATION_ROLES, ROLE_NAMES, Role, parse_role
from flowsync.services.principal import Principal, require


def test_roles_are_ordered_by_what_they_allow() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.EDITOR < Role.ADMIN
    assert sorted(Role, reverse=True)[0] is Role.ADMIN
    assert ROLE_NAMES == ("viewer", "operator", "editor", "admin")


@pytest.mark.parametrize("name", ["viewer", "Operator", " editor ", "ADMIN"])
def test_a_role_name_parses_whatever_its_case(name: str) -> None:
    assert parse_role(name).value == name.strip().lower()


@pytest.mark.parametrize("name", ["owner", "", None, 3, "org:admin"])
def test_a_role_that_does_not_exist_names_the_valid_ones(name: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_role(name, "$.role")
    assert "viewer, operator, editor, admin" in caught.value.message
    assert caught.value.details[0].path == "$.role"


def test_an_operation_is_either_a_members_or_no_callers() -> None:
    assert not set(OPERATION_ROLES) & set(NO_CALLER)


def test_changes_need_more_than_reading() -> None:
    """Writes of each kind sit at the role the issue gives them."""
    assert OPERATION_ROLES["ExecutionService.start"] is Role.OPERATOR
    assert OPERATION_ROLES["DeadLetterService.redrive"] is Role.OPERATOR
    assert OPERATION_ROLES["BackfillService.backfill"] is Role.OPERATOR
    assert OPERATION_ROLES["WorkflowService.update"] is Role.EDITOR
    assert OPERATION_ROLES["TriggerService.create"] is Role.EDITOR
    assert OPERATION_ROLES["ApiKeyService.revoke"] is Role.ADMIN
    assert OPERATION_ROLES["ApiKeyService.create"] is Role.VIEWER  # at most one's own role
    assert OPERATION_ROLES["MemberService.set_role"] is Role.ADMIN
    reads = [op for op in OPERATION_ROLES if op.rsplit(".", 1)[1].startswith(("get", "list"))]
    assert all(OPERATION_ROLES[op] is Role.VIEWER for op in reads if "ApiKey" not in op)


@pytest.mark.parametrize("operation", sorted(OPERATION_ROLES))
def test_require_allows_the_needed_role_and_above_only(operation: str) -> None:
    needed = OPERATION_ROLES[operation]
    for role in Role:
        principal = Principal(uuid.uuid4(), "apikey:x", role)
        if role >= needed:
            require(principal, operation)
        else:
            with pytest.raises(Forbidden) as caught:
                require(principal, operation)
            message = caught.value.message
            assert operation in message and needed.value in message and role.value in message


def test_a_principal_without_a_role_is_admin_as_before_teams() -> None:
    assert Principal(uuid.uuid4(), "cli").role is Role.ADMIN


def test_an_operation_missing_from_the_table_is_never_open() -> None:
    with pytest.raises(KeyError):
        require(Principal(uuid.uuid4(), "cli"), "NoSuchService.anything")
