"""Team roles and the one table of what each operation needs (pure: no database, no HTTP).

An owner is a team; each member (a JWT subject or an API key) holds one role, and each
role may do everything the roles below it may:

    viewer < operator < editor < admin

    viewer    reads, subscribes
    operator  also starts, cancels, retries, signals, redrives, backfills runs
    editor    also changes workflows and triggers
    admin     also members, the team's API keys (and secrets)

`OPERATION_ROLES` is the one table of operation → the least role that may call it, keyed
like the face-coverage table (`tests/behaviour/test_face_coverage.py`): a new service
operation gets a row here too, or the role matrix test fails. The services check it with
`flowsync.services.principal.require` at the top of each public method.
"""

from __future__ import annotations

from enum import Enum
from functools import total_ordering

from flowsync.errors import InvalidInput, Problem

__all__ = ["NO_CALLER", "OPERATION_ROLES", "ROLE_NAMES", "Role", "parse_role"]


@total_ordering
class Role(Enum):
    """A member's role; roles compare by what they allow (`Role.VIEWER < Role.ADMIN`)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer up to 3 for admin."""
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank


_ORDER = (Role.VIEWER, Role.OPERATOR, Role.EDITOR, Role.ADMIN)
ROLE_NAMES = tuple(r.value for r in _ORDER)


def parse_role(value: object, path: str = "role") -> Role:
    """The role a name stands for; `InvalidInput` at `path` naming the valid names."""
    if isinstance(value, Role):
        return value
    if isinstance(value, str):
        for role in _ORDER:
            if role.value == value.strip().lower():
                return role
    raise InvalidInput(
        f"{value!r} is not a role; the roles are {', '.join(ROLE_NAMES)}.",
        [Problem(path, f"must be one of {', '.join(ROLE_NAMES)}")],
    )


_V, _O, _E, _A = Role.VIEWER, Role.OPERATOR, Role.EDITOR, Role.ADMIN

OPERATION_ROLES: dict[str, Role] = {
    # -- workflows: reads are viewer's, changes editor's
    "WorkflowService.create": _E,
    "WorkflowService.update": _E,
    "WorkflowService.delete": _E,
    "WorkflowService.get": _V,
    "WorkflowService.list": _V,
    "WorkflowService.validate": _V,
    "WorkflowService.versions_page": _V,
    "WorkflowService.get_definition": _V,
    "WorkflowService.definitions": _V,
    "WorkflowService.versions_by_id": _V,
    "WorkflowService.get_many": _V,
    "WorkflowService.versions": _V,
    # -- executions: starting, cancelling, retrying and signalling are operator's
    "ExecutionService.start": _O,
    "ExecutionService.start_many": _O,
    "ExecutionService.start_in": _O,
    "ExecutionService.cancel": _O,
    "ExecutionService.retry": _O,
    "ExecutionService.signal_execution": _O,
    "ExecutionService.get": _V,
    "ExecutionService.children": _V,
    "ExecutionService.list": _V,
    "ExecutionService.snapshot": _V,
    "ExecutionService.steps": _V,
    "ExecutionService.first_pages": _V,
    "ExecutionService.get_many": _V,
    "ExecutionService.steps_by_id": _V,
    "ExecutionService.timelines": _V,
    "ExecutionService.events_after": _V,
    "ExecutionService.watch_state": _V,
    "ExecutionService.events": _V,
    # -- triggers: changes are editor's, a backfill (it starts runs) operator's
    "TriggerService.create": _E,
    "TriggerService.update": _E,
    "TriggerService.delete": _E,
    "TriggerService.rotate_secret": _E,
    "TriggerService.reveal_secret": _E,
    "BackfillService.backfill": _O,
    "TriggerService.get": _V,
    "TriggerService.list": _V,
    "TriggerService.get_many": _V,
    "TriggerService.of_workflows": _V,
    "TriggerService.scheduler_status": _V,
    "TriggerService.webhook_url": _V,
    "TriggerService.next_fire_times": _V,
    # -- API keys and members: changes are admin's; any member may read them (never a
    # key's secret), and any
    # member may make a key (for a script, a CI job) with at most their own role
    "ApiKeyService.create": _V,
    "ApiKeyService.page": _V,
    "ApiKeyService.list": _V,
    "ApiKeyService.revoke": _A,
    "ApiKeyService.get_many": _V,
    "MemberService.list": _V,
    "MemberService.add": _A,
    "MemberService.set_role": _A,
    "MemberService.remove": _A,
    # -- secrets: names are every member's to read (templates name them); values are
    # never read back, and only admins set or delete them
    "SecretService.list": _V,
    "SecretService.set": _A,
    "SecretService.delete": _A,
    # -- dead letters, workers, observability
    "DeadLetterService.redrive": _O,
    "DeadLetterService.list": _V,
    "DeadLetterService.get": _V,
    "DeadLetterService.get_many": _V,
    "DeadLetterService.queue_stats": _V,
    "WorkerService.list": _V,
    "ObservabilityService.queue": _V,
    "ObservabilityService.metrics": _V,
    "ObservabilityService.metrics_series": _V,
    "ObservabilityService.audit_log": _V,
    "ObservabilityService.audit_entries": _V,
    "ObservabilityService.timeline": _V,
    # -- the editor's reads
    "node_types.node_types": _V,
    "expression_check.check_expression": _V,
}

# Operations no member calls (no principal): each with why it needs no role.
NO_CALLER: dict[str, str] = {
    "ObservabilityService.health": "the readiness probe: it answers anyone, with no data.",
    "ObservabilityService.of": "builds the service.",
    "WebhookService.receive": "a sender's delivery, authenticated by the trigger's secret.",
    "ApiKeyService.ensure_owner": "makes an owner (CLI, `flowsync dev`, a JWT's first use).",
    "ApiKeyService.authenticate": "the credential check itself.",
    "MemberService.role_of": "the credential check itself: a JWT subject's role.",
    "SecretService.rotate_key": "the CLI's key rotation over every team's secrets.",
    "secrets.check_secrets_known": "part of every save (editor's).",
    "secrets.read_secret_values": "the worker's read for a step's request.",
    "Authenticator.authenticate": "the credential check itself.",
    "Authenticator.guard": "the credential check itself.",
    "Authenticator.still_valid": "the credential check itself.",
    "Authenticator.refresh": "the credential check itself, for many keys at once.",
    "Authenticator.watch": "the credential check itself, kept while a connection is open.",
    "Authenticator.close": "stops the credential watch with the process.",
    "ExecutionService.check_backpressure": "part of every start (operator's).",
    "ExecutionService.admitted": "part of a start inside a caller's transaction.",
    "child_workflows.check_children": "part of every save (editor's).",
    "child_workflows.child_refs": "a pure helper.",
    "triggers.webhook_url": "a pure helper.",
    "backfill.fire_times": "a pure helper.",
    "trigger_input.check_input": "part of saving a trigger (editor's).",
    "trigger_input.render_input": "part of starting a run from a trigger.",
    "webhooks.sign": "a pure helper (what a sender computes).",
    "webhooks.sign_v2": "a pure helper (what a sender computes).",
    "webhooks.v2_message": "a pure helper (what a sender computes).",
}
